"""Shared fixtures. The database under test is chosen by ``CXM_DATABASE_URL`` (unset: SQLite)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _clear_key_cache() -> Iterator[None]:
    from cxm.accounts import auth

    auth.clear_cache()
    yield
    auth.clear_cache()


@pytest.fixture
def make_key(db: Any) -> Callable[..., str]:
    """Create an API key through the real action; returns the plaintext."""
    from cxm.accounts import actions
    from cxm.core.audit import Actor

    def make(scope: str = "ingest", name: str = "test", channel: str = "") -> str:
        _, plaintext = actions.create_api_key(name=name, scope=scope, default_channel=channel,
                                              actor=Actor("test"))
        return plaintext

    return make


@pytest.fixture
def ingest_key(make_key: Callable[..., str]) -> str:
    return make_key("ingest")


@pytest.fixture
def read_key(make_key: Callable[..., str]) -> str:
    return make_key("read", name="reader")


@pytest.fixture
def admin_key(make_key: Callable[..., str]) -> str:
    return make_key("admin", name="admin")


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Debian's chromium: Playwright cannot download its own browser on these machines."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (scripts/test installs it with apt-get)")
    return {
        "executable_path": executable,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"],
    }


@pytest.fixture
def config_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Callable[..., Any]:
    """``config.load()`` under the given environment (and nothing else that is CXM_)."""
    import os

    from cxm import config

    for name in list(os.environ):
        if name.startswith("CXM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))

    def load(**variables: str) -> config.Config:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return config.load()

    return load
