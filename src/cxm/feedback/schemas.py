from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from cxm.core.schemas import ErrorOut

__all__ = ["ErrorOut"]


class SurveyIn(Schema):
    name: str = Field(..., max_length=120)
    kind: str = Field(..., description="nps, csat, ces or custom")
    definition: dict[str, Any] = Field(..., description="questions, skip logic, translations")
    status: str = "active"
    touchpoint: str = ""
    stage: str = ""
    trigger_event: str = Field("", description="invite by email after this event")
    trigger_delay_minutes: int = 0
    rules: dict[str, Any] = Field(default_factory=dict, description="contact rules")


class SurveyPatch(Schema):
    name: str | None = None
    kind: str | None = None
    definition: dict[str, Any] | None = None
    status: str | None = None
    touchpoint: str | None = None
    stage: str | None = None
    trigger_event: str | None = None
    trigger_delay_minutes: int | None = None
    rules: dict[str, Any] | None = None


class SurveyOut(Schema):
    id: str
    name: str
    slug: str
    kind: str
    status: str
    definition: dict[str, Any]
    touchpoint: str
    stage: str
    trigger_event: str
    trigger_delay_minutes: int
    rules: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class InvitationIn(Schema):
    profile_id: str
    channel: str = Field("email", description="email, link or widget")
    touchpoint: str | None = None


class InvitationOut(Schema):
    id: int
    survey_id: str
    profile_id: str
    channel: str
    status: str
    reason: str
    created_at: datetime
    expires_at: datetime
    link: str | None = Field(None, description="the personal link (channel link only)")


class ResponseIn(Schema):
    answers: dict[str, Any]
    profile_id: str | None = None
    email: str | None = None
    user_id: str | None = None
    language: str = ""
    submitted_at: datetime | None = None
    client_key: str | None = Field(None, max_length=200,
                                   description="your id for this answer: sent twice, stored once")
    touchpoint: str | None = None


class ResponseOut(Schema):
    id: str
    survey_id: str
    profile_id: str | None
    submitted_at: datetime
    channel: str
    language: str
    kind: str
    score: float | None
    answers: dict[str, Any]
    comment: str
    sentiment: str
    sentiment_score: float | None
    emotion: str
    themes: list[str]
    dims: dict[str, Any]


class ThemeOut(Schema):
    id: int
    name: str
    keywords: dict[str, float]
    edited: bool
    volume: int


class ThemeJobOut(Schema):
    id: int
    kind: str = Field(..., description="discover, or rematch (sorting every comment into the "
                                       "themes again after key words changed)")
    status: str = Field(..., description="queued, running, done or failed")
    requested_by: str = Field(..., description="the actor who asked, as in the audit log")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    comments: int = Field(..., description="comments sorted (when done)")
    theme_links: int = Field(..., description="answer–theme links written (when done)")
    themes_created: int
    themes_replaced: int
    error: str = Field(..., description="why it failed; themes and links were left as before")
    links: dict[str, str] = Field(..., description="self: this job's status; themes: the list")


class ThemeEditOut(ThemeOut):
    job: ThemeJobOut | None = Field(
        None, description="the re-sort of every comment, when the key words changed; until "
                          "it is done, volume counts the answers sorted with the old ones")


class ThemePatch(Schema):
    name: str | None = None
    keywords: list[str] | None = None


class ThemeMergeIn(Schema):
    into: int


class DiscoverIn(Schema):
    max_themes: int = Field(12, ge=1, le=50)


class RulesIO(Schema):
    min_days_between: int = 30
    touchpoint_days: int = 90
    survey_days: int = 0
    max_contacts_7d: int = 0
    require_consent: bool = True
