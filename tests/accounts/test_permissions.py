"""The permission matrix: the table itself, the principals, and a walk of every role and every
key scope against every URL of the web UI, the ingest API and every operation of the REST API.

The walk fails when someone adds a URL or an API operation without listing it below with the
permission it needs: list it in ``WEB``, ``API`` or ``INGEST`` (and in docs/security.md)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from cxm.accounts import actions, permissions, principals
from cxm.accounts.permissions import MATRIX, Principal
from cxm.core.audit import Actor
from cxm.identity import queries
from tests.web.conftest import PASSWORD, ingest, make_customer, stamp

ROOT = Path(__file__).resolve().parents[2]
PUBLIC: tuple[str, ...] = ()

# --- the table itself ------------------------------------------------------------------------

# A literal copy: changing who may do what must be a deliberate edit in two places.
EXPECTED_MATRIX = {
    "admin": set(permissions.PERMISSIONS),
    "analyst": {"profile.read", "profile.read_personal", "surveys.read", "surveys.manage",
                "feedback.verbatims"},
    "agent": {"profile.read", "profile.read_personal", "consent.edit", "surveys.read",
              "feedback.verbatims"},
    "marketer": {"profile.read", "journeys.manage", "surveys.read", "surveys.manage"},
    "viewer": {"profile.read", "surveys.read"},
    "key:ingest": {"events.ingest"},
    "key:read": {"profile.read", "profile.read_personal", "surveys.read",
                 "feedback.verbatims"},
    "key:admin": set(permissions.PERMISSIONS),
}


def test_the_matrix_is_as_documented() -> None:
    assert {entry: set(granted) for entry, granted in MATRIX.items()} == EXPECTED_MATRIX
    permissions.check_matrix()


def test_docs_table_matches_the_matrix() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("## Roles and permissions", 1)[1]
    header = next(line for line in section.splitlines() if line.startswith("| permission |"))
    columns = [c.strip().strip("`").replace("key `", "key:").replace("`", "")
               for c in header.strip("|").split("|")][2:]
    assert columns == [*permissions.ROLES, *(f"key:{s}" for s in permissions.KEY_SCOPES)]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z_.]+)` \|", line)
        if match and match.group(1) in permissions.PERMISSIONS:
            cells = [c.strip() for c in line.strip("|").split("|")][2:]
            rows[match.group(1)] = {col for col, cell in zip(columns, cells, strict=True)
                                    if cell == "✓"}
    assert set(rows) == set(permissions.PERMISSIONS)
    for permission, holders in rows.items():
        assert holders == {e for e, g in MATRIX.items() if permission in g}, permission


def test_allows() -> None:
    viewer = permissions.role_principal("viewer", "user:1")
    assert permissions.allows(viewer, "profile.read")
    assert not permissions.allows(viewer, "profile.read_personal")
    assert not permissions.allows(None, "profile.read")
    assert not permissions.allows(permissions.ANONYMOUS, "profile.read")
    assert not permissions.allows(permissions.role_principal("root", "user:2"), "profile.read")
    assert not permissions.allows(permissions.key_principal("write", "key:x"), "events.ingest")
    with pytest.raises(KeyError, match="unknown permission"):
        permissions.allows(viewer, "profile.reed")
    operator = permissions.local_operator("ops")
    assert operator == Principal("admin", "cli:ops")
    assert all(permissions.allows(operator, p) for p in permissions.PERMISSIONS)


def test_an_ingest_key_grants_nothing_but_ingest() -> None:
    key = permissions.key_principal("ingest", "key:abc")
    assert [p for p in permissions.PERMISSIONS if permissions.allows(key, p)] == [
        "events.ingest"]


def test_requires_refuses_unknown_permission_names() -> None:
    from cxm.accounts.api_auth import needs
    from cxm.web.access import requires

    with pytest.raises(KeyError):
        requires("profiles.read")
    with pytest.raises(KeyError):
        needs("keys.manages")


@pytest.mark.django_db
def test_principal_of_a_user() -> None:
    user_model = get_user_model()
    analyst = user_model.objects.get(pk=actions.create_user(
        username="ann", password=PASSWORD, role="analyst", actor=Actor("t")))
    assert principals.of_user(analyst) == Principal("analyst", f"user:{analyst.pk}")
    nobody = user_model.objects.create_user(username="bare", password=PASSWORD)
    assert principals.role_of(nobody) is None  # no membership: no role, no rights
    assert principals.of_user(nobody).grants == frozenset()
    root = user_model.objects.create_superuser(username="root", password=PASSWORD)
    assert principals.role_of(root) == "admin"
    analyst.is_active = False
    assert principals.role_of(analyst) is None
    assert principals.of_user(None) == permissions.ANONYMOUS


# --- the walk --------------------------------------------------------------------------------


@dataclass
class World:
    """Real rows, made through the ingest path and the actions."""

    ada: Any
    survivor: uuid.UUID
    merge_id: int
    grace: uuid.UUID
    alan: uuid.UUID
    erasable: uuid.UUID
    web_erasable: uuid.UUID
    web_victim_key: str
    api_victim_key: str
    target_user: int
    inactive_user: int
    secrets: list[str] = field(default_factory=list)


def build_world() -> World:
    ada = make_customer(tracks=3)
    grace = make_customer(name="Grace Hopper", email="grace@example.org",
                          phone="+442079460958", user_id="u-grace", anonymous_id="anon-grace",
                          tracks=1, prefix="gr")
    alan = make_customer(name="Alan Turing", email="alan@example.co.uk",
                         phone="+442079460123", user_id="u-alan", anonymous_id="anon-alan",
                         tracks=1, prefix="al")
    erasable = make_customer(name="Eve Erasable", email="eve@example.net",
                             phone="+13105550199", user_id="u-eve", anonymous_id="anon-eve",
                             tracks=1, prefix="ev")
    web_erasable = make_customer(name="Wes Erasable", email="wes@example.net",
                                 phone="+13105550188", user_id="u-wes", anonymous_id="anon-wes",
                                 tracks=1, prefix="we")
    ingest([{"type": "identify", "messageId": "m-1", "anonymousId": "anon-m",
             "timestamp": stamp(0), "traits": {"email": "hedy@example.com"}}])
    survivor = queries.by_identifier("anonymous_id", "anon-m").id
    ingest([{"type": "identify", "messageId": "m-2", "userId": "u-hedy", "timestamp": stamp(5)}])
    ingest([{"type": "track", "messageId": "m-4", "userId": "u-hedy", "anonymousId": "anon-m",
             "event": "Checkout Started", "timestamp": stamp(10)}])
    (merge,) = queries.merges(queries.canonical(survivor))
    web_victim, _ = actions.create_api_key(name="web victim", scope="ingest", actor=Actor("t"))
    api_victim, _ = actions.create_api_key(name="api victim", scope="ingest", actor=Actor("t"))
    target = actions.create_user(username="target", password=PASSWORD, role="viewer",
                                 actor=Actor("t"))
    inactive = actions.create_user(username="sleeper", password=PASSWORD, role="viewer",
                                   actor=Actor("t"))
    actions.deactivate_user(user_id=inactive, actor=Actor("t"))
    return World(ada=ada, survivor=survivor, merge_id=merge.pk, grace=grace.id, alan=alan.id,
                 erasable=erasable.id, web_erasable=web_erasable.id,
                 web_victim_key=web_victim.prefix,
                 api_victim_key=api_victim.prefix, target_user=target,
                 inactive_user=inactive)


@dataclass(frozen=True)
class Case:
    method: str
    needs: tuple[str, ...]  # () = public
    url: Callable[[World], str]
    data: Callable[[World], dict[str, Any]] | None = None
    late: int = 0  # 1: changes what other cases use, 2: signs out; run in this order


def fixed(url: str) -> Callable[[World], str]:
    return lambda w: url


def form(**values: Any) -> Callable[[World], dict[str, Any]]:
    return lambda w: values


READ = ("profile.read",)

# Every URL of the web UI, by its route. Each view must carry @requires(...) or @public.
WEB: dict[str, list[Case]] = {
    "healthz": [Case("get", PUBLIC, fixed("/healthz"))],
    "login/": [Case("get", PUBLIC, fixed("/login/"))],
    "logout/": [Case("post", PUBLIC, fixed("/logout/"), late=2)],
    "": [Case("get", READ, fixed("/?q=ada"))],
    "customers/": [Case("get", READ, fixed("/customers/"))],
    "customers/results/": [Case("get", READ, fixed("/customers/results/?q=ada@example.com"))],
    "customers/<uuid:profile_id>/": [Case("get", READ, lambda w: f"/customers/{w.ada.id}/")],
    "customers/<uuid:profile_id>/timeline/": [
        Case("get", READ, lambda w: f"/customers/{w.ada.id}/timeline/?channel=email")],
    "customers/<uuid:profile_id>/merges/<int:merge_id>/undo/": [
        Case("post", ("profile.merge",),
             lambda w: f"/customers/{w.survivor}/merges/{w.merge_id}/undo/")],
    "customers/<uuid:profile_id>/consent/": [
        Case("post", ("consent.edit",), lambda w: f"/customers/{w.ada.id}/consent/",
             form(channel="email", purpose="marketing", granted="no"))],
    "customers/<uuid:profile_id>/export/": [
        Case("get", ("privacy.export",), lambda w: f"/customers/{w.ada.id}/export/")],
    "customers/<uuid:profile_id>/erase/": [
        Case("post", ("privacy.erase",), lambda w: f"/customers/{w.web_erasable}/erase/",
             form(confirm="erase"), late=1)],
    "audit/": [Case("get", ("audit.read",), fixed("/audit/?action=profile.*"))],
    "settings/keys/": [
        Case("get", ("keys.manage",), fixed("/settings/keys/")),
        Case("post", ("keys.manage",), fixed("/settings/keys/"),
             form(name="made by the walk", scope="read")),
    ],
    "settings/keys/<str:prefix>/revoke/": [
        Case("post", ("keys.manage",), lambda w: f"/settings/keys/{w.web_victim_key}/revoke/")],
    "settings/users/": [
        Case("get", ("users.manage",), fixed("/settings/users/")),
        Case("post", ("users.manage",), fixed("/settings/users/"),
             form(username="newbie", password="a-long-password-9", role="viewer")),
    ],
    "settings/users/<int:user_id>/role/": [
        Case("post", ("users.manage",), lambda w: f"/settings/users/{w.target_user}/role/",
             form(role="analyst"))],
    "settings/users/<int:user_id>/deactivate/": [
        Case("post", ("users.manage",),
             lambda w: f"/settings/users/{w.target_user}/deactivate/", late=1)],
    "settings/users/<int:user_id>/reactivate/": [
        Case("post", ("users.manage",),
             lambda w: f"/settings/users/{w.inactive_user}/reactivate/")],
    # Survey pages (cxm.web.survey_views); walk_survey()/walk_themes() build their rows.
    "surveys/": [Case("get", ("surveys.read",), fixed("/surveys/"))],
    "surveys/new/": [
        Case("get", ("surveys.manage",), fixed("/surveys/new/?kind=csat")),
        Case("post", ("surveys.manage",), fixed("/surveys/new/"), form(
            name="Walk CSAT", kind="csat", status="active", q_count="1", t_count="0",
            q0_id="score", q0_type="csat", q0_text="Happy?", q0_required="on", op="save"))],
    "surveys/<uuid:survey_id>/": [
        Case("get", ("surveys.read",), lambda w: f"/surveys/{walk_survey().id}/")],
    "surveys/<uuid:survey_id>/edit/": [
        Case("get", ("surveys.manage",), lambda w: f"/surveys/{walk_survey().id}/edit/"),
        Case("post", ("surveys.manage",), lambda w: f"/surveys/{walk_survey().id}/edit/",
             form(name="Walk NPS", kind="nps", status="active", touchpoint="walk",
                  q_count="2", t_count="0", q0_id="score", q0_type="nps",
                  q0_text="Recommend us?", q0_required="on", q1_id="why", q1_type="text",
                  q1_text="Why?", op="save"))],
    "surveys/<uuid:survey_id>/trend/": [
        Case("get", ("surveys.read",),
             lambda w: f"/surveys/{walk_survey().id}/trend/?period=month")],
    "surveys/<uuid:survey_id>/drivers/": [
        Case("get", ("surveys.read",), lambda w: f"/surveys/{walk_survey().id}/drivers/")],
    "surveys/<uuid:survey_id>/invite/": [
        Case("post", ("surveys.manage",), lambda w: f"/surveys/{walk_survey().id}/invite/",
             lambda w: {"customer": str(w.ada.id), "channel": "link"})],
    "surveys/themes/": [Case("get", ("surveys.read",), fixed("/surveys/themes/"))],
    "surveys/themes/<int:theme_id>/edit/": [
        Case("post", ("surveys.manage",), lambda w: f"/surveys/themes/{walk_themes()[0]}/edit/",
             form(name="Walk delivery"))],
    "surveys/themes/<int:theme_id>/merge/": [  # into itself: refused, nothing changes
        Case("post", ("surveys.manage",), lambda w: f"/surveys/themes/{walk_themes()[0]}/merge/",
             lambda w: {"into": str(walk_themes()[0])})],
    "surveys/themes/discover/": [
        Case("post", ("surveys.manage",), fixed("/surveys/themes/discover/"), late=1)],
    "surveys/themes/jobs/<int:job_id>/": [
        Case("get", ("surveys.read",), lambda w: f"/surveys/themes/jobs/{walk_theme_job()}/")],
    "settings/contact-policy/": [
        Case("get", ("surveys.read",), fixed("/settings/contact-policy/"))],
    "settings/contact-policy/save/": [
        Case("post", ("surveys.manage",), fixed("/settings/contact-policy/save/"),
             form(min_days_between="21", touchpoint_days="60", survey_days="0",
                  max_contacts_7d="3", require_consent="on"))],
    # Respondents and the survey widget (cxm.web.public_urls): no session. The widget's JSON
    # endpoints check a write key or an invitation token themselves (tests/web/test_widget.py);
    # walked here with their CORS preflight, which anyone may send.
    "s/<str:token>/": [Case("get", PUBLIC, lambda w: walk_survey_link())],
    "s/<str:token>/opt-out/": [Case("get", PUBLIC, lambda w: walk_survey_link() + "opt-out/")],
    "widget.js": [Case("get", PUBLIC, fixed("/widget.js"))],
    "w/v1/surveys/<str:slug>/ask": [Case("options", PUBLIC, fixed("/w/v1/surveys/walk/ask"))],
    "w/v1/responses": [Case("options", PUBLIC, fixed("/w/v1/responses"))],
}


def walk_survey_link() -> str:
    """A personal survey link (made once per world) for someone who agreed to research."""
    from cxm.core.errors import NotFound
    from cxm.feedback import actions as feedback_actions
    from cxm.feedback import tokens
    from cxm.feedback.models import Invitation

    try:
        respondent = queries.by_identifier("user_id", "u-walk-respondent")
    except NotFound:
        ingest([{"type": "identify", "messageId": "walk-respondent", "timestamp": stamp(0),
                 "userId": "u-walk-respondent",
                 "traits": {"consent": {"email": {"research": True}}}}])
        respondent = queries.by_identifier("user_id", "u-walk-respondent")
    invitation = Invitation.objects.filter(profile_id=respondent.id).first() or \
        feedback_actions.invite(survey=walk_survey(), profile_id=respondent.id, channel="link",
                                actor=Actor("t"))
    return f"/s/{tokens.token_for(invitation.nonce)}/"


PROFILE = ("profile.read", "profile.read_personal")
API_PUBLIC = {"api/v1/openapi.json": "/api/v1/openapi.json", "api/v1/docs": "/api/v1/docs"}

SURVEYS = ("surveys.read",)
MANAGE_SURVEYS = ("surveys.manage",)
WALK_COMMENTS = ["The delivery was late and the courier was rude",
                 "Late delivery again, the parcel arrived a week late",
                 "Delivery late, courier never rang",
                 "Great price and cheap shipping", "Good price, cheaper than the shop",
                 "The price was fair and the discount great"]


def walk_survey() -> Any:
    """A survey (made once per world through the actions) for the feedback cases."""
    from cxm.feedback import actions as feedback_actions
    from cxm.feedback.models import Survey

    found = Survey.objects.filter(name="Walk NPS").first()
    if found is not None:
        return found
    return feedback_actions.create_survey(
        name="Walk NPS", kind="nps", actor=Actor("t"), definition={"questions": [
            {"id": "score", "type": "nps", "text": "Recommend us?", "required": True},
            {"id": "why", "type": "text", "text": "Why?"}]})


def walk_themes() -> list[int]:
    """Two themes discovered from real answers (made once per world)."""
    from cxm.feedback import actions as feedback_actions
    from cxm.feedback.models import Theme

    themes = list(Theme.objects.filter(merged_into__isnull=True).order_by("id")
                  .values_list("id", flat=True))
    if len(themes) >= 2:
        return themes
    survey = walk_survey()
    if not survey.responses.filter(client_key="walk-0").exists():  # a later discovery may
        for index, comment in enumerate(WALK_COMMENTS):  # have left fewer than two themes
            feedback_actions.submit(feedback_actions.Submission(
                survey=survey, answers={"score": index + 2, "why": comment}, channel="import",
                client_key=f"walk-{index}"), actor=Actor("t"))
    feedback_actions.discover_themes(actor=Actor("t"), max_themes=2)
    themes = list(Theme.objects.filter(merged_into__isnull=True).order_by("id")
                  .values_list("id", flat=True))
    assert len(themes) >= 2, "theme discovery found fewer than two themes"
    return themes


def walk_theme_job() -> int:
    """A theme discovery job (queued: no worker runs in the walk), made once per world."""
    from cxm.feedback import actions as feedback_actions
    from cxm.feedback.models import ThemeJob

    found = ThemeJob.objects.order_by("id").first()
    if found is not None:
        return found.id
    return feedback_actions.request_discovery(actor=Actor("t"), max_themes=2).job.id


# Every operation of /api/v1/openapi.json.
API: dict[tuple[str, str], Case] = {
    ("get", "/api/v1/profiles"): Case("get", PROFILE, fixed("/api/v1/profiles?q=ada")),
    ("get", "/api/v1/profiles/lookup"): Case(
        "get", PROFILE, fixed("/api/v1/profiles/lookup?email=ada@example.com")),
    ("get", "/api/v1/profiles/{profile_id}"): Case(
        "get", PROFILE, lambda w: f"/api/v1/profiles/{w.ada.id}"),
    ("get", "/api/v1/profiles/{profile_id}/timeline"): Case(
        "get", PROFILE, lambda w: f"/api/v1/profiles/{w.ada.id}/timeline"),
    ("get", "/api/v1/profiles/{profile_id}/identities"): Case(
        "get", PROFILE, lambda w: f"/api/v1/profiles/{w.ada.id}/identities"),
    ("get", "/api/v1/profiles/{profile_id}/merges"): Case(
        "get", PROFILE, lambda w: f"/api/v1/profiles/{w.survivor}/merges"),
    ("post", "/api/v1/profiles/{profile_id}/merge"): Case(
        "post", ("profile.merge",), lambda w: f"/api/v1/profiles/{w.grace}/merge",
        lambda w: {"merged_id": str(w.alan)}),
    ("post", "/api/v1/merges/{merge_id}/undo"): Case(
        "post", ("profile.merge",), lambda w: f"/api/v1/merges/{w.merge_id}/undo"),
    ("get", "/api/v1/keys"): Case("get", ("keys.manage",), fixed("/api/v1/keys")),
    ("post", "/api/v1/keys"): Case("post", ("keys.manage",), fixed("/api/v1/keys"),
                                   form(name="made by the walk", scope="read")),
    ("delete", "/api/v1/keys/{prefix}"): Case(
        "delete", ("keys.manage",), lambda w: f"/api/v1/keys/{w.api_victim_key}"),
    ("get", "/api/v1/profiles/{profile_id}/consent/check"): Case(
        "get", READ,
        lambda w: f"/api/v1/profiles/{w.ada.id}/consent/check?channel=email&purpose=marketing"),
    ("put", "/api/v1/profiles/{profile_id}/consent"): Case(
        "put", ("consent.edit",), lambda w: f"/api/v1/profiles/{w.ada.id}/consent",
        form(channel="email", purpose="marketing", granted=False)),
    ("get", "/api/v1/profiles/{profile_id}/export"): Case(
        "get", ("privacy.export",), lambda w: f"/api/v1/profiles/{w.ada.id}/export"),
    ("post", "/api/v1/profiles/{profile_id}/erase"): Case(
        "post", ("privacy.erase",), lambda w: f"/api/v1/profiles/{w.erasable}/erase",
        late=1),
    ("get", "/api/v1/surveys"): Case("get", SURVEYS, fixed("/api/v1/surveys")),
    ("post", "/api/v1/surveys"): Case(
        "post", MANAGE_SURVEYS, fixed("/api/v1/surveys"),
        form(name="Made by the walk", kind="csat", definition={"questions": [
            {"id": "score", "type": "csat", "text": "Happy?", "required": True}]})),
    ("get", "/api/v1/surveys/{survey_id}"): Case(
        "get", SURVEYS, lambda w: f"/api/v1/surveys/{walk_survey().id}"),
    ("patch", "/api/v1/surveys/{survey_id}"): Case(
        "patch", MANAGE_SURVEYS, lambda w: f"/api/v1/surveys/{walk_survey().id}",
        form(touchpoint="checkout")),
    ("post", "/api/v1/surveys/{survey_id}/invitations"): Case(
        "post", MANAGE_SURVEYS, lambda w: f"/api/v1/surveys/{walk_survey().id}/invitations",
        lambda w: {"profile_id": str(w.ada.id), "channel": "link"}),
    ("post", "/api/v1/surveys/{survey_id}/responses"): Case(
        "post", MANAGE_SURVEYS, lambda w: f"/api/v1/surveys/{walk_survey().id}/responses",
        lambda w: {"answers": {"score": 9}, "profile_id": str(w.ada.id)}),
    ("get", "/api/v1/surveys/{survey_id}/responses"): Case(
        "get", ("surveys.read", "feedback.verbatims"),
        lambda w: f"/api/v1/surveys/{walk_survey().id}/responses"),
    ("get", "/api/v1/surveys/{survey_id}/results"): Case(
        "get", SURVEYS, lambda w: f"/api/v1/surveys/{walk_survey().id}/results"),
    ("get", "/api/v1/surveys/{survey_id}/drivers"): Case(
        "get", SURVEYS, lambda w: f"/api/v1/surveys/{walk_survey().id}/drivers"),
    ("get", "/api/v1/metrics/{kind}"): Case("get", SURVEYS, fixed("/api/v1/metrics/nps")),
    ("get", "/api/v1/themes"): Case("get", SURVEYS, fixed("/api/v1/themes")),
    ("get", "/api/v1/themes/stats"): Case("get", SURVEYS, fixed("/api/v1/themes/stats")),
    ("post", "/api/v1/themes/discover"): Case(
        "post", MANAGE_SURVEYS, fixed("/api/v1/themes/discover"), form(max_themes=3)),
    ("get", "/api/v1/themes/jobs/{job_id}"): Case(
        "get", SURVEYS, lambda w: f"/api/v1/themes/jobs/{walk_theme_job()}"),
    ("patch", "/api/v1/themes/{theme_id}"): Case(
        "patch", MANAGE_SURVEYS, lambda w: f"/api/v1/themes/{walk_themes()[0]}",
        form(name="Renamed by the walk")),
    ("post", "/api/v1/themes/{theme_id}/merge"): Case(
        "post", MANAGE_SURVEYS, lambda w: f"/api/v1/themes/{walk_themes()[1]}/merge",
        lambda w: {"into": walk_themes()[0]}, late=1),
    ("get", "/api/v1/contact-policy"): Case("get", SURVEYS, fixed("/api/v1/contact-policy")),
    ("put", "/api/v1/contact-policy"): Case(
        "put", MANAGE_SURVEYS, fixed("/api/v1/contact-policy"),
        form(min_days_between=20, touchpoint_days=90, survey_days=0, max_contacts_7d=0,
             require_consent=True)),
}

# The Segment-compatible ingest API: every route needs events.ingest.
INGEST_TYPES = {"track": "track", "identify": "identify", "page": "page", "screen": "screen",
                "group": "group", "alias": "alias", "batch": None, "import": None,
                "t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group",
                "a": "alias", "b": None, "m": None}


def ingest_body(kind: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"userId": "u-walk", "event": "Walked", "groupId": "g-1",
                               "previousId": "anon-walk", "messageId": str(uuid.uuid4())}
    if kind is None:
        return {"batch": [{**message, "type": "track"}]}
    return message


def walk_patterns(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def openapi_operations(client: Client) -> set[tuple[str, str]]:
    document = client.get("/api/v1/openapi.json").json()
    return {(method, path) for path, methods in document["paths"].items() for method in methods
            if method in {"get", "post", "put", "patch", "delete"}}


@pytest.mark.django_db
def test_every_url_and_operation_is_in_the_expectations_table(client: Client) -> None:
    operations = openapi_operations(client)
    assert operations == set(API), (
        "REST operations without an expectation (add them to API with their permission): "
        f"{sorted(operations - set(API))}; listed but gone: {sorted(set(API) - operations)}")
    api_paths = {re.sub(r"\{(\w+)\}", r"<\1>", path.removeprefix("/")) for _, path in API}
    unlisted = []
    for route, callback in walk_patterns(get_resolver().url_patterns):
        if route.startswith("v1/"):
            if route.removeprefix("v1/") not in INGEST_TYPES:
                unlisted.append(route)
        elif route.startswith("api/v1/"):
            if route not in api_paths and route not in API_PUBLIC and route != "api/v1/":
                unlisted.append(route)
        elif route not in WEB:
            unlisted.append(route)
        else:
            # The view states its permission, and it is the one listed here.
            declared = getattr(callback, "cxm_permissions", None)
            assert declared is not None, f"{route}: use @requires(...) or @public"
            assert {tuple(declared)} == {case.needs for case in WEB[route]}, route
    assert unlisted == [], f"URLs without an expectation: {unlisted}"


@dataclass(frozen=True)
class Who:
    name: str
    kind: str  # "anonymous", "user", "key"
    principal: Principal


WHO = [
    Who("anonymous", "anonymous", permissions.ANONYMOUS),
    *(Who(role, "user", permissions.role_principal(role, "user")) for role in permissions.ROLES),
    Who("no role", "user", Principal(None, "user")),
    Who("deactivated admin", "anonymous", permissions.ANONYMOUS),
    *(Who(f"key:{scope}", "key", permissions.key_principal(scope, "key"))
      for scope in permissions.KEY_SCOPES),
]


def sign_in(client: Client, who: Who) -> tuple[dict[str, str], Any]:
    """Sets the client up as ``who``; returns the headers to send and the user, if any."""
    user_model = get_user_model()
    user = None
    if who.kind == "user":
        if who.principal.entry is None:
            user = user_model.objects.create_user(username="nobody", password=PASSWORD)
        else:
            user = user_model.objects.get(pk=actions.create_user(
                username=f"as-{who.name}", password=PASSWORD, role=who.name,
                actor=Actor("t")))
        client.force_login(user)
    elif who.name == "deactivated admin":
        actions.create_user(username="keeper", password=PASSWORD, role="admin",
                            actor=Actor("t"))  # the last admin cannot be deactivated
        user = user_model.objects.get(pk=actions.create_user(
            username="former", password=PASSWORD, role="admin", actor=Actor("t")))
        client.force_login(user)
        actions.deactivate_user(user_id=user.pk, actor=Actor("t"))
    elif who.kind == "key":
        _, plaintext = actions.create_api_key(name="walker", scope=who.name[4:],
                                              actor=Actor("t"))
        return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}, None
    return {}, user


def send(client: Client, case: Case, world: World, headers: dict[str, str],
         as_json: bool) -> Any:
    url = case.url(world)
    data = case.data(world) if case.data else None
    if as_json:
        return getattr(client, case.method)(url, data, content_type="application/json",
                                            **headers)
    if case.method == "get":
        return client.get(url, **headers)
    return getattr(client, case.method)(url, data or {}, **headers)


def personal_values(world: World) -> list[str]:
    ada = world.ada
    return [ada.email, ada.name, ada.phone, "grace@example.org", "Grace Hopper",
            "hedy@example.com"]


# Not wrapped in a test transaction: requests run as they do in production (erasure
# checkpoints SQLite's write-ahead log, which cannot happen inside an open transaction).
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", WHO, ids=[w.name for w in WHO])
def test_walk_the_permission_matrix(client: Client, who: Who) -> None:
    world = build_world()
    headers, user = sign_in(client, who)
    problems: list[str] = []

    def check(surface: str, case: Case, response: Any, allowed: bool, refusal: set[int],
              signed_in_refusal: str = "") -> None:
        status = response.status_code
        where = f"{who.name}: {case.method.upper()} {case.url(world)} -> {status}"
        if allowed:
            location = response.get("Location", "") if case.needs else ""
            if not 200 <= status < 400 or location.startswith("/login/"):
                problems.append(f"{where}, expected 2xx/3xx")
            return
        if status not in refusal:
            problems.append(f"{where}, expected {sorted(refusal)} ({signed_in_refusal})")
        if status == 302 and not response["Location"].startswith("/login/?next="):
            problems.append(f"{where}: redirected to {response['Location']}, not the login")
        body = response.content.decode(errors="replace")
        leaked = [value for value in personal_values(world) if value in body]
        if leaked:
            problems.append(f"{where}: refused answer contains personal data {leaked}")

    # The web UI: sessions only; a key in the header counts for nothing here.
    web_cases = [case for cases in WEB.values() for case in cases]
    for case in sorted(web_cases, key=lambda c: c.late):
        response = send(client, case, world, headers, as_json=False)
        if not case.needs:
            check("web", case, response, True, set())
        elif who.kind == "user":
            allowed = all(permissions.allows(who.principal, p) for p in case.needs)
            check("web", case, response, allowed, {403}, "signed in without the permission")
        else:
            check("web", case, response, False, {302}, "anonymous: to the login page")

    # The REST API and the ingest API: keys only; a session counts for nothing there.
    if user is not None and user.is_active:
        client.force_login(user)  # again: the walk above signed out at its end
    for route, public_url in API_PUBLIC.items():
        response = client.get(public_url, **headers)
        if response.status_code != 200:
            problems.append(f"{who.name}: GET {route} -> {response.status_code}")
    for case in sorted(API.values(), key=lambda c: c.late):
        response = send(client, case, world, headers, as_json=True)
        if who.kind == "key":
            allowed = all(permissions.allows(who.principal, p) for p in case.needs)
            check("api", case, response, allowed, {403}, "key without the permission")
            if not allowed:
                assert response.json()["code"] == "forbidden"
        else:
            check("api", case, response, False, {401}, "no key")
    for short, kind in INGEST_TYPES.items():
        case = Case("post", ("events.ingest",), fixed(f"/v1/{short}"),
                    lambda w, kind=kind: ingest_body(kind))
        response = send(client, case, world, headers, as_json=True)
        if who.kind == "key":
            allowed = permissions.allows(who.principal, "events.ingest")
            check("ingest", case, response, allowed, {403}, "key without events.ingest")
        else:
            check("ingest", case, response, False, {401}, "no key")
    assert problems == [], "\n".join(problems)


# --- what the allowed answers hold -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "personal"), [
    ("admin", True), ("analyst", True), ("agent", True), ("marketer", False), ("viewer", False)])
def test_personal_fields_are_masked_without_read_personal(
    client: Client, role: str, personal: bool,
) -> None:
    ada = make_customer(tracks=2)
    client.force_login(get_user_model().objects.get(pk=actions.create_user(
        username="who", password=PASSWORD, role=role, actor=Actor("t"))))
    pages = [client.get(f"/customers/{ada.id}/").content.decode(),
             client.get("/customers/").content.decode(),
             client.get("/customers/results/", {"q": "ada"}).content.decode()]
    for text in pages:
        for value in (ada.email, ada.name, ada.phone):
            assert (value in text) is personal, (role, value)
        assert ("a***@example.com" in text) is not personal
    page = pages[0]
    assert str(ada.id) in page and 'data-testid="profile-events">3<' in page
    if not personal:
        assert "a***@example.com" in page and "+1***" in page and "Ad***" in page
        assert "u-ada" not in page and "anon-ada" not in page  # identifiers masked too
        assert "gold" in page  # traits that are not personal stay readable
