"""``cxm serve --worker`` / ``cxm demo``: the background worker runs beside the web server as a
child process, does the queued work (here: survey emails, written to the outbox by the file
email backend), and never outlives the server — whether it is stopped with SIGTERM, with Ctrl-C,
or killed outright. Plus the settings behind it: ``CXM_EMAIL_BACKEND`` and the demo's
defaults."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.message
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cxm import config
from tests.helpers import free_port, process_env

SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # Django's file backend ends every message with it
DEFINITION = {"title": "How did we do?", "questions": [
    {"id": "score", "type": "nps", "required": True, "text": "Would you recommend us?"}]}


# --- helpers: a real server in its own process --------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def read_outbox(outbox: Path) -> list[email.message.EmailMessage]:
    """Every complete message the file backend wrote (a file is complete once it ends with
    the separator), oldest first."""
    messages: list[email.message.EmailMessage] = []
    if not outbox.is_dir():
        return messages
    for path in sorted(outbox.iterdir(), key=lambda p: p.stat().st_mtime):
        raw = path.read_bytes()
        if not raw.endswith(SEPARATOR):
            continue
        for part in raw.split(SEPARATOR)[:-1]:
            message = email.message_from_bytes(part, policy=email.policy.default)
            assert isinstance(message, email.message.EmailMessage)
            messages.append(message)
    return messages


def plain_text(message: email.message.EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


@pytest.fixture
def server_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a separate cxm process: a fresh data dir and database (a database of
    its own on PostgreSQL), the SQLite queue and the file email backend."""
    with process_env(tmp_path, "cxm_serve",
                     drop=("CXM_QUEUE", "CXM_SMTP_", "CXM_EMAIL_")) as env:
        env["CXM_EMAIL_BACKEND"] = "file"
        yield env


class Server:
    """``cxm serve --worker`` in a session of its own (as a terminal would run it)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.worker_pid = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cxm", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1", "--threads", "2", "--worker"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._healthy, 60, "the server to answer /healthz")
        found = wait_until(
            lambda: re.search(r"background worker started \(pid (\d+)\)", self.log.read_text()),
            10, "the worker to start")
        self.worker_pid = int(found.group(1))
        cmdline = Path(f"/proc/{self.worker_pid}/cmdline").read_bytes().split(b"\0")
        assert b"worker" in cmdline, cmdline
        assert int(Path(f"/proc/{self.worker_pid}/stat").read_text()
                   .rsplit(")", 1)[1].split()[1]) == self.process.pid  # its parent is the server
        wait_until(lambda: "Huey consumer started" in self.log.read_text(), 30,
                   "the huey consumer to start")

    def _healthy(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.output()
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text()[-4000:]

    def call(self, method: str, path: str, key: str, body: Any = None,
             basic: bool = False) -> Any:
        auth = (f"Basic {base64.b64encode(f'{key}:'.encode()).decode()}" if basic
                else f"Bearer {key}")
        request = urllib.request.Request(
            self.base_url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in {200, 201}, response.status
            return json.loads(response.read())

    def cleanup(self) -> None:
        """Whatever the test did: nothing of ours is left running."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.worker_pid and alive(self.worker_pid):
            os.kill(self.worker_pid, signal.SIGKILL)


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    done = subprocess.run([sys.executable, "-m", "cxm", "migrate"], env=server_env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    running = Server(server_env, tmp_path / "server.log")
    try:
        yield running
    finally:
        running.cleanup()


def admin_key(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cxm", "keys", "create", "--name", "test", "--scope", "admin",
         "--json"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def identify(server: Server, key: str, user_id: str, address: str) -> None:
    server.call("POST", "/v1/identify", key, basic=True, body={
        "userId": user_id, "messageId": f"identify-{user_id}",
        "traits": {"email": address, "name": user_id.title(),
                   "consent": {"email": {"research": True}}}})


# --- the worker beside the server ----------------------------------------------------------------


@pytest.mark.slow
def test_serve_with_worker_sends_queued_emails_and_sigterm_stops_the_worker_too(
    server: Server, server_env: dict[str, str],
) -> None:
    key = admin_key(server_env)
    server.start()
    outbox = Path(server_env["CXM_DATA_DIR"]) / "outbox"

    # A survey sent automatically after an event: ingest → task invite_after_event → task
    # send_invitation → a file in the outbox, all done by the worker.
    survey = server.call("POST", "/api/v1/surveys", key, body={
        "name": "Delivery NPS", "kind": "nps", "definition": DEFINITION,
        "trigger_event": "Order Delivered"})
    identify(server, key, "ann", "ann@example.com")
    server.call("POST", "/v1/track", key, basic=True, body={
        "userId": "ann", "event": "Order Delivered", "messageId": "delivered-ann"})
    (message,) = wait_until(lambda: read_outbox(outbox), 30,
                            "the triggered invitation in the outbox\n" + server.output())
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "How did we do?"
    assert re.search(r"http://127\.0\.0\.1:\d+/s/[\w.:-]+/", plain_text(message))

    # An invitation made through the API is sent by the worker too.
    identify(server, key, "bob", "bob@example.com")
    bob = server.call("GET", "/api/v1/profiles/lookup?email=bob%40example.com", key)
    invited = server.call("POST", f"/api/v1/surveys/{survey['id']}/invitations", key,
                          body={"profile_id": bob["id"], "channel": "email"})
    assert invited["status"] == "pending"
    messages = wait_until(lambda: len(read_outbox(outbox)) == 2 and read_outbox(outbox), 30,
                          "the API invitation in the outbox\n" + server.output())
    assert sorted(m["To"] for m in messages) == ["ann@example.com", "bob@example.com"]

    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=45) == 0, server.output()
    assert not alive(server.worker_pid), "the worker outlived the server"
    log = server.output()
    assert "background worker stopped" in log and "Consumer exiting" in log


@pytest.mark.slow
def test_ctrl_c_stops_server_and_worker(server: Server) -> None:
    server.start()
    assert server.process is not None
    # The terminal sends SIGINT to its foreground process group: the server and its web
    # workers. The background worker has a group of its own; the server stops it.
    os.killpg(server.process.pid, signal.SIGINT)
    server.process.wait(timeout=45)
    assert not alive(server.worker_pid), "the worker outlived the server"
    assert "Shutting down gracefully" in server.output()  # stopped by SIGINT, not killed


@pytest.mark.slow
def test_a_killed_server_leaves_no_worker_behind(server: Server) -> None:
    server.start()
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)  # the server and its web workers
    server.process.wait(timeout=10)
    wait_until(lambda: not alive(server.worker_pid), 15, "the orphaned worker to exit")
    assert "worker stopping" in server.output()


def test_serve_runs_no_worker_unless_asked() -> None:
    from typer.testing import CliRunner

    from cxm.cli import app

    help_text = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--worker" in help_text and "--no-worker" in help_text
    assert re.search(r"--worker\s+--no-worker\s.*\[default: no-worker\]", help_text), help_text


# --- the file email backend ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_file_backend_writes_a_readable_invitation(settings: Any, tmp_path: Path) -> None:
    from huey.contrib.djhuey import HUEY

    from cxm.core.audit import Actor
    from cxm.feedback import actions
    from cxm.feedback.models import Invitation
    from cxm.ingest.actions import ingest

    outbox = tmp_path / "outbox"
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(outbox)
    settings.DEFAULT_FROM_EMAIL = "Example Shop <surveys@shop.example>"
    settings.CXM = dataclasses.replace(settings.CXM, base_url="http://cx.example")
    result = ingest([{"type": "identify", "userId": "u-rita", "messageId": "rita",
                      "traits": {"email": "rita@example.com", "name": "Rita",
                                 "consent": {"email": {"research": True}}}}],
                    actor=Actor("test"), source="test")
    assert result.accepted == 1
    from cxm.identity import queries

    rita = queries.by_identifier("email", "rita@example.com")
    survey = actions.create_survey(name="Delivery NPS", kind="nps", definition=DEFINITION,
                                   actor=Actor("test"))
    before = HUEY.immediate
    HUEY.immediate = True  # the worker's work, inline
    try:
        invitation = actions.invite(survey=survey, profile_id=rita.id, channel="email",
                                    actor=Actor("test"))
    finally:
        HUEY.immediate = before
    assert Invitation.objects.get(id=invitation.id).status == "sent"

    files = list(outbox.iterdir())
    assert len(files) == 1
    raw = files[0].read_bytes()
    assert raw.endswith(SEPARATOR)
    (message,) = read_outbox(outbox)
    assert message["To"] == "rita@example.com"
    assert message["From"] == "Example Shop <surveys@shop.example>"
    assert message["Subject"] == "How did we do?"
    text = plain_text(message)
    assert "Would you recommend us?" in text
    assert re.search(r"http://cx\.example/s/[\w.:-]+/", text), text
    # readable as it is: the link is on one line of the file, not encoded
    assert re.search(rb"http://cx\.example/s/[\w.:-]+/", raw)


# --- settings ------------------------------------------------------------------------------------


def test_email_backend_setting(config_env: Callable[..., config.Config], tmp_path: Path) -> None:
    assert config_env().email_backend == "smtp"
    loaded = config_env(CXM_EMAIL_BACKEND="File")
    assert loaded.email_backend == "file" and loaded.outbox_dir == tmp_path / "outbox"
    with pytest.raises(config.ConfigError, match="CXM_EMAIL_BACKEND"):
        config_env(CXM_EMAIL_BACKEND="sendmail")


def test_production_refuses_the_file_backend(config_env: Callable[..., config.Config]) -> None:
    with pytest.raises(config.ConfigError, match="CXM_EMAIL_BACKEND"):
        config_env(CXM_PRODUCTION="true", CXM_SECRET_KEY="k" * 48, CXM_ALLOWED_HOSTS="cx.example",
            CXM_EMAIL_BACKEND="file")


def test_the_demo_writes_mail_to_the_outbox_unless_smtp_is_configured(
    config_env: Callable[..., config.Config],
) -> None:
    fresh: dict[str, str] = {}
    assert config.use_demo_defaults("0.0.0.0", 8099, fresh) == ["CXM_EMAIL_BACKEND",
                                                              "CXM_BASE_URL"]
    loaded = config_env(**fresh)
    assert loaded.email_backend == "file" and loaded.base_url == "http://127.0.0.1:8099"

    configured = {"CXM_SMTP_HOST": "mail.example.com", "CXM_BASE_URL": "https://cx.example.com"}
    assert config.use_demo_defaults("127.0.0.1", 8000, configured) == []
    assert configured == {"CXM_SMTP_HOST": "mail.example.com",
                          "CXM_BASE_URL": "https://cx.example.com"}

    chosen = {"CXM_EMAIL_BACKEND": "smtp"}  # chosen explicitly: kept
    assert config.use_demo_defaults("::1", 8000, chosen) == ["CXM_BASE_URL"]
    assert chosen == {"CXM_EMAIL_BACKEND": "smtp", "CXM_BASE_URL": "http://[::1]:8000"}


def test_settings_wire_the_file_backend(tmp_path: Path) -> None:
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.EMAIL_BACKEND); print(s.EMAIL_FILE_PATH)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "CXM_"))}
    env.update(CXM_DATA_DIR=str(tmp_path), CXM_EMAIL_BACKEND="file",
               DJANGO_SETTINGS_MODULE="cxm.settings")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["django.core.mail.backends.filebased.EmailBackend",
                                   str(tmp_path / "outbox")]
    assert (tmp_path / "outbox").stat().st_mode & 0o777 == 0o700
