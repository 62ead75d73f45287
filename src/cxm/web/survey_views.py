"""Pages for surveys: the list, the builder, results (with trend, slices, verbatims and the
"send to a customer" form), drivers, themes and the contact policy; plus the Surveys section
of the customer 360 page (:func:`profile_surveys`).

Thin like ``views``: reads through ``feedback.queries`` and ``metrics.queries``, writes only
through ``feedback.actions``. Aggregates need ``surveys.read``; what customers wrote (comments,
example answers) only reaches users with ``feedback.verbatims``, and every such page writes a
read-audit row. Nothing personal is logged.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cxm.core import audit
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import CxmError, NotFound
from cxm.feedback import actions, policy, queries
from cxm.feedback.models import Invitation, Response, Survey, ThemeJob
from cxm.identity import queries as identity_queries
from cxm.identity.models import Profile
from cxm.metrics import kpi
from cxm.metrics import queries as metrics_queries
from cxm.metrics.kpi import KpiResult, RateResult
from cxm.web import survey_forms
from cxm.web.access import allows, is_htmx, requires

PERIODS = ("day", "week", "month")
SLICES = (("channel", "Channel"), ("touchpoint", "Touchpoint"), ("stage", "Journey stage"),
          ("segment", "Segment"))
CLASSES = {
    "nps": (("promoters", "Promoters", "good", "9–10"), ("passives", "Passives", "mid", "7–8"),
            ("detractors", "Detractors", "bad", "0–6")),
    "csat": (("satisfied", "Satisfied", "good", "4–5"), ("neutral", "Neutral", "mid", "3"),
             ("dissatisfied", "Dissatisfied", "bad", "1–2")),
    "ces": (("easy", "Easy", "good", "5–7"), ("neutral", "Neutral", "mid", "4"),
            ("difficult", "Difficult", "bad", "1–3")),
}
CLASS_COLOURS = {"good": "#16a34a", "mid": "#eab308", "bad": "#dc2626"}
STATUS_TONES = {"pending": "muted", "sent": "info", "answered": "ok", "suppressed": "warn",
                "failed": "no", "draft": "muted", "active": "ok", "closed": "muted"}
VERBATIMS = 20
DRIVER_MIN_COUNT = 10


def _actor(request: HttpRequest) -> Actor:
    return Actor(f"user:{request.user.pk}", request.META.get("REMOTE_ADDR") or None)


def _survey_or_404(survey_id: uuid.UUID) -> Survey:
    try:
        return queries.survey_by_id(survey_id)
    except NotFound:
        raise Http404("no such survey") from None


# --- formatting ------------------------------------------------------------------------------


def _minus(text: str) -> str:
    return text.replace("-", "−")


def fmt_value(kind: str, value: float | None) -> str:
    if value is None:
        return "—"
    if kind == "nps":
        rounded = round(value)
        return _minus(f"{rounded:+d}") if rounded else "0"
    if kind == "csat":
        return f"{value:.0f}%"
    return f"{value:.1f}"


def fmt_ci(kind: str, result: KpiResult | RateResult) -> str:
    if result.ci is None:
        return ""
    if isinstance(result, RateResult):
        return f"{result.ci.low:.0f}–{result.ci.high:.0f}%"
    return f"{fmt_value(kind, result.ci.low)} to {fmt_value(kind, result.ci.high)}"


def kpi_view(kind: str, result: KpiResult) -> dict[str, Any]:
    classes = []
    for key, label, tone, scores in CLASSES.get(kind, ()):
        classes.append({"key": key, "label": label, "tone": tone, "scores": scores,
                        "count": result.counts.get(key, 0),
                        "share": result.shares.get(key)})
    return {
        "kind": kind, "label": survey_forms.KIND_LABELS.get(kind, kind.upper()),
        "value": fmt_value(kind, result.value), "raw": result.value,
        "ci": fmt_ci(kind, result),
        "ci_low": fmt_value(kind, result.ci.low) if result.ci else "",
        "ci_high": fmt_value(kind, result.ci.high) if result.ci else "",
        "responses": result.responses, "classes": classes,
        "unit": " / 7" if kind == "ces" else "", "tone": _tone_of(kind, result.value),
    }


def _classify(kind: str, point: int) -> str:
    try:
        name = {"nps": kpi.classify_nps, "csat": kpi.classify_csat,
                "ces": kpi.classify_ces}[kind](point)
    except (KeyError, ValueError):
        return "mid"
    return {"promoter": "good", "satisfied": "good", "easy": "good", "detractor": "bad",
            "dissatisfied": "bad", "difficult": "bad"}.get(name, "mid")


def _distribution_chart(kind: str, result: KpiResult) -> list[dict[str, Any]]:
    return [{"name": point, "value": count,
             "colour": CLASS_COLOURS[_classify(kind, int(point))]}
            for point, count in result.distribution.items()]


def _trend_chart(kind: str, trend: list[tuple[date, KpiResult]]) -> dict[str, Any]:
    low, high = {"nps": (-100, 100), "csat": (0, 100)}.get(kind, (1, 7))
    return {
        "kind": kind, "min": low, "max": high,
        "points": [{"start": start.isoformat(), "value": _round(r.value),
                    "low": _round(r.ci.low if r.ci else None),
                    "high": _round(r.ci.high if r.ci else None), "n": r.responses}
                   for start, r in trend],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _slice_rows(kind: str, rows: list[tuple[str, KpiResult]]) -> list[dict[str, Any]]:
    return [{"label": label or "(none)", "value": fmt_value(kind, r.value),
             "ci": fmt_ci(kind, r), "responses": r.responses,
             "tone": _tone_of(kind, r.value)} for label, r in rows]


def _tone_of(kind: str, value: float | None) -> str:
    if value is None:
        return ""
    good, bad = {"nps": (30, 0), "csat": (80, 60), "ces": (5, 4)}.get(kind, (0, 0))
    return "good" if value >= good else "bad" if value < bad else "mid"


# --- the list --------------------------------------------------------------------------------


def _headline(survey: Survey) -> dict[str, Any]:
    try:
        results = metrics_queries.survey_headline(survey)
    except ValueError:  # a custom survey without any score yet
        return {"kpi": None, "rate": None}
    rate = results.response_rate
    return {
        "kpi": kpi_view(results.kind, results.overall),
        "rate": None if rate is None or rate.value is None else {
            "value": f"{rate.value:.0f}%", "ci": fmt_ci("", rate), "invited": rate.invited},
    }


@require_safe
@requires("surveys.read")
def surveys(request: HttpRequest) -> HttpResponse:
    rows = []
    for survey in queries.surveys()[:200]:
        rows.append({"survey": survey, "responses": survey.responses.count(),
                     "kind_label": survey_forms.KIND_LABELS.get(survey.kind, survey.kind),
                     "tone": STATUS_TONES.get(survey.status, "muted"), **_headline(survey)})
    return render(request, "cxm/surveys/list.html", {"nav": "surveys", "tab": "surveys",
                                                      "rows": rows})


# --- the builder -----------------------------------------------------------------------------


def _builder(request: HttpRequest, state: survey_forms.BuilderState, *,
             survey: Survey | None, errors: list[str], note: str = "",
             json_open: bool = False, status: int = 200) -> HttpResponse:
    if not state.json_text:
        fields, _ = survey_forms.build(state)
        state.json_text = survey_forms.json_of(fields)
    rows = []
    for index, question in enumerate(state.questions):
        earlier = [{"id": q["id"], "text": q["text"]} for q in state.questions[:index]
                   if q["id"]]
        rows.append({"index": index, "number": index + 1, "q": question, "earlier": earlier,
                     "first": index == 0, "last": index == len(state.questions) - 1})
    translations = []
    for t_index, row in enumerate(state.translations):
        per_question = []
        for index, question in enumerate(state.questions):
            texts = row["questions"][index] if index < len(row["questions"]) else {
                "text": "", "choices": ""}
            per_question.append({"index": index, "q": question, "t": texts,
                                 "has_choices": question["type"] in {"single", "multi"}})
        translations.append({"index": t_index, "row": row, "questions": per_question})
    company = queries.global_rules().as_dict()
    response = render(request, "cxm/surveys/builder.html", {
        "nav": "surveys", "tab": "surveys", "survey": survey, "state": state,
        "rows": rows, "translations": translations, "errors": errors, "note": note,
        "json_open": json_open,
        "kinds": survey_forms.KIND_LABELS, "types": survey_forms.TYPE_LABELS,
        "ops": survey_forms.OP_LABELS, "statuses": survey_forms.STATUS_LABELS,
        "stages": survey_forms.STAGES,
        "rule_fields": [{"name": name, "label": label, "help": help_text,
                         "value": state.rules.get(name, ""), "company": company[name]}
                        for name, (label, help_text) in survey_forms.RULE_FIELDS.items()],
        "consent_help": survey_forms.RULE_CONSENT_HELP,
        "max_rows": survey_forms.MAX_ROWS,
    }, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _save(request: HttpRequest, survey: Survey | None) -> HttpResponse:
    state = survey_forms.from_post(request.POST)
    op = str(request.POST.get("op", "save"))
    if op not in {"save", "json", "json_load"}:
        note = survey_forms.apply_op(state, op)
        state.json_text = ""
        return _builder(request, state, survey=survey, errors=[note] if note else [])
    fields, errors = survey_forms.build(state)
    if op in {"json", "json_load"}:
        definition, problem = survey_forms.definition_from_json(state.json_text)
        if definition is None:
            return _builder(request, state, survey=survey, errors=[problem], json_open=True,
                            status=400)
        if op == "json_load":
            survey_forms.apply_definition(state, definition)
            return _builder(request, state, survey=survey, errors=[], note=(
                "The JSON is loaded into the form below. Review it, then save the survey."))
        fields["definition"], errors = definition, [e for e in errors
                                                    if not e.startswith(("Question",
                                                                         "Translations"))]
    if errors:
        return _builder(request, state, survey=survey, errors=errors, json_open=op == "json",
                        status=400)
    try:
        if survey is None:
            saved = actions.create_survey(actor=_actor(request), **fields)
        else:
            saved = actions.update_survey(survey.id, actor=_actor(request), **fields)
    except CxmError as error:
        if op != "json":
            state.json_text = ""
        return _builder(request, state, survey=survey, errors=[error.message],
                        json_open=op == "json", status=400)
    messages.success(request, f"Survey “{saved.name}” {'created' if survey is None else 'saved'}.")
    return redirect("survey", survey_id=saved.id)


@require_http_methods(["GET", "POST"])
@requires("surveys.manage")
def survey_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    state = survey_forms.from_template(str(request.GET.get("kind", "nps")))
    return _builder(request, state, survey=None, errors=[])


@require_http_methods(["GET", "POST"])
@requires("surveys.manage")
def survey_edit(request: HttpRequest, survey_id: uuid.UUID) -> HttpResponse:
    survey = _survey_or_404(survey_id)
    if request.method == "POST":
        return _save(request, survey)
    return _builder(request, survey_forms.from_survey(survey), survey=survey, errors=[])


# --- results ---------------------------------------------------------------------------------


def _period(request: HttpRequest) -> str:
    period = str(request.GET.get("period", "week"))
    return period if period in PERIODS else "week"


def _theme_names_of(response: Response, names: dict[int, str]) -> list[str]:
    return sorted({names.get(t.id, t.name) for t in response.themes.all()})


def _verbatims(request: HttpRequest, survey: Survey) -> list[dict[str, Any]]:
    """The latest comments; showing them is an audited read of personal data."""
    rows = list(queries.responses_of(survey).exclude(comment="")
                .prefetch_related("themes")[:VERBATIMS])
    if not rows:
        return []
    audit.record_reads(_actor(request), "response", [str(r.id) for r in rows], ["comment"])
    names = queries.canonical_theme_names()
    return [{"id": r.id, "at": r.submitted_at, "score": _score(r.score),
             "tone": _tone_of_score(r.kind, r.score), "comment": queries.comment_of(r),
             "sentiment": r.sentiment, "emotion": r.emotion,
             "themes": _theme_names_of(r, names), "profile_id": r.profile_id,
             "channel": r.channel} for r in rows]


def _score(score: float | None) -> str:
    if score is None:
        return "—"
    return f"{score:.0f}" if float(score).is_integer() else f"{score:.1f}"


def _tone_of_score(kind: str, score: float | None) -> str:
    if score is None or kind not in CLASSES:
        return ""
    return _classify(kind, int(score))


def _trend_context(survey: Survey, period: str) -> dict[str, Any]:
    try:  # the trend alone: one counting query, not the whole results
        kind, trend = metrics_queries.survey_trend(survey, period)
    except ValueError:
        return {"trend_chart": None, "period": period, "survey": survey, "periods": PERIODS}
    chart = _trend_chart(kind, trend)
    return {"trend_chart": chart if chart["points"] else None, "period": period,
            "survey": survey, "periods": PERIODS}


def _delay_text(minutes: int) -> str:
    """How long after the trigger event, with a trailing space ("" when at once)."""
    if not minutes:
        return ""
    if minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day{'s' if days > 1 else ''} "
    if minutes % 60 == 0:
        return f"{minutes // 60} h "
    return f"{minutes} min "


def _head(survey: Survey) -> dict[str, Any]:
    """What the survey's header (``_survey_head.html``) shows."""
    return {"nav": "surveys", "tab": "surveys", "survey": survey,
            "kind_label": survey_forms.KIND_LABELS.get(survey.kind, survey.kind),
            "tone": STATUS_TONES.get(survey.status, "muted"),
            "delay_text": _delay_text(survey.trigger_delay_minutes)}


def _invitation_counts(survey: Survey) -> list[dict[str, Any]]:
    counts = queries.invitation_counts(survey)
    return [{"status": status, "label": label, "count": counts.get(status, 0),
             "tone": STATUS_TONES.get(status, "muted")}
            for status, label in Invitation.STATUS_CHOICES]


def _results_context(request: HttpRequest, survey: Survey) -> dict[str, Any]:
    period = _period(request)
    context: dict[str, Any] = {**_head(survey), "periods": PERIODS, "period": period}
    try:
        results = metrics_queries.survey_results(survey, period=period)
    except ValueError:
        results = None
    if results is not None:
        context["kpi"] = kpi_view(results.kind, results.overall)
        context["distribution_chart"] = (_distribution_chart(results.kind, results.overall)
                                         if results.overall.responses else None)
        chart = _trend_chart(results.kind, results.trend)
        context["trend_chart"] = chart if chart["points"] else None
        context["slices"] = [{"key": key, "label": label,
                              "rows": _slice_rows(results.kind, results.slices.get(key, []))}
                             for key, label in SLICES]
        rate = results.response_rate
        context["rate"] = rate
        context["rate_text"] = (f"{rate.value:.0f}%" if rate is not None
                                and rate.value is not None else "—")
        context["rate_ci"] = fmt_ci("", rate) if rate is not None else ""
    context["responses"] = survey.responses.count()
    context["comments"] = survey.responses.exclude(comment="").count()
    context["invitations"] = _invitation_counts(survey)
    context["can_verbatims"] = allows(request, "feedback.verbatims")
    context["verbatims"] = _verbatims(request, survey) if context["can_verbatims"] else []
    context["definition"] = queries.definition_of(survey)
    context["invite"] = {"value": "", "channel": "link"}
    return context


@require_safe
@requires("surveys.read")
def survey(request: HttpRequest, survey_id: uuid.UUID) -> HttpResponse:
    return render(request, "cxm/surveys/results.html",
                  _results_context(request, _survey_or_404(survey_id)))


@require_safe
@requires("surveys.read")
def survey_trend(request: HttpRequest, survey_id: uuid.UUID) -> HttpResponse:
    """The trend card alone, for the period switch (htmx)."""
    survey = _survey_or_404(survey_id)
    return render(request, "cxm/surveys/partials/trend.html",
                  _trend_context(survey, _period(request)))


def _find_customer(value: str) -> Profile | None:
    value = value.strip()
    if not value:
        return None
    try:
        return identity_queries.canonical(uuid.UUID(value))
    except (ValueError, NotFound):
        pass
    return identity_queries.find_by_any(value)


def _invite_outcome(invitation: Invitation) -> dict[str, Any]:
    outcome: dict[str, Any] = {"status": invitation.status, "reason": invitation.reason,
                               "channel": invitation.channel,
                               "profile_id": invitation.profile_id, "link": ""}
    if invitation.status == "sent" and invitation.channel == "link":
        outcome["link"] = actions.survey_url(invitation)
    return outcome


@require_POST
@requires("surveys.manage")
def survey_invite(request: HttpRequest, survey_id: uuid.UUID) -> HttpResponse:
    """Ask one customer: the contact policy decides, and the page says what it decided."""
    survey = _survey_or_404(survey_id)
    value = str(request.POST.get("customer", ""))[:300]
    channel = str(request.POST.get("channel", "link"))
    invite: dict[str, Any] = {"value": value, "channel": channel}
    profile = _find_customer(value)
    status = 200
    if profile is None:
        invite["error"] = ("No customer found. Paste a profile id, or an email address, phone "
                           "number or user id exactly as the customer gave it.")
        status = 400
    else:
        try:
            invitation = actions.invite(survey=survey, profile_id=profile.id, channel=channel,
                                        actor=_actor(request))
        except CxmError as error:
            invite["error"] = error.message
            status = 400
        else:
            invite = {"value": "", "channel": channel, "outcome": _invite_outcome(invitation)}
    if is_htmx(request):
        # The card, and the invitation counts beside it (out of band).
        response = render(request, "cxm/surveys/partials/invite.html", {
            "survey": survey, "invite": invite, "oob": True,
            "invitations": _invitation_counts(survey)}, status=status)
    else:
        context = _results_context(request, survey)
        context["invite"] = invite
        response = render(request, "cxm/surveys/results.html", context, status=status)
    # A personal link is a bearer token: keep it out of caches and history.
    response["Cache-Control"] = "no-store"
    return response


# --- drivers ---------------------------------------------------------------------------------


def _evidence(driver: Any) -> tuple[str, str]:
    if driver.with_count < DRIVER_MIN_COUNT or driver.without_count < DRIVER_MIN_COUNT:
        return "too few answers", "muted"
    # Judged on the q-value (false discovery rate over every driver of the page), not the raw
    # p: with a dozen themes, one of them reaches p < 0.05 by luck alone.
    if driver.q_value is not None and driver.q_value < 0.05:
        return "very likely real", "ok"
    if driver.significant:
        return "probably real, worth confirming", "warn"
    return "could be chance", "warn"


@require_safe
@requires("surveys.read")
def survey_drivers(request: HttpRequest, survey_id: uuid.UUID) -> HttpResponse:
    survey = _survey_or_404(survey_id)
    try:
        found = metrics_queries.survey_drivers(survey, min_count=DRIVER_MIN_COUNT)
        kind = metrics_queries.kind_of(survey)
    except ValueError:
        found, kind = [], survey.kind
    group_labels = {"theme": "Theme", "touchpoint": "Touchpoint", "channel": "Channel"}
    rows: list[dict[str, Any]] = []
    for driver in found:
        badge, tone = _evidence(driver)
        group, _, label = driver.feature.partition(":")
        rows.append({"group": group_labels.get(group, group.title()), "label": label or group,
                     "with_count": driver.with_count, "without_count": driver.without_count,
                     "kpi_with": fmt_value(kind, driver.kpi_with),
                     "kpi_without": fmt_value(kind, driver.kpi_without),
                     "impact": _minus(f"{driver.impact:+.1f}") if driver.impact else "0",
                     "impact_tone": "bad" if driver.impact < 0 else "good",
                     "summary": driver.summary, "badge": badge, "badge_tone": tone})
    chart = [{"name": f"{r['label']} ({str(r['group']).lower()})", "value": round(d.impact, 1),
              "tone": r["badge_tone"]} for r, d in zip(rows, found, strict=True)][:15]
    return render(request, "cxm/surveys/drivers.html", {
        **_head(survey), "rows": rows, "chart": chart,
        "kind_label": survey_forms.KIND_LABELS.get(kind, kind.upper()),
        "min_count": DRIVER_MIN_COUNT,
        "unit": "percentage points" if kind == "csat" else "points",
    })


# --- themes ----------------------------------------------------------------------------------


@require_safe
@requires("surveys.read")
def themes(request: HttpRequest) -> HttpResponse:
    stats = metrics_queries.theme_stats(period="month", examples=3)
    can_verbatims = allows(request, "feedback.verbatims")
    examples: dict[str, dict[str, Any]] = {}
    if can_verbatims:
        ids = [rid for stat in stats for rid in stat.response_ids]
        if ids:
            rows = {str(r.id): r for r in Response.objects.filter(id__in=ids)}
            audit.record_reads(_actor(request), "response", list(rows), ["comment"])
            examples = {rid: {"comment": queries.comment_of(r), "at": r.submitted_at,
                              "score": _score(r.score), "sentiment": r.sentiment}
                        for rid, r in rows.items()}
    cards = []
    for stat in stats:
        total = sum(stat.sentiment.values()) or 1
        mix = [{"key": key, "count": stat.sentiment.get(key, 0),
                "share": round(100 * stat.sentiment.get(key, 0) / total)}
               for key in ("positive", "neutral", "negative")]
        keywords = sorted(stat.keywords, key=lambda w: -stat.keywords[w])
        cards.append({
            "stat": stat, "mix": mix, "keywords": keywords[:12],
            "keywords_text": ", ".join(keywords),
            "mean": "—" if stat.mean_sentiment is None else _minus(f"{stat.mean_sentiment:+.2f}"),
            "mean_tone": "" if stat.mean_sentiment is None else (
                "good" if stat.mean_sentiment > 0.15 else "bad"
                if stat.mean_sentiment < -0.15 else "mid"),
            "spark": [{"start": d.isoformat(), "count": n} for d, n in stat.trend],
            "spark_id": f"spark-{stat.id}",
            "examples": [examples[rid] for rid in stat.response_ids if rid in examples],
            "others": [(s.id, s.name) for s in stats if s.id != stat.id],
        })
    return render(request, "cxm/surveys/themes.html", {
        "nav": "surveys", "tab": "themes", "cards": cards, "can_verbatims": can_verbatims,
        "comments": Response.objects.exclude(comment="").count(),
        **_job_context(queries.theme_job_to_show()),
    })


def _requester(label: str) -> str:
    """Who asked for a job, as people know them: the user's name, or the API key's prefix."""
    kind, _, ident = label.partition(":")
    if kind == "user" and ident.isdigit():
        user = get_user_model().objects.filter(pk=int(ident)).first()
        if user is not None:
            return str(user.get_username())
    if kind == "key":
        return f"API key {ident}"
    return label


def _job_context(job: ThemeJob | None) -> dict[str, Any]:
    return {"job": job, "job_by": _requester(job.requested_by) if job else ""}


def _job_outcome(request: HttpRequest, job: ThemeJob) -> None:
    """The message for a finished job, shown on the next page."""
    if job.status == "failed":
        what = "Theme discovery" if job.kind == "discover" else "Sorting the comments again"
        messages.error(request, f"{what} failed: {job.error.rstrip('.')}. The themes and "
                                "their answers are as they were.")
    elif job.kind == "discover":
        messages.success(request, f"Themes discovered: {job.themes_created} new. Themes you "
                                  "edited were kept, and every comment was sorted again.")
    else:
        messages.success(request, "Every comment was sorted into the themes again.")


@require_POST
@requires("surveys.manage")
def themes_discover(request: HttpRequest) -> HttpResponse:
    try:
        requested = actions.request_discovery(actor=_actor(request))
    except CxmError as error:
        messages.error(request, error.message)
        return redirect("survey-themes")
    job = queries.theme_job(requested.job.id)  # with CXM_QUEUE=immediate it has run already
    if job.status in {"done", "failed"}:
        _job_outcome(request, job)
    elif not requested.created:
        messages.info(request, f"Themes are being discovered already (asked by "
                               f"{_requester(job.requested_by)}); this page shows when they "
                               "are ready.")
    return redirect("survey-themes")


@require_safe
@requires("surveys.read")
def theme_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """The themes page's status line, polled by htmx every 2 s while the job is queued or
    running. Done: the page reloads (``HX-Refresh``) to show the new themes; failed: the
    reason, and the polling stops (the fragment comes back without its trigger)."""
    try:
        job = queries.theme_job(job_id)
    except NotFound:
        raise Http404("no such theme job") from None
    if not is_htmx(request):  # opened as a page: the themes page shows the same line
        return redirect("survey-themes")
    if job.status == "done":
        _job_outcome(request, job)
        response = HttpResponse('<div id="theme-job" hidden></div>')
        response["HX-Refresh"] = "true"
        return response
    return render(request, "cxm/surveys/partials/theme_job.html", _job_context(job))


@require_POST
@requires("surveys.manage")
def theme_edit(request: HttpRequest, theme_id: int) -> HttpResponse:
    current = queries.active_themes().filter(id=theme_id).first()
    if current is None:  # e.g. merged away by a colleague since the page was loaded
        messages.error(request, "That theme no longer exists: it was merged or rediscovered. "
                                "Here are the current themes.")
        return redirect("survey-themes")
    name = str(request.POST.get("name", "")).strip()
    raw_keywords = str(request.POST.get("keywords", ""))
    words = [w.strip() for w in raw_keywords.replace("\n", ",").split(",") if w.strip()]
    changes: dict[str, Any] = {}
    if "name" in request.POST and name != current.name:
        changes["name"] = name
    if "keywords" in request.POST and sorted(words) != sorted(current.keywords):
        changes["keywords"] = words
    if not changes:
        messages.info(request, f"Nothing changed in “{current.name}”.")
        return redirect("survey-themes")
    try:
        edit = actions.edit_theme(theme_id, actor=_actor(request), **changes)
    except CxmError as error:
        messages.error(request, f"Could not change “{current.name}”: {error.message}")
        return redirect("survey-themes")
    note = ""
    if edit.job is not None:
        job = queries.theme_job(edit.job.id)  # with CXM_QUEUE=immediate it has run already
        note = {"done": " Comments were sorted again with its new key words.",
                "failed": f" Sorting the comments again failed: {job.error}"}.get(
            job.status, " Comments are being sorted again with its new key words.")
    messages.success(request, f"Theme “{edit.theme.name}” saved.{note}")
    return redirect("survey-themes")


@require_POST
@requires("surveys.manage")
def theme_merge(request: HttpRequest, theme_id: int) -> HttpResponse:
    try:
        target_id = int(str(request.POST.get("into", "")))
    except ValueError:
        return HttpResponseBadRequest("choose the theme to merge into")
    try:
        target = actions.merge_themes(theme_id, target_id, actor=_actor(request))
    except NotFound:
        messages.error(request, "One of the two themes no longer exists: it was merged or "
                                "rediscovered. Here are the current themes.")
    except CxmError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Merged into “{target.name}”: its answers and key words "
                                  "are now part of it.")
    return redirect("survey-themes")


# --- contact policy --------------------------------------------------------------------------


def _policy_page(request: HttpRequest, values: dict[str, Any], errors: list[str],
                 status: int = 200) -> HttpResponse:
    current = queries.global_rules()
    fields = [{"name": name, "label": label, "help": help_text,
               "value": values.get(name, getattr(current, name))}
              for name, (label, help_text) in survey_forms.RULE_FIELDS.items()]
    return render(request, "cxm/surveys/policy.html", {
        "nav": "surveys", "tab": "policy", "fields": fields, "errors": errors,
        "require_consent": values.get("require_consent", current.require_consent),
        "consent_help": survey_forms.RULE_CONSENT_HELP,
        "can_manage": allows(request, "surveys.manage"),
    }, status=status)


@require_safe
@requires("surveys.read")
def contact_policy(request: HttpRequest) -> HttpResponse:
    return _policy_page(request, {}, [])


@require_POST
@requires("surveys.manage")
def contact_policy_save(request: HttpRequest) -> HttpResponse:
    values: dict[str, Any] = {}
    errors = []
    for name, (label, _) in survey_forms.RULE_FIELDS.items():
        text = str(request.POST.get(name, "")).strip() or "0"
        values[name] = text
        if not text.isdigit():
            errors.append(f"{label}: a whole number of 0 or more (0 turns the rule off).")
    values["require_consent"] = request.POST.get("require_consent") == "on"
    if errors:
        return _policy_page(request, values, errors, status=400)
    rules = {k: (int(v) if k != "require_consent" else v) for k, v in values.items()}
    try:
        actions.set_global_rules(rules, actor=_actor(request))
    except CxmError as error:
        return _policy_page(request, values, [error.message], status=400)
    messages.success(request, "Contact policy saved. It applies to every invitation from now "
                              "on; a survey's own rules can only make it stricter.")
    return redirect("contact-policy")


# --- the customer 360 page -------------------------------------------------------------------


def profile_surveys(request: HttpRequest, profile: Profile) -> dict[str, Any]:
    """The Surveys section of the customer page: answers, invitations and policy standing."""
    feedback = queries.for_profile(profile, now())
    can_verbatims = allows(request, "feedback.verbatims")
    commented = [r for r in feedback.responses if r.comment]
    if can_verbatims and commented:
        audit.record_reads(_actor(request), "response", [str(r.id) for r in commented],
                           ["comment"])
    decision: policy.Decision = feedback.next_survey
    return {
        "responses": [{"id": r.id, "survey": r.survey, "at": r.submitted_at,
                       "score": _score(r.score), "kind": r.kind.upper(),
                       "tone": _tone_of_score(r.kind, r.score),
                       "has_comment": bool(r.comment),
                       "comment": queries.comment_of(r) if can_verbatims else "",
                       "sentiment": r.sentiment}
                      for r in feedback.responses[:10]],
        "invitations": [{"survey": i.survey, "at": i.created_at, "channel": i.channel,
                         "status": i.status, "label": i.get_status_display(),
                         "tone": STATUS_TONES.get(i.status, "muted"), "reason": i.reason}
                        for i in feedback.invitations[:10]],
        "allowed": decision.allowed, "reason": decision.reason,
        "next_at": decision.next_eligible_at, "can_verbatims": can_verbatims,
    }
