"""The one door personal data goes through: ``cxm.core.pii`` (protect/reveal, blind indexes,
search tokens and Segment payloads)."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.test import override_settings

from cxm.config import ConfigError, validate
from cxm.core import crypto, pii


@pytest.fixture
def encryption_off() -> Iterator[None]:
    with override_settings(CXM=dataclasses.replace(settings.CXM, encryption=False)):
        yield


def dump(value: Any) -> str:
    return orjson.dumps(value).decode()


# --- protect / reveal ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["ada@example.com", "+14155550123", "Zoë Ågren", "x" * 600])
def test_protect_and_reveal_round_trip(value: str) -> None:
    stored = pii.protect(value)
    assert crypto.is_encrypted(stored)
    assert value not in stored
    assert pii.reveal(stored) == value
    assert pii.protect(value) != stored  # a fresh nonce each time


def test_protect_of_a_protected_value_is_unchanged() -> None:
    stored = pii.protect("ada@example.com")
    assert pii.protect(stored) == stored
    assert pii.protect(pii.protect(stored)) == stored
    assert pii.protect_any(stored) == stored
    assert pii.reveal(stored) == "ada@example.com"


def test_empty_and_plaintext_values_pass_through() -> None:
    assert pii.protect("") == ""
    assert pii.reveal("") == ""
    # values stored before encryption was switched on read back as they are
    assert pii.reveal("ada@example.com") == "ada@example.com"


@pytest.mark.parametrize("value", [
    {"street": "1 Main St", "city": "Oslo", "postalCode": "0150"},
    ["ada@example.com", "ada@work.example"],
    [{"a": [1, 2.5, None, True]}, "x"],
    {},
    [],
])
def test_protect_any_encrypts_objects_and_lists_as_json(value: Any) -> None:
    stored = pii.protect_any(value)
    assert isinstance(stored, str) and crypto.is_encrypted(stored)
    if value:
        assert dump(value)[1:-1] not in stored
    assert pii.reveal_any(stored) == value
    assert pii.protect_any(stored) == stored


@pytest.mark.parametrize("value", [None, True, False])
def test_protect_any_leaves_null_and_booleans(value: Any) -> None:
    assert pii.protect_any(value) is value
    assert pii.reveal_any(value) is value


@pytest.mark.parametrize("value", [0, 42, 14155552671, 2.5])
def test_protect_any_encrypts_numbers_and_reveals_them_as_numbers(value: Any) -> None:
    stored = pii.protect_any(value)
    assert isinstance(stored, str) and crypto.is_encrypted(stored)
    if value > 100:  # short numbers can appear in base64 by chance
        assert str(value) not in stored
    revealed = pii.reveal_any(stored)
    assert revealed == value and type(revealed) is type(value)


def test_reveal_any_of_strings() -> None:
    assert pii.reveal_any(pii.protect_any("Ada Lovelace")) == "Ada Lovelace"
    assert pii.reveal_any("plain") == "plain"
    assert pii.reveal_any({"not": "a token"}) == {"not": "a token"}


@pytest.mark.parametrize("value", ["json: is what our API speaks", "json:[1, 2]"])
def test_strings_that_look_like_the_json_mark_round_trip(value: str) -> None:
    assert pii.reveal_any(pii.protect_any(value)) == value


# --- blind index and search tokens -----------------------------------------------------------


def test_lookup_key_is_a_stable_keyed_hash() -> None:
    key = pii.lookup_key("email", "ada@example.com")
    assert re.fullmatch(r"h:[0-9a-f]{40}", key)
    assert key == pii.lookup_key("email", "ada@example.com")
    assert key != pii.lookup_key("email", "ada@example.org")
    assert key == crypto.blind_index("identifier", "ada@example.com")


def test_lookup_key_does_not_depend_on_the_kind() -> None:
    """Documented: one query finds a value whatever its kind (the search box)."""
    assert pii.lookup_key("email", "x@y.test") == pii.lookup_key("user_id", "x@y.test")
    assert pii.lookup_key("ext:crm", "C-9") == pii.lookup_key("any", "C-9")


def test_search_tokens_are_blind_lower_cased_words_between_spaces() -> None:
    tokens = pii.search_tokens(["Ada", "LOVELACE", " ada ", "", "  ", "ada@example.com"])
    words = tokens.split()
    assert tokens.startswith(" ") and tokens.endswith(" ")
    assert words == [crypto.search_token("ada"), crypto.search_token("lovelace"),
                     crypto.search_token("ada@example.com")]  # lower-cased, de-duplicated
    assert f" {crypto.search_token('lovelace')} " in tokens
    assert re.fullmatch(r" (?:[0-9a-f]{12} ){3}", tokens)  # nothing readable
    assert pii.search_tokens([]) == "" and pii.search_tokens(["", " "]) == ""


def test_personal_keys() -> None:
    assert all(pii.is_personal_trait(k) for k in ("email", "phone", "name", "firstName",
                                                  "lastName", "address", "ip"))
    assert not any(pii.is_personal_trait(k) for k in ("plan", "createdAt", "loyalty_tier"))
    # a product or page name is not personal; a person's email in properties is
    assert "name" not in pii.PERSONAL_PROPERTIES and "title" not in pii.PERSONAL_PROPERTIES
    assert "email" in pii.PERSONAL_PROPERTIES


def test_mask_keeps_the_shape_only() -> None:
    assert pii.mask("ada@example.com") == "a***@example.com"
    assert pii.mask("+14155550123") == "+1***"
    assert pii.mask("ab") == "***"


# --- payloads --------------------------------------------------------------------------------

IDENTIFY = {
    "type": "identify", "messageId": "m-identify-1", "userId": "usr_5731948cc151",
    "anonymousId": "299cfab0-31e7-4628-a4a2-9f3266aa57f9",
    "timestamp": "2025-11-01T09:35:20.191Z",
    "traits": {"email": "lukas.yilmaz22@example.net", "firstName": "Lukas", "lastName": "Yilmaz",
               "address": {"street": "61 High Street", "city": "Leeds", "postalCode": "LS1 4YR",
                           "country": "GB"},
               "plan": "standard", "phone": "+44 (0)113 496 0583",
               "preferences": {"pillow": "soft"}, "createdAt": "2024-09-13T05:56:51.805Z"},
    "context": {"ip": "203.0.113.9", "locale": "en-GB",
                "library": {"name": "analytics.js", "version": "1.72.0"},
                "page": {"path": "/account/login", "url": "https://shop.example/account/login"},
                "traits": {"email": "  LUKAS.Yilmaz22@Example.net "},
                "externalIds": [{"type": "crm_id", "id": "C-9912", "collection": "users",
                                 "encoding": "none"}]},
}
TRACK = {
    "type": "track", "messageId": "m-track-1", "userId": "usr_5731948cc151",
    "event": "Product Reviewed", "timestamp": "2025-11-02T10:00:00Z",
    "properties": {"product_id": "prod_1001", "name": "Cast Iron Skillet 26cm",
                   "title": "Great pan", "email": "lukas.yilmaz22@example.net",
                   "comment": "Lukas here: the handle gets hot", "rating": 4, "price": 89.99,
                   "products": [{"name": "Chef's Knife 20cm"}]},
    "context": {"channel": "web", "traits": {"name": "Lukas Yilmaz", "plan": "standard"}},
}
ALIAS = {"type": "alias", "messageId": "m-alias-1", "userId": "usr_5731948cc151",
         "previousId": "anon-old-77", "timestamp": "2025-11-03T10:00:00Z"}
PERSONAL_VALUES = ["usr_5731948cc151", "299cfab0-31e7-4628-a4a2-9f3266aa57f9",
                   "lukas.yilmaz22@example.net", "LUKAS.Yilmaz22", "Lukas", "Yilmaz",
                   "61 High Street", "LS1 4YR", "496 0583", "203.0.113.9", "C-9912",
                   "the handle gets hot", "anon-old-77"]


@pytest.mark.parametrize("message", [IDENTIFY, TRACK, ALIAS], ids=["identify", "track", "alias"])
def test_payload_round_trip_leaves_no_personal_value_readable(message: dict[str, Any]) -> None:
    original = copy.deepcopy(message)
    stored = pii.protect_payload(message)
    assert message == original  # the input is not changed
    text = dump(stored)
    for value in PERSONAL_VALUES:
        assert value not in text, value
    assert pii.reveal_payload(stored) == original
    # what is stored is JSON (it goes into a JSON column)
    assert orjson.loads(text) == stored


def test_stored_identify_encrypts_identifiers_and_personal_traits_only() -> None:
    stored = pii.protect_payload(IDENTIFY)
    for field in ("userId", "anonymousId"):
        assert crypto.is_encrypted(stored[field])
    traits = stored["traits"]
    for key in ("email", "firstName", "lastName", "phone", "address"):
        assert crypto.is_encrypted(traits[key]), key
    assert pii.reveal_any(traits["address"]) == IDENTIFY["traits"]["address"]
    assert traits["plan"] == "standard"
    assert traits["preferences"] == {"pillow": "soft"}
    assert traits["createdAt"] == IDENTIFY["traits"]["createdAt"]
    context = stored["context"]
    assert crypto.is_encrypted(context["ip"])
    assert crypto.is_encrypted(context["traits"]["email"])
    (external,) = context["externalIds"]
    assert crypto.is_encrypted(external["id"])
    assert {k: external[k] for k in ("type", "collection", "encoding")} == {
        "type": "crm_id", "collection": "users", "encoding": "none"}
    assert context["page"] == IDENTIFY["context"]["page"]
    assert context["library"] == IDENTIFY["context"]["library"]
    assert (stored["type"], stored["messageId"], stored["timestamp"]) == (
        "identify", "m-identify-1", "2025-11-01T09:35:20.191Z")


def test_stored_track_keeps_product_names_and_encrypts_personal_properties() -> None:
    stored = pii.protect_payload(TRACK)
    properties = stored["properties"]
    assert properties["name"] == "Cast Iron Skillet 26cm"  # a product name is not personal
    assert properties["title"] == "Great pan"
    assert properties["products"] == [{"name": "Chef's Knife 20cm"}]
    assert (properties["product_id"], properties["rating"], properties["price"]) == (
        "prod_1001", 4, 89.99)
    assert crypto.is_encrypted(properties["email"])
    assert crypto.is_encrypted(properties["comment"])
    assert stored["event"] == "Product Reviewed"
    # under context.traits a name is a person's name
    assert crypto.is_encrypted(stored["context"]["traits"]["name"])
    assert stored["context"]["traits"]["plan"] == "standard"
    assert stored["context"]["channel"] == "web"


def test_stored_alias_encrypts_the_previous_id() -> None:
    stored = pii.protect_payload(ALIAS)
    assert crypto.is_encrypted(stored["previousId"])
    assert pii.reveal_payload(stored)["previousId"] == "anon-old-77"


def test_protect_payload_is_idempotent_and_reveal_accepts_plain_payloads() -> None:
    once = pii.protect_payload(IDENTIFY)
    assert pii.protect_payload(once) == once
    assert pii.reveal_payload(IDENTIFY) == IDENTIFY  # stored before encryption: as it is


def test_odd_shapes_are_left_alone() -> None:
    message = {"type": "track", "userId": None, "traits": "not an object",
               "properties": ["a", "list"], "context": {"externalIds": ["x", {"type": "t"}],
                                                        "ip": None}}
    stored = pii.protect_payload(message)
    assert stored == message
    assert pii.reveal_payload(stored) == message


def test_numeric_identifiers_and_phones_are_encrypted_too() -> None:
    message = {"type": "identify", "userId": 4242424242, "traits": {"phone": 14155552671},
               "context": {"externalIds": [{"type": "crm_id", "id": 99173}]}}
    text = dump(pii.protect_payload(message))
    for value in ("4242424242", "14155552671", "99173"):
        assert value not in text, value


# --- CXM_ENCRYPTION=off ----------------------------------------------------------------------


def test_with_encryption_off_values_are_stored_readable(encryption_off: None) -> None:
    assert settings.CXM.encryption is False
    assert pii.protect("ada@example.com") == "ada@example.com"
    assert pii.protect_any({"city": "Oslo"}) == {"city": "Oslo"}
    assert pii.protect_any(["a"]) == ["a"]
    assert pii.lookup_key("email", "ada@example.com") == "ada@example.com"
    assert pii.search_tokens(["Ada", "LOVELACE"]) == " ada lovelace "
    assert pii.protect_payload(IDENTIFY) == IDENTIFY
    assert pii.reveal_payload(IDENTIFY) == IDENTIFY


def test_with_encryption_off_data_written_encrypted_still_reads() -> None:
    stored = pii.protect("ada@example.com")
    payload = pii.protect_payload(TRACK)
    with override_settings(CXM=dataclasses.replace(settings.CXM, encryption=False)):
        assert pii.reveal(stored) == "ada@example.com"
        assert pii.reveal_payload(payload) == TRACK
        assert pii.protect(stored) == stored


def test_encryption_cannot_be_switched_off_in_production() -> None:
    config = dataclasses.replace(settings.CXM, production=True, debug=False, encryption=False,
                                 secret_key="s" * 40, allowed_hosts=["cxm.example"])
    with pytest.raises(ConfigError, match="CXM_ENCRYPTION"):
        validate(config)
    validate(dataclasses.replace(config, encryption=True))


@pytest.mark.django_db
def test_ingest_with_encryption_off_stores_plaintext_and_still_reads(
    encryption_off: None,
) -> None:
    from cxm.core.audit import Actor
    from cxm.identity import queries
    from cxm.identity.models import Identity
    from cxm.ingest.actions import ingest
    from cxm.ingest.models import Event

    result = ingest([IDENTIFY], actor=Actor("test"), source="test")
    assert result.accepted == 1 and not result.rejected
    profile = queries.by_identifier("email", "lukas.yilmaz22@example.net")
    assert queries.reveal(profile.email) == "lukas.yilmaz22@example.net"
    assert Identity.objects.filter(kind="email", value="lukas.yilmaz22@example.net").exists()
    assert Event.objects.get().payload["userId"] == "usr_5731948cc151"
    assert ("user_id", "usr_5731948cc151") in {
        (i.kind, i.value) for i in queries.identities(profile)}
