"""REST endpoints for surveys, invitations, responses, themes and the contact policy (thin:
parsing and shaping only; reads via queries, writes via actions). Results and drivers are
served by the metrics app."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from cxm.accounts.api_auth import actor_of, needs
from cxm.core import audit
from cxm.core.errors import InvalidInput
from cxm.feedback import actions, queries
from cxm.feedback.models import Invitation, Response, Survey, Theme, ThemeJob
from cxm.feedback.schemas import (
    DiscoverIn,
    ErrorOut,
    InvitationIn,
    InvitationOut,
    ResponseIn,
    ResponseOut,
    RulesIO,
    SurveyIn,
    SurveyOut,
    SurveyPatch,
    ThemeEditOut,
    ThemeJobOut,
    ThemeMergeIn,
    ThemeOut,
    ThemePatch,
)
from cxm.identity import queries as identity_queries

router = Router(tags=["feedback"])
READ = needs("surveys.read")
MANAGE = needs("surveys.manage")
VERBATIMS = needs("surveys.read", "feedback.verbatims")
ERRORS: dict[int, type[ErrorOut]] = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut,
                                     409: ErrorOut}


def survey_out(survey: Survey) -> dict[str, Any]:
    return {
        "id": str(survey.id), "name": survey.name, "slug": survey.slug, "kind": survey.kind,
        "status": survey.status, "definition": survey.definition,
        "touchpoint": survey.touchpoint, "stage": survey.stage,
        "trigger_event": survey.trigger_event,
        "trigger_delay_minutes": survey.trigger_delay_minutes, "rules": survey.rules,
        "created_at": survey.created_at, "updated_at": survey.updated_at,
    }


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    link = None
    if invitation.channel == "link" and invitation.status in {"sent", "pending"}:
        link = actions.survey_url(invitation)
    return {
        "id": invitation.id, "survey_id": str(invitation.survey_id),
        "profile_id": str(invitation.profile_id), "channel": invitation.channel,
        "status": invitation.status, "reason": invitation.reason,
        "created_at": invitation.created_at, "expires_at": invitation.expires_at, "link": link,
    }


def response_out(response: Response, theme_names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": str(response.id), "survey_id": str(response.survey_id),
        "profile_id": str(response.profile_id) if response.profile_id else None,
        "submitted_at": response.submitted_at, "channel": response.channel,
        "language": response.language, "kind": response.kind, "score": response.score,
        "answers": queries.revealed_answers(response), "comment": queries.comment_of(response),
        "sentiment": response.sentiment, "sentiment_score": response.sentiment_score,
        "emotion": response.emotion,
        "themes": sorted({theme_names.get(t.id, t.name) for t in response.themes.all()}),
        "dims": response.dims,
    }


@router.get("/surveys", response={200: list[SurveyOut], **ERRORS}, auth=READ,
            summary="List surveys")
def list_surveys(request: HttpRequest) -> list[dict[str, Any]]:
    return [survey_out(s) for s in queries.surveys()[:500]]


@router.post("/surveys", response={201: SurveyOut, **ERRORS}, auth=MANAGE,
             summary="Create a survey")
def create_survey(request: HttpRequest, body: SurveyIn) -> Status:
    survey = actions.create_survey(actor=actor_of(request), **body.dict())
    return Status(201, survey_out(survey))


@router.get("/surveys/{survey_id}", response={200: SurveyOut, **ERRORS}, auth=READ,
            summary="One survey")
def get_survey(request: HttpRequest, survey_id: str) -> dict[str, Any]:
    return survey_out(queries.survey_by_id(survey_id))


@router.patch("/surveys/{survey_id}", response={200: SurveyOut, **ERRORS}, auth=MANAGE,
              summary="Change a survey")
def patch_survey(request: HttpRequest, survey_id: str, body: SurveyPatch) -> dict[str, Any]:
    changes = {k: v for k, v in body.dict().items() if v is not None}
    if not changes:
        raise InvalidInput("send at least one field to change", code="nothing_to_change")
    return survey_out(actions.update_survey(survey_id, actor=actor_of(request), **changes))


@router.post("/surveys/{survey_id}/invitations", response={201: InvitationOut, **ERRORS},
             auth=MANAGE, summary="Invite one customer (the contact policy decides first)")
def invite(request: HttpRequest, survey_id: str, body: InvitationIn
           ) -> Status:
    survey = queries.survey_by_id(survey_id)
    profile_id = identity_queries.parse_profile_id(body.profile_id)
    invitation = actions.invite(survey=survey, profile_id=profile_id, channel=body.channel,
                                touchpoint=body.touchpoint, actor=actor_of(request))
    return Status(201, invitation_out(invitation))


def _person_of(body: ResponseIn) -> tuple[uuid.UUID | None, dict[str, Any] | None]:
    if body.profile_id:
        return identity_queries.parse_profile_id(body.profile_id), None
    if body.user_id:
        return None, {"userId": body.user_id}
    if body.email:
        return None, {"context": {"traits": {"email": body.email}}}
    raise InvalidInput("say who answered: profile_id, user_id or email", code="no_person")


@router.post("/surveys/{survey_id}/responses", response={201: ResponseOut, **ERRORS},
             auth=MANAGE, summary="Record an answer collected elsewhere")
def add_response(request: HttpRequest, survey_id: str, body: ResponseIn
                 ) -> Status:
    survey = queries.survey_by_id(survey_id)
    profile_id, person = _person_of(body)
    response = actions.submit(actions.Submission(
        survey=survey, answers=body.answers, channel="api", language=body.language,
        profile_id=profile_id, person=person, client_key=body.client_key,
        submitted_at=body.submitted_at, touchpoint=body.touchpoint), actor=actor_of(request))
    return Status(201, response_out(response, queries.canonical_theme_names()))


@router.get("/surveys/{survey_id}/responses", response={200: list[ResponseOut], **ERRORS},
            auth=VERBATIMS, summary="Latest responses with their comments")
def list_responses(request: HttpRequest, survey_id: str, limit: int = 50
                   ) -> list[dict[str, Any]]:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be from 1 to 500", code="invalid_limit")
    survey = queries.survey_by_id(survey_id)
    rows = list(queries.responses_of(survey).prefetch_related("themes")[:limit])
    audit.record_reads(actor_of(request), "response", [str(r.id) for r in rows],
                       ["answers", "comment"])
    names = queries.canonical_theme_names()
    return [response_out(r, names) for r in rows]


@router.get("/themes", response={200: list[ThemeOut], **ERRORS}, auth=READ,
            summary="Themes found in open-text answers")
def list_themes(request: HttpRequest) -> list[dict[str, Any]]:
    return [{"id": t.id, "name": t.name, "keywords": t.keywords, "edited": t.edited,
             "volume": getattr(t, "volume", 0)} for t in queries.active_themes()]


def theme_job_out(job: ThemeJob) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "requested_by": job.requested_by,
        "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "comments": job.comments,
        "theme_links": job.theme_links, "themes_created": job.themes_created,
        "themes_replaced": job.themes_replaced, "error": job.error,
        "links": {"self": f"/api/v1/themes/jobs/{job.id}", "themes": "/api/v1/themes"},
    }


@router.post("/themes/discover", response={202: ThemeJobOut, **ERRORS}, auth=MANAGE,
             summary="Discover themes in every comment, in the background (edited themes are "
                     "kept)",
             description="Answers at once with the job; a worker (`cxm worker`) runs it. While "
                         "a discovery is queued or running, that job is returned instead of a "
                         "new one. Poll `links.self` until `status` is `done` or `failed`.")
def discover(request: HttpRequest, body: DiscoverIn) -> Status:
    requested = actions.request_discovery(actor=actor_of(request), max_themes=body.max_themes)
    return Status(202, theme_job_out(requested.job))


@router.get("/themes/jobs/{job_id}", response={200: ThemeJobOut, **ERRORS}, auth=READ,
            summary="A theme job's status")
def get_theme_job(request: HttpRequest, job_id: int) -> dict[str, Any]:
    return theme_job_out(queries.theme_job(job_id))


def _theme_out(theme: Theme) -> dict[str, Any]:
    return {"id": theme.id, "name": theme.name, "keywords": theme.keywords,
            "edited": theme.edited, "volume": theme.responses.count()}


@router.patch("/themes/{theme_id}", response={200: ThemeEditOut, **ERRORS}, auth=MANAGE,
              summary="Rename a theme or change its key words",
              description="The theme changes at once. New key words change which answers "
                          "belong to it: `job` is the background re-sort of every comment.")
def patch_theme(request: HttpRequest, theme_id: int, body: ThemePatch) -> dict[str, Any]:
    if body.name is None and body.keywords is None:
        raise InvalidInput("send name or keywords", code="nothing_to_change")
    edit = actions.edit_theme(theme_id, actor=actor_of(request), name=body.name,
                              keywords=body.keywords)
    return {**_theme_out(edit.theme),
            "job": theme_job_out(edit.job) if edit.job is not None else None}


@router.post("/themes/{theme_id}/merge", response={200: ThemeOut, **ERRORS}, auth=MANAGE,
             summary="Merge this theme into another")
def merge_theme(request: HttpRequest, theme_id: int, body: ThemeMergeIn) -> dict[str, Any]:
    return _theme_out(actions.merge_themes(theme_id, body.into, actor=actor_of(request)))


@router.get("/contact-policy", response={200: RulesIO, **ERRORS}, auth=READ,
            summary="The company-wide contact rules")
def get_policy(request: HttpRequest) -> dict[str, Any]:
    return queries.global_rules().as_dict()


@router.put("/contact-policy", response={200: RulesIO, **ERRORS}, auth=MANAGE,
            summary="Change the company-wide contact rules")
def put_policy(request: HttpRequest, body: RulesIO) -> dict[str, Any]:
    return actions.set_global_rules(body.dict(), actor=actor_of(request)).as_dict()

