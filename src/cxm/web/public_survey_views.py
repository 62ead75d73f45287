"""The respondent's side of a survey: the personal link ``/s/<token>/``.

No login: the signed token in the URL is the credential (``feedback.tokens``). A made-up or
edited token is refused by its signature before the database is asked, and an unknown, a
tampered and a suppressed link all get the same 404 page, so the page tells nobody whether
other links exist; a network address that keeps presenting bad links is slowed down (429).

What is stored always goes through ``feedback.actions.answer_invitation``, which refuses
markup, out-of-range scores, unknown questions and answers to questions skipped by the skip
logic, and answers a link once. The page never shows the person's email or name, and the
respondent's network address is not passed on (the audit log keeps addresses forever, and a
respondent's address is personal data).

CSRF stays on for the form. The body size is checked before anything reads the body, so an
oversized post gets the 413 page (not Django's 400) and is never parsed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect, ensure_csrf_cookie

from cxm.core.clock import now
from cxm.core.errors import Conflict, CxmError, InvalidInput, NotFound
from cxm.feedback import actions as feedback_actions
from cxm.feedback import definition as survey_definition
from cxm.feedback import queries as feedback_queries
from cxm.feedback.models import Invitation
from cxm.identity import queries as identity_queries
from cxm.ingest.ratelimit import KeyLimiter
from cxm.web.access import public

logger = logging.getLogger(__name__)

# A form of 50 questions with a few 5,000-character answers fits in far less; Django's own
# DATA_UPLOAD_MAX_MEMORY_SIZE caps it further if it is set lower.
MAX_FORM_BYTES = 1024 * 1024
# Bad links per network address: a burst of 20, then one every 5 seconds.
BAD_LINK_RATE = 0.2
BAD_LINK_BURST = 20.0
bad_links = KeyLimiter()
FIELD_PREFIX = "a."

# The page's own words (the questions come from the survey's translations).
UI: dict[str, dict[str, str]] = {
    "en": {
        "close": "Close", "sending": "Sending…",
        "failed": "Your answers could not be sent. Please try again.",
        "submit": "Send my answers", "required": "required", "optional": "optional",
        "nps_low": "Not at all likely", "nps_high": "Extremely likely",
        "csat_low": "Very dissatisfied", "csat_high": "Very satisfied",
        "ces_low": "Very difficult", "ces_high": "Very easy",
        "text_hint": "Please do not include passwords or card numbers.",
        "problem": "Please check your answers",
        "thanks": "Thank you!", "thanks_sub": "Your answers were received. You can close this "
                                              "page.",
        "answered": "Already answered — thank you",
        "answered_sub": "This survey was already answered with this link. Each link can be "
                        "used once, so nothing more was recorded.",
        "invalid": "This link is not valid",
        "invalid_sub": "Check that the whole link was copied from the message you received.",
        "expired": "This link has expired",
        "expired_sub": "The survey you were invited to is no longer collecting answers with "
                       "this link. Thank you for your time.",
        "too_large": "That was too much text",
        "too_large_sub": "The answers sent were larger than this survey accepts. Go back, "
                         "shorten your comment and send again.",
        "too_many": "Too many attempts",
        "too_many_sub": "Please wait a minute and try the link again.",
        "bad_request": "Your answers could not be read",
        "bad_request_sub": "Go back and send the form again.",
        "privacy": "Your answers are linked to your customer record to improve our service.",
        "opt_out": "No more survey emails?", "opt_out_sub": "We will not send you surveys by "
        "email any more. You can change this at any time by contacting us.",
        "opt_out_button": "Stop survey emails",
        "opted_out": "Done — no more survey emails",
        "opted_out_sub": "We have recorded that you do not want surveys by email.",
    },
    "de": {
        "close": "Schließen", "sending": "Wird gesendet…",
        "failed": "Ihre Antworten konnten nicht gesendet werden. Bitte erneut versuchen.",
        "submit": "Antworten senden", "required": "Pflichtfrage", "optional": "optional",
        "nps_low": "Sehr unwahrscheinlich", "nps_high": "Sehr wahrscheinlich",
        "csat_low": "Sehr unzufrieden", "csat_high": "Sehr zufrieden",
        "ces_low": "Sehr schwierig", "ces_high": "Sehr einfach",
        "text_hint": "Bitte keine Passwörter oder Kartennummern angeben.",
        "problem": "Bitte prüfen Sie Ihre Antworten",
        "thanks": "Vielen Dank!", "thanks_sub": "Ihre Antworten sind angekommen. Sie können "
                                                 "diese Seite schließen.",
        "answered": "Bereits beantwortet — danke",
        "answered_sub": "Diese Umfrage wurde mit diesem Link schon beantwortet. Jeder Link "
                        "gilt einmal; es wurde nichts weiter gespeichert.",
        "invalid": "Dieser Link ist ungültig",
        "invalid_sub": "Prüfen Sie, ob der ganze Link aus der Nachricht kopiert wurde.",
        "expired": "Dieser Link ist abgelaufen",
        "expired_sub": "Mit diesem Link werden keine Antworten mehr angenommen. Danke für "
                       "Ihre Zeit.",
        "too_large": "Das war zu viel Text",
        "too_large_sub": "Die Antworten waren größer, als diese Umfrage annimmt. Bitte kürzen "
                         "Sie Ihren Kommentar.",
        "too_many": "Zu viele Versuche",
        "too_many_sub": "Bitte warten Sie eine Minute und versuchen Sie es erneut.",
        "bad_request": "Ihre Antworten konnten nicht gelesen werden",
        "bad_request_sub": "Bitte senden Sie das Formular erneut.",
        "opt_out": "Keine Umfrage-E-Mails mehr?",
        "opt_out_sub": "Wir senden Ihnen keine Umfragen per E-Mail mehr. "
                       "Sie können das jederzeit ändern, indem Sie uns kontaktieren.",
        "opt_out_button": "Keine Umfrage-E-Mails mehr",
        "opted_out": "Erledigt — keine Umfrage-E-Mails mehr",
        "opted_out_sub": "Wir haben vermerkt, dass Sie keine Umfragen per E-Mail wünschen.",
        "privacy": "Ihre Antworten werden Ihrem Kundenkonto zugeordnet, um unseren Service zu "
                   "verbessern.",
    },
    "fr": {
        "close": "Fermer", "sending": "Envoi…",
        "failed": "Vos réponses n'ont pas pu être envoyées. Veuillez réessayer.",
        "submit": "Envoyer mes réponses", "required": "obligatoire", "optional": "facultatif",
        "nps_low": "Pas du tout probable", "nps_high": "Très probable",
        "csat_low": "Très insatisfait", "csat_high": "Très satisfait",
        "ces_low": "Très difficile", "ces_high": "Très facile",
        "text_hint": "N'indiquez ni mot de passe ni numéro de carte.",
        "problem": "Veuillez vérifier vos réponses",
        "thanks": "Merci !", "thanks_sub": "Vos réponses ont été reçues. Vous pouvez fermer "
                                            "cette page.",
        "answered": "Déjà répondu — merci",
        "answered_sub": "Ce questionnaire a déjà été rempli avec ce lien. Chaque lien ne sert "
                        "qu'une fois ; rien de plus n'a été enregistré.",
        "invalid": "Ce lien n'est pas valide",
        "invalid_sub": "Vérifiez que le lien a été copié en entier.",
        "expired": "Ce lien a expiré",
        "expired_sub": "Ce questionnaire ne reçoit plus de réponses par ce lien. Merci de "
                       "votre temps.",
        "too_large": "Trop de texte",
        "too_large_sub": "Les réponses envoyées dépassent ce que ce questionnaire accepte.",
        "too_many": "Trop de tentatives",
        "too_many_sub": "Patientez une minute puis réessayez.",
        "bad_request": "Vos réponses n'ont pas pu être lues",
        "bad_request_sub": "Revenez en arrière et renvoyez le formulaire.",
        "opt_out": "Plus d'e-mails d'enquête ?",
        "opt_out_sub": "Nous ne vous enverrons plus d'enquêtes par e-mail. Vous "
                       "pouvez changer d'avis à tout moment en nous contactant.",
        "opt_out_button": "Ne plus recevoir d'enquêtes",
        "opted_out": "C'est fait — plus d'e-mails d'enquête",
        "opted_out_sub": "Nous avons noté que vous ne souhaitez plus d'enquêtes par e-mail.",
        "privacy": "Vos réponses sont associées à votre dossier client pour améliorer notre "
                   "service.",
    },
    "es": {
        "close": "Cerrar", "sending": "Enviando…",
        "failed": "No se pudieron enviar sus respuestas. Inténtelo de nuevo.",
        "submit": "Enviar mis respuestas", "required": "obligatoria", "optional": "opcional",
        "nps_low": "Nada probable", "nps_high": "Muy probable",
        "csat_low": "Muy insatisfecho", "csat_high": "Muy satisfecho",
        "ces_low": "Muy difícil", "ces_high": "Muy fácil",
        "text_hint": "No incluya contraseñas ni números de tarjeta.",
        "problem": "Revise sus respuestas",
        "thanks": "¡Gracias!", "thanks_sub": "Hemos recibido sus respuestas. Ya puede cerrar "
                                              "esta página.",
        "answered": "Ya respondida — gracias",
        "answered_sub": "Esta encuesta ya se respondió con este enlace. Cada enlace sirve una "
                        "vez; no se guardó nada más.",
        "invalid": "Este enlace no es válido",
        "invalid_sub": "Compruebe que copió el enlace completo.",
        "expired": "Este enlace ha caducado",
        "expired_sub": "Esta encuesta ya no acepta respuestas con este enlace. Gracias por su "
                       "tiempo.",
        "too_large": "Demasiado texto",
        "too_large_sub": "Las respuestas superan lo que acepta esta encuesta.",
        "too_many": "Demasiados intentos",
        "too_many_sub": "Espere un minuto y vuelva a intentarlo.",
        "bad_request": "No se pudieron leer sus respuestas",
        "bad_request_sub": "Vuelva atrás y envíe el formulario de nuevo.",
        "opt_out": "¿No más encuestas por correo?",
        "opt_out_sub": "No le enviaremos más encuestas por "
                       "correo electrónico. Puede cambiarlo cuando quiera contactándonos.",
        "opt_out_button": "No más encuestas por correo",
        "opted_out": "Hecho — no más encuestas por correo",
        "opted_out_sub": "Hemos registrado que no desea encuestas por correo electrónico.",
        "privacy": "Sus respuestas se vinculan a su ficha de cliente para mejorar nuestro "
                   "servicio.",
    },
}


def ui_strings(language: str) -> dict[str, str]:
    base = language.split("-")[0].lower()
    return {**UI["en"], **UI.get(base, {})}


# -- view model ---------------------------------------------------------------------------


@dataclass
class Option:
    value: str
    label: str
    checked: bool = False


@dataclass
class QuestionView:
    id: str
    type: str
    text: str
    required: bool
    show_if: str  # JSON for survey.js, "" without a condition
    options: list[Option] = field(default_factory=list)
    value: str = ""  # a text answer being shown again
    low_label: str = ""
    high_label: str = ""
    error: str = ""
    max_length: int = survey_definition.MAX_TEXT

    @property
    def field_name(self) -> str:
        return f"{FIELD_PREFIX}{self.id}"

    @property
    def is_scale(self) -> bool:
        return self.type in survey_definition.SCORE_TYPES


def question_views(local: survey_definition.LocalSurvey, words: Mapping[str, str],
                   given: Mapping[str, list[str]], errors: Mapping[str, str]
                   ) -> list[QuestionView]:
    views = []
    for q in local.questions:
        chosen = given.get(q.id, [])
        view = QuestionView(id=q.id, type=q.type, text=q.text, required=q.required,
                            show_if=json.dumps(q.show_if) if q.show_if else "",
                            error=errors.get(q.id, ""))
        if q.low is not None and q.high is not None:
            view.options = [Option(str(n), str(n), str(n) in chosen)
                            for n in range(q.low, q.high + 1)]
            view.low_label = words[f"{q.type}_low"]
            view.high_label = words[f"{q.type}_high"]
        elif q.type in {"single", "multi"}:
            view.options = [Option(cid, label, cid in chosen) for cid, label in q.choices]
        else:
            view.value = chosen[0] if chosen else ""
        views.append(view)
    return views


# -- answers from the form -----------------------------------------------------------------


def answers_from_form(post: QueryDict, definition: survey_definition.Definition
                      ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(answers to submit, the raw values to show again). Anything named ``a.<id>`` is
    passed on, so an unknown or duplicated field is refused by the survey's own checks."""
    answers: dict[str, Any] = {}
    raw: dict[str, list[str]] = {}
    for key in post:
        if not key.startswith(FIELD_PREFIX):
            continue
        qid = key[len(FIELD_PREFIX):][:60]
        values = [str(v) for v in post.getlist(key)]
        raw[qid] = values
        question = definition.question(qid)
        if question is not None and question.type == "multi":
            answers[qid] = values
        elif len(values) != 1:
            answers[qid] = values  # refused: one answer expected
        elif question is not None and question.type in survey_definition.SCORE_TYPES \
                and values[0].strip().isdigit():
            answers[qid] = int(values[0].strip())
        else:
            answers[qid] = values[0]
    return answers, raw


def drop_skipped(definition: survey_definition.Definition, answers: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """Without JavaScript every question is on the page; answers to the ones the skip logic
    hides are dropped here rather than refused (with JavaScript they are never sent, and an
    answer sent anyway is refused by ``clean_answers``)."""
    kept: dict[str, Any] = {}
    for question in definition.questions:
        condition = question.show_if
        try:
            shown = condition is None or survey_definition.condition_holds(condition, kept)
        except TypeError:  # a malformed earlier answer: let the real checks refuse it
            shown = True
        if shown and question.id in answers:
            kept[question.id] = answers[question.id]
    known = {q.id for q in definition.questions}
    kept.update({k: v for k, v in answers.items() if k not in known})
    return kept


def _error_target(message: str, definition: survey_definition.Definition) -> str:
    qid = message.split(":", 1)[0].strip()
    return qid if definition.question(qid) is not None else ""


# -- pages ---------------------------------------------------------------------------------


def _client(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _page(request: HttpRequest, template: str, status: int, language: str = "en",
          **extra: Any) -> HttpResponse:
    words = ui_strings(language)
    response = render(request, f"cxm/public/{template}",
                      {"t": words, "language": language, **extra}, status=status)
    response["Cache-Control"] = "no-store"
    # The token is in the URL: the middleware's "same-origin" keeps it from other sites.
    # (Not "no-referrer": Chromium then posts the form with "Origin: null", which Django's
    # CSRF check rightly refuses.)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _message_page(request: HttpRequest, kind: str, status: int, language: str = "en"
                  ) -> HttpResponse:
    words = ui_strings(language)
    return _page(request, "message.html", status, language, kind=kind,
                 heading=words[kind], detail=words[f"{kind}_sub"])


def _bad_link(request: HttpRequest, language: str) -> HttpResponse:
    wait = bad_links.take(_client(request), 1, BAD_LINK_RATE, BAD_LINK_BURST)
    if wait:
        response = _message_page(request, "too_many", 429, language)
        response["Retry-After"] = str(wait)
        return response
    return _message_page(request, "invalid", 404, language)


def _wanted_languages(request: HttpRequest, invitation: Invitation) -> list[str]:
    wanted = []
    asked = request.GET.get("lang") or (
        request.POST.get("lang") if request.method == "POST" else "")
    if asked:
        wanted.append(str(asked)[:20])
    try:
        profile = identity_queries.canonical(invitation.profile_id)
    except NotFound:
        profile = None
    if profile is not None:
        for key in ("language", "locale"):
            entry = profile.traits.get(key)
            if isinstance(entry, dict) and isinstance(entry.get("value"), str):
                wanted.append(entry["value"][:20])
    wanted.extend(survey_definition.accept_language(
        request.headers.get("Accept-Language", "")[:500])[:10])
    return wanted


def _form_limit() -> int:
    return min(MAX_FORM_BYTES, int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or MAX_FORM_BYTES))


def _language_hint(request: HttpRequest) -> str:
    """For pages shown before a survey is known: the browser's first language."""
    wanted = survey_definition.accept_language(request.headers.get("Accept-Language", "")[:500])
    return wanted[0].split("-")[0].lower()[:3] if wanted else "en"


@public
@csrf_exempt  # checked below by csrf_protect, once the body is known to be a sane size
def survey_page(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in {"GET", "HEAD", "POST"}:
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD, POST"
        return response
    if request.method == "POST":
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > _form_limit():
            return _message_page(request, "too_large", 413, _language_hint(request))
    try:
        return _protected_page(request, token)
    except RequestDataTooBig:
        return _message_page(request, "too_large", 413, _language_hint(request))
    except TooManyFieldsSent:
        return _message_page(request, "bad_request", 400, _language_hint(request))


@csrf_protect
def _protected_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = feedback_queries.invitation_by_token(token)
    except NotFound:
        return _bad_link(request, _language_hint(request))
    survey = invitation.survey
    parsed = survey_definition.parse(survey.definition)
    language = survey_definition.pick_language(parsed, _wanted_languages(request, invitation))
    if invitation.status == "suppressed":  # never sent: as if it did not exist
        return _bad_link(request, language)
    if invitation.status == "answered":
        return _message_page(request, "answered", 409, language)
    if invitation.expires_at < now() or survey.status == "closed":
        return _message_page(request, "expired", 410, language)
    local = survey_definition.localize(parsed, language, survey.name)
    words = ui_strings(local.language)
    if request.method != "POST":
        return _form(request, local, words, {}, {}, "", 200)

    answers, raw = answers_from_form(request.POST, parsed)
    if request.POST.get("js") != "1":
        answers = drop_skipped(parsed, answers)
    try:
        feedback_actions.answer_invitation(token, answers, language=local.language)
    except InvalidInput as error:
        target = _error_target(error.message, parsed)
        return _form(request, local, words, raw, {target: error.message} if target else {},
                     error.message, 400)
    except Conflict as error:
        if error.code == "already_answered":
            return _message_page(request, "answered", 409, language)
        if error.code in {"link_expired", "survey_closed"}:
            return _message_page(request, "expired", 410, language)
        return _bad_link(request, language)
    except NotFound:
        return _bad_link(request, language)
    except CxmError as error:  # e.g. the person was erased meanwhile
        logger.info("survey answer refused: %s", error.code)
        return _message_page(request, "invalid", 404, language)
    logger.info("survey answered: invitation %s", invitation.id)
    return _page(request, "thanks.html", 200, local.language, survey=local,
                 heading=words["thanks"], detail=local.thank_you)


def _form(request: HttpRequest, local: survey_definition.LocalSurvey, words: dict[str, str],
          raw: Mapping[str, list[str]], errors: Mapping[str, str], problem: str,
          status: int) -> HttpResponse:
    return _page(request, "survey.html", status, local.language, survey=local,
                 questions=question_views(local, words, raw, errors), problem=problem,
                 max_text=survey_definition.MAX_TEXT)


@public
@csrf_exempt  # a one-click unsubscribe (RFC 8058) comes from the mail client, without a token
def opt_out_page(request: HttpRequest, token: str) -> HttpResponse:
    """The link in every survey email: stop surveys by email (consent ``email:research``
    refused). A mail client's one-click POST (``List-Unsubscribe=One-Click``) needs no CSRF
    token; a person's POST from the page does."""
    if request.method not in {"GET", "HEAD", "POST"}:
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    language = _language_hint(request)
    try:
        feedback_queries.invitation_by_token(token)
    except NotFound:
        return _bad_link(request, language)
    if request.method != "POST":
        return _opt_out_form(request, token, language)
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    if not one_click:
        return _opt_out_confirmed(request, token, language)
    return _opt_out(request, token, language)


@csrf_protect
def _opt_out_confirmed(request: HttpRequest, token: str, language: str) -> HttpResponse:
    return _opt_out(request, token, language)


def _opt_out(request: HttpRequest, token: str, language: str) -> HttpResponse:
    try:
        feedback_actions.opt_out(token)
    except CxmError as error:
        logger.info("survey opt-out refused: %s", error.code)
        return _bad_link(request, language)
    return _message_page(request, "opted_out", 200, language)


@ensure_csrf_cookie
def _opt_out_form(request: HttpRequest, token: str, language: str) -> HttpResponse:
    words = ui_strings(language)
    return _page(request, "opt_out.html", 200, language, heading=words["opt_out"],
                 detail=words["opt_out_sub"], button=words["opt_out_button"])
