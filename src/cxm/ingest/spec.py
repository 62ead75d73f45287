"""The Segment tracking spec: validation, normalisation, timestamps, channel, identifiers.

Pure functions with no I/O, so every rule is unit-tested without a database. A message that
breaks a rule raises :class:`SpecError` with a stable ``code`` and a message naming the field.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import phonenumbers

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")
CHANNELS = (
    "web", "app", "email", "chat", "phone", "social", "store", "iot", "survey", "support", "other",
)
MAX_ID_LENGTH = 255
MAX_EVENT_NAME = 200

# Identifier kinds in the order they decide which profile a message belongs to.
KIND_USER_ID = "user_id"
KIND_ANONYMOUS_ID = "anonymous_id"
KIND_EMAIL = "email"
KIND_PHONE = "phone"
KIND_PREVIOUS_ID = "previous_id"
EXTERNAL_PREFIX = "ext:"

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXTERNAL_TYPE_RE = re.compile(r"^[a-z0-9_.\-]{1,60}$")

_CHANNEL_ALIASES = {
    "browser": "web", "website": "web", "mobile": "app", "ios": "app", "android": "app",
    "sms": "phone", "voice": "phone", "call": "phone", "ivr": "phone",
    "ticket": "support", "helpdesk": "support", "zendesk": "support",
    "pos": "store", "in-store": "store", "instore": "store", "retail": "store",
    "device": "iot", "facebook": "social", "twitter": "social", "instagram": "social",
    "x": "social", "linkedin": "social", "tiktok": "social", "livechat": "chat",
    "messenger": "chat", "whatsapp": "chat",
}
_EVENT_PREFIX_CHANNEL = (
    ("email ", "email"), ("survey ", "survey"), ("ticket ", "support"), ("case ", "support"),
    ("chat ", "chat"), ("call ", "phone"), ("sms ", "phone"), ("social ", "social"),
    ("device ", "iot"),
)


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class SpecError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Message:
    """One validated message, ready to store."""

    message_id: str
    type: str
    name: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    received_at: datetime
    sent_at: datetime | None
    original_timestamp: datetime | None
    channel: str
    identifiers: list[tuple[str, str]]
    traits: dict[str, Any]
    payload: dict[str, Any]
    previous_id: str | None = None
    group_id: str | None = None
    consent: dict[str, bool] = field(default_factory=dict)


def parse_time(value: Any, field_name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SpecError("invalid_timestamp", f"{field_name} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SpecError(
            "invalid_timestamp", f"{field_name} is not an ISO 8601 date-time: {value[:40]!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise _out_of_range(value, field_name) from None
    if not _EARLIEST <= parsed <= _LATEST:
        raise _out_of_range(value, field_name)
    return parsed


def _out_of_range(value: str, field_name: str) -> SpecError:
    # Built only when raised: an exception and its message cost ~1 µs, per timestamp.
    return SpecError("invalid_timestamp",
                     f"{field_name} must be between years 1970 and 9000: {value[:40]!r}")


def corrected_timestamp(
    original: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """Segment's clock-skew correction: ``receivedAt - (sentAt - originalTimestamp)``."""
    if original is None:
        return received_at
    if sent_at is None:
        return original
    try:
        corrected = received_at - (sent_at - original)
    except OverflowError:
        raise SpecError("invalid_timestamp", "timestamp and sentAt are too far apart") from None
    if not _EARLIEST <= corrected <= _LATEST:
        raise SpecError("invalid_timestamp", "timestamp corrected by sentAt falls outside years "
                                             "1970–9000; check the device clock")
    return corrected


def _id(value: Any, field_name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError("invalid_id", f"{field_name} must be a string")
    text = str(value).strip()
    if not text:
        return None
    if len(text) > MAX_ID_LENGTH:
        raise SpecError("invalid_id", f"{field_name} is longer than {MAX_ID_LENGTH} characters")
    return text


def _object(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError("invalid_field", f"{key} must be a JSON object")
    return value


def normalize_email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        return None
    return email


def normalize_phone(value: Any, default_region: str = "US") -> str | None:
    """E.164 form of a phone number, or ``None`` when it is not a valid number."""
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        return None
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def derive_channel(
    message_type: str, name: str, context: dict[str, Any], properties: dict[str, Any],
    default_channel: str = "",
) -> str:
    """Which channel a message came through, from explicit fields first, then hints."""
    for explicit in (context.get("channel"), properties.get("channel")):
        if isinstance(explicit, str):
            value = explicit.strip().lower()
            value = _CHANNEL_ALIASES.get(value, value)
            if value in CHANNELS:
                return value
    if message_type == "track":
        lowered = name.lower()
        for prefix, channel in _EVENT_PREFIX_CHANNEL:
            if lowered.startswith(prefix):
                return channel
    if default_channel:
        return default_channel
    os_info = context.get("os")
    os_name = os_info.get("name", "") if isinstance(os_info, dict) else ""
    if (
        message_type == "screen"
        or isinstance(context.get("app"), dict)
        or (isinstance(os_name, str) and os_name.lower() in {"ios", "android", "ipados"})
    ):
        return "app"
    library = context.get("library")
    library_name = library.get("name", "") if isinstance(library, dict) else ""
    if (
        message_type == "page"
        or isinstance(context.get("page"), dict)
        or (isinstance(library_name, str) and library_name.startswith("analytics.js"))
        or library_name == "analytics-next"
    ):
        return "web"
    return "other"


def _external_ids(context: dict[str, Any]) -> list[tuple[str, str]]:
    raw = context.get("externalIds")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError("invalid_field", "context.externalIds must be a list")
    found: list[tuple[str, str]] = []
    for entry in raw[:20]:
        if not isinstance(entry, dict):
            raise SpecError("invalid_field", "context.externalIds entries must be objects")
        ext_type = str(entry.get("type", "")).strip().lower()
        ext_id = _id(entry.get("id"), "context.externalIds[].id")
        if not ext_type or not _EXTERNAL_TYPE_RE.match(ext_type):
            raise SpecError("invalid_field",
                            "context.externalIds[].type must be a short lowercase name")
        if ext_id:
            found.append((EXTERNAL_PREFIX + ext_type, ext_id))
    return found


def _consent(context: dict[str, Any]) -> dict[str, bool]:
    consent = context.get("consent")
    if not isinstance(consent, dict):
        return {}
    prefs = consent.get("categoryPreferences")
    if not isinstance(prefs, dict):
        return {}
    return {str(k)[:60]: v for k, v in prefs.items() if isinstance(v, bool)}


def auto_message_id(message: dict[str, Any]) -> str:
    """A message without ``messageId`` gets one: a content hash when it is timestamped (so an
    exact retry is still recognised), a random one otherwise (two untimed identical calls are
    two events)."""
    if message.get("timestamp") or message.get("originalTimestamp"):
        body = {k: v for k, v in message.items() if k not in {"sentAt", "writeKey"}}
        return "auto-" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "auto-" + uuid.uuid4().hex


def normalize(
    raw: Any,
    *,
    received_at: datetime,
    forced_type: str | None = None,
    batch_sent_at: datetime | None = None,
    default_channel: str = "",
    default_region: str = "US",
) -> Message:
    """Validate one Segment message and return its normalised form."""
    if not isinstance(raw, dict):
        raise SpecError("invalid_message", "each message must be a JSON object")
    message_type = forced_type or raw.get("type")
    if not isinstance(message_type, str) or not message_type:
        raise SpecError("missing_type", "type is required (track, identify, page, screen, "
                                        "group or alias)")
    message_type = message_type.strip().lower()
    if message_type not in MESSAGE_TYPES:
        raise SpecError("invalid_type", f"type {message_type[:30]!r} is not one of "
                                        f"{', '.join(MESSAGE_TYPES)}")
    context = _object(raw, "context")
    properties = _object(raw, "properties")
    traits = _object(raw, "traits")
    _object(raw, "integrations")
    context_traits = context.get("traits")
    if context_traits is not None and not isinstance(context_traits, dict):
        raise SpecError("invalid_field", "context.traits must be a JSON object")

    user_id = _id(raw.get("userId"), "userId")
    anonymous_id = _id(raw.get("anonymousId"), "anonymousId")
    previous_id = _id(raw.get("previousId"), "previousId")
    group_id = _id(raw.get("groupId"), "groupId")

    name = ""
    if message_type == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise SpecError("missing_event", "track messages need an event name")
        if len(event) > MAX_EVENT_NAME:
            raise SpecError("invalid_event", f"event is longer than {MAX_EVENT_NAME} characters")
        name = event.strip()
    elif message_type in {"page", "screen"}:
        page_name = raw.get("name")
        if page_name is not None and not isinstance(page_name, str):
            raise SpecError("invalid_field", "name must be a string")
        name = (page_name or "").strip()[:MAX_EVENT_NAME]
    elif message_type == "alias":
        if previous_id is None or user_id is None:
            raise SpecError("missing_id", "alias messages need previousId and userId")
    elif message_type == "group" and group_id is None:
        raise SpecError("missing_id", "group messages need a groupId")

    all_traits: dict[str, Any] = {}
    if context_traits:
        all_traits.update(context_traits)
    if message_type == "identify":
        all_traits.update(traits)

    identifiers: list[tuple[str, str]] = []
    if user_id:
        identifiers.append((KIND_USER_ID, user_id))
    identifiers.extend(_external_ids(context))
    email = normalize_email(all_traits.get("email"))
    if email:
        identifiers.append((KIND_EMAIL, email))
    phone = normalize_phone(all_traits.get("phone"), default_region)
    if phone:
        identifiers.append((KIND_PHONE, phone))
    if anonymous_id:
        identifiers.append((KIND_ANONYMOUS_ID, anonymous_id))
    if previous_id and message_type == "alias":
        identifiers.append((KIND_PREVIOUS_ID, previous_id))
    if not identifiers:
        raise SpecError("missing_identifier", "a message needs userId or anonymousId "
                                              "(or an email, phone or context.externalIds)")

    raw_id = raw.get("messageId")
    if raw_id is None or raw_id == "":
        message_id = auto_message_id(raw)
    else:
        message_id_value = _id(raw_id, "messageId")
        message_id = message_id_value or auto_message_id(raw)

    original = parse_time(raw.get("timestamp"), "timestamp") or parse_time(
        raw.get("originalTimestamp"), "originalTimestamp"
    )
    sent_at = parse_time(raw.get("sentAt"), "sentAt") or batch_sent_at
    timestamp = corrected_timestamp(original, sent_at, received_at)

    payload = dict(raw)
    payload.pop("writeKey", None)
    payload["type"] = message_type

    return Message(
        message_id=message_id,
        type=message_type,
        name=name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        timestamp=timestamp,
        received_at=received_at,
        sent_at=sent_at,
        original_timestamp=original,
        channel=derive_channel(message_type, name, context, properties, default_channel),
        identifiers=identifiers,
        traits=all_traits,
        payload=payload,
        previous_id=previous_id,
        group_id=group_id,
        consent=_consent(context),
    )
