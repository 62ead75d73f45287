"""Field-level encryption (AES-256-GCM keyring) and keyed hashes: ``cxm.core.crypto``."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from cxm.core import crypto


def key_material() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


INDEX_LINE = f"index:{key_material()}"
KEY_A = f"enc:a:{key_material()}"
KEY_B = f"enc:b:{key_material()}"


@pytest.fixture
def use_keyring() -> Iterator[Callable[..., crypto.Keyring]]:
    """Install a keyring built from key-file lines for one test; the process-wide keyring is
    put back afterwards (other tests' data is encrypted with it)."""
    saved = crypto.keyring()

    def install(*lines: str) -> crypto.Keyring:
        ring = crypto.parse_lines(list(lines), "test")
        crypto.configure(ring)
        return ring

    yield install
    crypto.configure(saved)


def body(token: str) -> bytes:
    encoded = token[len(crypto.PREFIX):].partition(":")[2]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def with_body(token: str, raw: bytes) -> str:
    key_id = crypto.key_id_of(token)
    return f"{crypto.PREFIX}{key_id}:{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"


# --- encryption ------------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["ada@example.com", "+14155550123", "Zoë Ågren-Łukasz 名前",
                                       "", "x" * 5000, "json:{\"a\": 1}"])
def test_round_trip(use_keyring: Callable[..., crypto.Keyring], plaintext: str) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    token = crypto.encrypt(plaintext)
    assert token.startswith(f"{crypto.PREFIX}a:")
    assert crypto.is_encrypted(token)
    assert crypto.key_id_of(token) == "a"
    assert crypto.decrypt(token) == plaintext
    if plaintext:
        assert plaintext not in token


def test_equal_plaintexts_give_different_tokens(use_keyring: Callable[..., crypto.Keyring]) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    tokens = {crypto.encrypt("same@example.com") for _ in range(50)}
    assert len(tokens) == 50  # a fresh random nonce each time
    nonces = {body(t)[:12] for t in tokens}
    assert len(nonces) == 50
    assert {crypto.decrypt(t) for t in tokens} == {"same@example.com"}


def test_the_token_is_nonce_ciphertext_and_tag(use_keyring: Callable[..., crypto.Keyring]) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    raw = body(crypto.encrypt("abcdef"))
    assert len(raw) == 12 + len("abcdef") + 16
    assert re.fullmatch(r"enc:v1:a:[A-Za-z0-9_-]+", crypto.encrypt("abcdef"))


def test_values_that_are_not_tokens_pass_through() -> None:
    assert not crypto.is_encrypted("ada@example.com")
    assert crypto.key_id_of("ada@example.com") is None
    assert crypto.decrypt("ada@example.com") == "ada@example.com"
    assert crypto.decrypt("") == ""


@pytest.mark.parametrize("position", [0, 11, 12, 14, -16, -1])
def test_a_tampered_token_fails_authentication(
    use_keyring: Callable[..., crypto.Keyring], position: int,
) -> None:
    """Any flipped bit — in the nonce, the ciphertext or the tag — is detected."""
    use_keyring(INDEX_LINE, KEY_A)
    token = crypto.encrypt("ada@example.com")
    raw = bytearray(body(token))
    raw[position] ^= 0x01
    with pytest.raises(crypto.KeyError_, match="encrypted with key 'a' failed authentication"):
        crypto.decrypt(with_body(token, bytes(raw)))


def test_a_token_moved_to_another_key_id_fails_authentication(
    use_keyring: Callable[..., crypto.Keyring],
) -> None:
    use_keyring(INDEX_LINE, KEY_A, KEY_B)
    token = crypto.encrypt("ada@example.com")
    assert crypto.key_id_of(token) == "b"
    relabelled = token.replace(f"{crypto.PREFIX}b:", f"{crypto.PREFIX}a:", 1)
    with pytest.raises(crypto.KeyError_, match="key 'a' failed authentication"):
        crypto.decrypt(relabelled)


def test_a_token_cut_short_fails_authentication(use_keyring: Callable[..., crypto.Keyring]) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    token = crypto.encrypt("ada@example.com")
    raw = body(token)
    for cut in (len(raw) - 1, 12 + 16, 20):
        with pytest.raises(crypto.KeyError_, match="failed authentication"):
            crypto.decrypt(with_body(token, raw[:cut]))


def test_a_token_without_a_nonce_is_reported_as_corrupt(
    use_keyring: Callable[..., crypto.Keyring],
) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    token = crypto.encrypt("ada@example.com")
    with pytest.raises(crypto.KeyError_):
        crypto.decrypt(with_body(token, body(token)[:6]))


def test_an_unknown_key_id_is_named_in_the_error(
    use_keyring: Callable[..., crypto.Keyring],
) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    token = crypto.encrypt("ada@example.com").replace(f"{crypto.PREFIX}a:",
                                                        f"{crypto.PREFIX}gone:", 1)
    with pytest.raises(crypto.KeyError_, match="key 'gone', which is not in the keyring"):
        crypto.decrypt(token)


# --- rotation --------------------------------------------------------------------------------


def test_rotation_the_last_key_encrypts_and_every_key_decrypts(
    use_keyring: Callable[..., crypto.Keyring],
) -> None:
    ring = use_keyring(INDEX_LINE, KEY_A)
    assert ring.current_id == "a"
    old = crypto.encrypt("ada@example.com")
    old_index = crypto.blind_index("email", "ada@example.com")

    ring = use_keyring(INDEX_LINE, KEY_A, KEY_B)  # a key added: it encrypts from now on
    assert ring.current_id == "b" and set(ring.keys) == {"a", "b"}
    new = crypto.encrypt("ada@example.com")
    assert crypto.key_id_of(new) == "b"
    assert crypto.decrypt(old) == crypto.decrypt(new) == "ada@example.com"
    # the blind index does not depend on the encryption keys: lookups survive rotation
    assert crypto.blind_index("email", "ada@example.com") == old_index

    use_keyring(INDEX_LINE, KEY_B)  # the old key retired
    assert crypto.decrypt(new) == "ada@example.com"
    with pytest.raises(crypto.KeyError_, match="key 'a', which is not in the keyring"):
        crypto.decrypt(old)


def test_the_order_of_lines_decides_the_current_key() -> None:
    assert crypto.parse_lines([KEY_B, INDEX_LINE, KEY_A], "f").current_id == "a"
    assert crypto.parse_lines([KEY_A, KEY_B, INDEX_LINE], "f").current_id == "b"


# --- blind index and search tokens -----------------------------------------------------------


def test_blind_index_is_stable_keyed_and_reveals_nothing(
    use_keyring: Callable[..., crypto.Keyring],
) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    first = crypto.blind_index("email", "ada@example.com")
    assert first == crypto.blind_index("email", "ada@example.com")
    assert re.fullmatch(r"h:[0-9a-f]{40}", first)
    assert crypto.blind_index("email", "ada@example.org") != first
    assert crypto.blind_index("phone", "ada@example.com") != first  # the kind is hashed too
    # the same index key in a new keyring (e.g. after a restart) gives the same index
    use_keyring(KEY_B, INDEX_LINE)
    assert crypto.blind_index("email", "ada@example.com") == first
    # another index key gives another index: nothing can be matched without the key
    use_keyring(f"index:{key_material()}", KEY_A)
    assert crypto.blind_index("email", "ada@example.com") != first


def test_search_token_is_stable_short_and_keyed(use_keyring: Callable[..., crypto.Keyring]) -> None:
    use_keyring(INDEX_LINE, KEY_A)
    token = crypto.search_token("lovelace")
    assert token == crypto.search_token("lovelace")
    assert re.fullmatch(r"[0-9a-f]{12}", token)
    assert crypto.search_token("lovelac") != token
    use_keyring(f"index:{key_material()}", KEY_A)
    assert crypto.search_token("lovelace") != token


# --- key material: parsing and the key file ---------------------------------------------------


def test_parse_lines_skips_comments_and_blank_lines() -> None:
    ring = crypto.parse_lines(["# keys for cxm", "", "   ", f"  {INDEX_LINE}  ", "# old:",
                               KEY_A, KEY_B + "\n"], "cxm.keys")
    assert ring.current_id == "b"
    assert set(ring.keys) == {"a", "b"}
    assert ring.index_key == base64.urlsafe_b64decode(INDEX_LINE[6:] + "=")


def test_key_material_with_or_without_base64_padding() -> None:
    raw = os.urandom(32)
    padded = base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=")
    for text in (padded, padded.rstrip("=")):
        ring = crypto.parse_lines([f"index:{text}", f"enc:k:{text}"], "f")
        assert ring.index_key == raw


@pytest.mark.parametrize(("lines", "message"), [
    ([KEY_A], r"cxm\.keys: needs at least one enc: key and one index: key"),
    ([INDEX_LINE], r"cxm\.keys: needs at least one enc: key and one index: key"),
    (["# nothing here", ""], r"cxm\.keys: needs at least one enc: key and one index: key"),
    ([INDEX_LINE, "# c", "key:abc"], r"cxm\.keys line 3: unknown entry 'key'"),
    ([INDEX_LINE, f"enc:{key_material()}"], r"cxm\.keys line 2: expected enc:<id>:<base64 key>"),
    ([INDEX_LINE, "enc:a:"], r"cxm\.keys line 2: expected enc:<id>:<base64 key>"),
    ([INDEX_LINE, "enc::" + key_material()], r"cxm\.keys line 2: expected enc:<id>:<base64"),
    ([INDEX_LINE, "enc:a:" + key_material()[:22]],
     r"cxm\.keys line 2: a key must be 32 bytes, got 16"),
    (["index:A", KEY_A], r"cxm\.keys line 1: not base64"),
    ([f"index:{base64.urlsafe_b64encode(os.urandom(33)).decode()}", KEY_A],
     r"cxm\.keys line 1: a key must be 32 bytes, got 33"),
])
def test_bad_key_material_is_a_clear_error(lines: list[str], message: str) -> None:
    with pytest.raises(crypto.KeyError_, match=message):
        crypto.parse_lines(lines, "cxm.keys")


def test_new_key_lines_parse() -> None:
    index, enc = crypto.new_key_line("index"), crypto.new_key_line("enc", "k7")
    assert index.startswith("index:") and enc.startswith("enc:k7:")
    assert re.fullmatch(r"enc:[0-9a-f]{8}:[A-Za-z0-9_-]{43}", crypto.new_key_line())
    ring = crypto.parse_lines([index, enc], "new")
    assert ring.current_id == "k7"
    assert crypto.new_key_line("index") != index  # fresh material every time


def test_key_file_is_created_private_once_and_parsed(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "cxm.keys"
    crypto.ensure_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert text.startswith("#")  # says what the file is and to back it up
    lines = text.splitlines()
    assert sum(line.startswith("enc:") for line in lines) == 1
    assert sum(line.startswith("index:") for line in lines) == 1
    ring = crypto.parse_lines(lines, str(path))
    assert len(ring.keys) == 1 and len(ring.index_key) == 32

    crypto.ensure_key_file(path)  # an existing file is never replaced
    assert path.read_text() == text


def test_two_installs_get_different_keys(tmp_path: Path) -> None:
    first, second = tmp_path / "one.keys", tmp_path / "two.keys"
    crypto.ensure_key_file(first)
    crypto.ensure_key_file(second)
    assert first.read_text() != second.read_text()


def test_the_keyring_is_loaded_from_the_configured_key_file(
    tmp_path: Path, use_keyring: Callable[..., crypto.Keyring],
) -> None:
    path = tmp_path / "keys" / "cxm.keys"
    config = dataclasses.replace(settings.CXM, key_file=path, encryption_keys="")
    with override_settings(CXM=config):
        crypto.configure(None)
        ring = crypto.keyring()
        assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
        parsed = crypto.parse_lines(path.read_text().splitlines(), str(path))
        assert (ring.current_id, ring.index_key) == (parsed.current_id, parsed.index_key)
        token = crypto.encrypt("ada@example.com")
        assert crypto.key_id_of(token) == ring.current_id
        # the file is read once: the keyring is cached until configure() or a restart
        assert crypto.keyring() is ring


def test_the_keyring_from_the_environment_takes_precedence(
    tmp_path: Path, use_keyring: Callable[..., crypto.Keyring],
) -> None:
    path = tmp_path / "keys" / "cxm.keys"
    config = dataclasses.replace(settings.CXM, key_file=path,
                                 encryption_keys=f"{INDEX_LINE};{KEY_A};{KEY_B}")
    with override_settings(CXM=config):
        crypto.configure(None)
        ring = crypto.keyring()
    assert ring.current_id == "b" and set(ring.keys) == {"a", "b"}
    assert not path.exists()  # no key file is made when the keys come from the environment


def test_a_broken_key_file_stops_start_up_with_its_name(
    tmp_path: Path, use_keyring: Callable[..., crypto.Keyring],
) -> None:
    path = tmp_path / "cxm.keys"
    path.write_text(f"{INDEX_LINE}\nenc:a:not-a-key\n")
    config = dataclasses.replace(settings.CXM, key_file=path, encryption_keys="")
    with override_settings(CXM=config):
        crypto.configure(None)
        with pytest.raises(crypto.KeyError_, match=rf"{re.escape(str(path))} line 2"):
            crypto.keyring()
