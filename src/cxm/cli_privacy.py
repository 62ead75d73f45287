"""``cxm privacy …`` and ``cxm crypto …`` (subject access, erasure, key rotation)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

# Not imported from cxm.cli: that module registers this one, and `python -m cxm.cli` would
# otherwise import it twice in a circle.
console = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _setup() -> None:
    from cxm import cli

    cli._setup()


def _migrate() -> None:
    from cxm import cli

    cli._migrate()


def _print(data: Any, as_json: bool) -> None:
    from cxm import cli

    cli._print(data, as_json)

privacy_app = typer.Typer(help="Subject-access export and erasure", no_args_is_help=True)
crypto_app = typer.Typer(help="Encryption keys", no_args_is_help=True)

Email = Annotated[str | None, typer.Option(help="the person's email")]
Phone = Annotated[str | None, typer.Option(help="the person's phone")]
UserId = Annotated[str | None, typer.Option(help="the person's user id")]
ProfileId = Annotated[str | None, typer.Option(help="a profile id")]


def _subject(email: str | None, phone: str | None, user_id: str | None,
             profile: str | None) -> Any:
    from cxm.core.errors import CxmError
    from cxm.identity import queries

    given = [(k, v) for k, v in (("email", email), ("phone", phone), ("user_id", user_id))
             if v]
    if bool(profile) + len(given) != 1:
        console.print("[red]give exactly one of --email, --phone, --user-id, --profile[/red]")
        raise typer.Exit(2)
    try:
        found = (queries.canonical(uuid.UUID(profile)) if profile
                 else queries.by_identifier(*given[0]))
    except (CxmError, ValueError) as error:
        console.print(f"[red]{getattr(error, 'message', error)}[/red]")
        raise typer.Exit(1) from None
    return queries.subject_of(found)


def _operator() -> Any:
    import getpass

    from cxm.core.audit import Actor

    return Actor(f"cli:{getpass.getuser()}")


@privacy_app.command("export")
def privacy_export(
    email: Email = None, phone: Phone = None, user_id: UserId = None, profile: ProfileId = None,
    out: Annotated[Path | None, typer.Option(help="file to write (default: stdout)")] = None,
) -> None:
    """Everything the platform holds on one person, as JSON (subject-access request)."""
    _setup()
    _migrate()
    from cxm.core import privacy

    data = privacy.export(_subject(email, phone, user_id, profile), _operator())
    text = json.dumps(data, default=str, indent=2, ensure_ascii=False)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


@privacy_app.command("erase")
def privacy_erase(
    email: Email = None, phone: Phone = None, user_id: UserId = None, profile: ProfileId = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove one person everywhere; keeps a proof of erasure in the audit log."""
    _setup()
    _migrate()
    from cxm.core import privacy

    subject = _subject(email, phone, user_id, profile)
    if not yes and not typer.confirm(f"erase {len(subject.profile_ids)} profile(s) and all "
                                     "their data? This cannot be undone"):
        raise typer.Exit(1)
    removed = privacy.erase(subject, _operator())
    if as_json:
        _print({"erased_profiles": [str(p) for p in subject.profile_ids], "removed": removed},
               True)
    else:
        sys.stdout.write("erased: " + ", ".join(f"{k} {v}" for k, v in removed.items()) + "\n")


@crypto_app.command("rotate")
def crypto_rotate(as_json: JsonFlag = False) -> None:
    """Add a new encryption key to the key file and re-encrypt all data under it, online."""
    _setup()
    _migrate()
    from django.conf import settings

    from cxm.core import crypto, privacy

    cfg = settings.CXM
    if cfg.encryption_keys:
        console.print("[red]keys come from CXM_ENCRYPTION_KEYS: append a new enc:<id>:<key> "
                      "entry there, restart, then run `cxm crypto reencrypt`[/red]")
        raise typer.Exit(2)
    crypto.ensure_key_file(cfg.key_file)
    with cfg.key_file.open("a") as handle:
        handle.write(crypto.new_key_line("enc") + "\n")
    crypto.configure(None)  # reload: the new key is now the current one
    new_id = crypto.keyring().current_id
    changed = privacy.reencrypt_all(
        progress=None if as_json else
        lambda store, n: console.print(f"re-encrypted {n} rows in {store}"))
    _print({"current_key": new_id, "reencrypted": changed}, as_json)
    if not as_json:
        sys.stdout.write(f"current key is now {new_id}. Restart running servers and workers "
                         "so that they encrypt with it and can read rows it wrote.\n")


@crypto_app.command("reencrypt")
def crypto_reencrypt(as_json: JsonFlag = False) -> None:
    """Re-encrypt all data under the current key (after adding one to CXM_ENCRYPTION_KEYS)."""
    _setup()
    from cxm.core import crypto, privacy

    changed = privacy.reencrypt_all()
    _print({"current_key": crypto.keyring().current_id, "reencrypted": changed}, as_json)
    if not as_json:
        sys.stdout.write(f"re-encrypted under {crypto.keyring().current_id}: {changed}\n")
