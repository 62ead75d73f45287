"""Durability: kill -9 the real server mid-load; every acknowledged message survives, and
retrying every batch after the restart stores each message exactly once."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, process_env

pytestmark = pytest.mark.slow

BATCHES = 60
PER_BATCH = 50


@pytest.fixture
def server_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a separate cxm process with its own fresh database."""
    with process_env(tmp_path, "cxm_durability") as env:
        yield env


def cxm(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cxm.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Server:
    def __init__(self, env: dict[str, str], port: int, log: Path):
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cxm.cli", "serve", "--host", "127.0.0.1", "--port",
                 str(self.port), "--workers", "2", "--threads", "4"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                            timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not become healthy: " + self.log.read_text()[-3000:])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def make_batches() -> list[list[dict[str, Any]]]:
    batches = []
    for b in range(BATCHES):
        batch = []
        for i in range(PER_BATCH):
            n = b * PER_BATCH + i
            batch.append({"type": "track", "event": "Durable", "messageId": f"dur-{b}-{i}",
                          "userId": f"user-{n % 37}", "anonymousId": f"anon-{n % 53}",
                          "properties": {"n": n}})
        batches.append(batch)
    return batches


def send(port: int, key: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/batch", data=json.dumps({"batch": batch}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return dict(json.loads(response.read()))


COUNT_SCRIPT = """
import json, django
django.setup()
from django.db.models import Sum
from cxm.ingest.models import Event
from cxm.identity.models import Profile
from tests.helpers import process_env
ids = list(Event.objects.values_list("message_id", flat=True))
print(json.dumps({
    "ids": ids,
    "unassigned": Event.objects.filter(profile_id__isnull=True).count(),
    "profile_total": Profile.objects.filter(merged_into__isnull=True)
        .aggregate(s=Sum("event_count"))["s"] or 0,
}))
"""


def test_acknowledged_messages_survive_kill_9_and_retries_store_nothing_twice(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    started = time.monotonic()
    key = json.loads(cxm(server_env, "keys", "create", "--name", "durability", "--scope",
                         "ingest", "--json"))["key"]
    server = Server(server_env, free_port(), tmp_path / "server.log")
    batches = make_batches()
    acked: list[int] = []
    failed: list[int] = []
    killed = threading.Event()

    def client() -> None:
        for index, batch in enumerate(batches):
            try:
                send(server.port, key, batch)
                acked.append(index)
            except (OSError, AssertionError, ValueError):
                failed.append(index)
                if killed.is_set():
                    return

    try:
        server.start()
        thread = threading.Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 15
        while len(acked) < 10 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)
        server.kill()  # SIGKILL to the whole process group, mid-load
        killed.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert len(acked) >= 10, "the server acknowledged too little before the kill"
        assert len(acked) < BATCHES, "the load finished before the kill; nothing was tested"

        server.start()
        accepted_on_retry = 0
        for batch in batches:  # the client retries everything it sent or meant to send
            result = send(server.port, key, batch)
            assert result["rejected"] == []
            assert 0 <= result["accepted"] <= PER_BATCH
            accepted_on_retry += result["accepted"]
        # every acknowledged batch was already stored: retrying it added nothing
        for index in acked:
            assert send(server.port, key, batches[index])["accepted"] == 0
    finally:
        server.kill()

    counts = json.loads(subprocess.run(
        [sys.executable, "-c", COUNT_SCRIPT], env=server_env, capture_output=True, text=True,
        timeout=60, check=True).stdout)
    stored = counts["ids"]
    assert len(stored) == len(set(stored)) == BATCHES * PER_BATCH
    acked_ids = {m["messageId"] for index in acked for m in batches[index]}
    assert acked_ids <= set(stored)
    assert accepted_on_retry <= BATCHES * PER_BATCH - len(acked_ids)
    assert counts["unassigned"] == 0
    assert counts["profile_total"] == BATCHES * PER_BATCH  # no event counted twice
    assert time.monotonic() - started < 60
