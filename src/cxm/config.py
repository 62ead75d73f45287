"""Typed settings read from ``CXM_*`` environment variables, validated at start-up.

Every setting the platform reads lives here and in ``docs/configuration.md``; nothing else
reads the environment. Production mode refuses unsafe values instead of warning about them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SECRET = "cxm-insecure-development-secret-change-me"  # noqa: S105 - flagged at start-up
EMAIL_BACKENDS = ("smtp", "file")


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message names the variable."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value != value or value in {float("inf"), float("-inf")}:
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def _origins(name: str) -> list[str]:
    """Comma-separated origins such as ``https://shop.example.com``, without paths."""
    origins = []
    for raw in (os.environ.get(name) or "").split(","):
        origin = raw.strip().rstrip("/").lower()
        if not origin:
            continue
        scheme, sep, rest = origin.partition("://")
        if scheme not in {"http", "https"} or not sep or not rest or "/" in rest:
            raise ConfigError(f"{name} must list origins like https://shop.example.com, "
                              f"got {raw.strip()!r}")
        origins.append(origin)
    return origins


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    secret_key: str
    debug: bool
    production: bool
    allowed_hosts: list[str]
    queue: str
    redis_url: str
    sqlite_synchronous: str
    max_message_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    ingest_rate_limit: float = 20_000.0
    ingest_rate_burst: float = 40_000.0
    csrf_trusted_origins: list[str] = field(default_factory=list)
    key_file: Path = Path("keys/cxm.keys")
    encryption_keys: str = ""
    encryption: bool = True
    retention_events_days: int = 0
    retention_inactive_profiles_days: int = 0
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: str = "none"
    email_from: str = "cxm <surveys@localhost>"
    # smtp: hand mail to CXM_SMTP_HOST; file: write each message under outbox_dir (demos).
    email_backend: str = "smtp"
    # Origins (scheme://host[:port]) whose pages may use the survey widget; empty = any.
    widget_origins: list[str] = field(default_factory=list)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def outbox_dir(self) -> Path:
        """Where ``CXM_EMAIL_BACKEND=file`` writes outgoing mail, one file per message."""
        return self.data_dir / "outbox"


def load() -> Config:
    data_dir = Path(os.environ.get("CXM_DATA_DIR") or Path.cwd() / "cxm-data").resolve()
    database_url = os.environ.get("CXM_DATABASE_URL") or f"sqlite:///{data_dir / 'cxm.sqlite3'}"
    production = _bool("CXM_PRODUCTION", False)
    debug = _bool("CXM_DEBUG", False)
    secret_key = os.environ.get("CXM_SECRET_KEY") or DEFAULT_SECRET
    hosts_raw = os.environ.get("CXM_ALLOWED_HOSTS") or ("" if production else "*")
    queue = os.environ.get("CXM_QUEUE") or "sqlite"
    if queue not in {"sqlite", "redis", "immediate"}:
        raise ConfigError(f"CXM_QUEUE must be sqlite, redis or immediate, got {queue!r}")
    synchronous = (os.environ.get("CXM_SQLITE_SYNCHRONOUS") or "FULL").upper()
    if synchronous not in {"FULL", "NORMAL", "EXTRA"}:
        raise ConfigError(
            f"CXM_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA, got {synchronous}")
    rate_limit = _float("CXM_INGEST_RATE_LIMIT", 20_000.0)
    if rate_limit < 0:
        raise ConfigError("CXM_INGEST_RATE_LIMIT must be 0 (off) or a positive number of "
                          "events per second")
    rate_burst = _float("CXM_INGEST_RATE_BURST", 0.0)
    if rate_burst < 0:
        raise ConfigError("CXM_INGEST_RATE_BURST must be 0 (twice the rate) or positive")
    smtp_tls = (os.environ.get("CXM_SMTP_TLS") or "none").lower()
    if smtp_tls not in {"none", "starttls", "ssl"}:
        raise ConfigError(f"CXM_SMTP_TLS must be none, starttls or ssl, got {smtp_tls!r}")
    email_backend = (os.environ.get("CXM_EMAIL_BACKEND") or "smtp").strip().lower()
    if email_backend not in EMAIL_BACKENDS:
        raise ConfigError(f"CXM_EMAIL_BACKEND must be smtp or file, got {email_backend!r}")
    base_url = (os.environ.get("CXM_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"CXM_BASE_URL must start with http:// or https://, got {base_url!r}")
    config = Config(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=secret_key,
        debug=debug,
        production=production,
        allowed_hosts=[h.strip() for h in hosts_raw.split(",") if h.strip()],
        queue=queue,
        redis_url=os.environ.get("CXM_REDIS_URL") or "redis://127.0.0.1:6379/0",
        sqlite_synchronous=synchronous,
        max_message_bytes=_int("CXM_MAX_MESSAGE_BYTES", 32 * 1024),
        max_batch_bytes=_int("CXM_MAX_BATCH_BYTES", 500 * 1024),
        ingest_rate_limit=rate_limit,
        ingest_rate_burst=rate_burst or 2 * rate_limit,
        key_file=Path(os.environ.get("CXM_KEY_FILE") or data_dir / "keys" / "cxm.keys"),
        encryption_keys=os.environ.get("CXM_ENCRYPTION_KEYS") or "",
        encryption=_bool("CXM_ENCRYPTION", True),
        retention_events_days=_int("CXM_RETENTION_EVENTS_DAYS", 0),
        retention_inactive_profiles_days=_int("CXM_RETENTION_INACTIVE_PROFILES_DAYS", 0),
        base_url=base_url,
        smtp_host=os.environ.get("CXM_SMTP_HOST") or "127.0.0.1",
        smtp_port=_int("CXM_SMTP_PORT", 25),
        smtp_user=os.environ.get("CXM_SMTP_USER") or "",
        smtp_password=os.environ.get("CXM_SMTP_PASSWORD") or "",
        smtp_tls=smtp_tls,
        email_from=os.environ.get("CXM_EMAIL_FROM") or "cxm <surveys@localhost>",
        email_backend=email_backend,
        csrf_trusted_origins=[
            o.strip() for o in (os.environ.get("CXM_CSRF_TRUSTED_ORIGINS") or "").split(",")
            if o.strip()
        ],
        widget_origins=_origins("CXM_WIDGET_ORIGINS"),
    )
    validate(config)
    return config


def use_demo_defaults(host: str, port: int,
                      environ: MutableMapping[str, str] | None = None) -> list[str]:
    """``cxm demo`` runs on a fresh machine, usually without a mail server: unless the operator
    chose a mail backend or an SMTP host, mail goes to the outbox; unless ``CXM_BASE_URL`` is
    set, links in emails point at the demo's own address. Sets the variables (so the worker
    process the demo starts inherits them) and returns the names it set."""
    env = os.environ if environ is None else environ
    chosen = []
    if not env.get("CXM_EMAIL_BACKEND") and not env.get("CXM_SMTP_HOST"):
        env["CXM_EMAIL_BACKEND"] = "file"
        chosen.append("CXM_EMAIL_BACKEND")
    if not env.get("CXM_BASE_URL"):
        shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - a check
        if ":" in shown:
            shown = f"[{shown}]"
        env["CXM_BASE_URL"] = f"http://{shown}:{port}"
        chosen.append("CXM_BASE_URL")
    return chosen


def validate(config: Config) -> None:
    if not config.production:
        return
    if config.secret_key == DEFAULT_SECRET or len(config.secret_key) < 32:
        raise ConfigError("CXM_SECRET_KEY must be set to a random value of 32+ characters "
                          "when CXM_PRODUCTION is on")
    if config.debug:
        raise ConfigError("CXM_DEBUG must be off when CXM_PRODUCTION is on")
    if not config.encryption:
        raise ConfigError("CXM_ENCRYPTION can only be switched off outside production "
                          "(it exists to measure its cost)")
    if config.email_backend == "file":
        raise ConfigError("CXM_EMAIL_BACKEND=file keeps email addresses in plain files; it is "
                          "for demos and tests and refused when CXM_PRODUCTION is on")
    if not config.allowed_hosts or "*" in config.allowed_hosts:
        raise ConfigError("CXM_ALLOWED_HOSTS must list the host names when CXM_PRODUCTION is on")
