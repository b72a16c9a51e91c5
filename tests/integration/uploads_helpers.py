"""Helpers for the bulk-upload integration tests: metric files, worker processes, a private Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from django.conf import settings

from tests.conftest import skip_or_fail
from tests.integration.conftest import ROOT, _test_database_url


def write_metric_csv(path: Path, *, rows: int, run_id: str = "", broken_row: int | None = None) -> Path:
    """`rows` data rows of key,step,value(,run_id) with distinct points, written in blocks."""
    keys = np.array(["train/loss", "train/acc", "val/loss", "val/acc"])
    with path.open("w") as out:
        out.write("run_id,key,step,value,timestamp\n" if run_id else "key,step,value,timestamp\n")
        prefix = f"{run_id}," if run_id else ""
        for start in range(0, rows, 100_000):
            index = np.arange(start, min(start + 100_000, rows))
            values = np.sin(index / 1000.0)
            lines = [
                f"{prefix}{keys[i % 4]},{i // 4},{value:.6f},{1_700_000_000_000 + i}\n"
                for i, value in zip(index.tolist(), values.tolist(), strict=True)
            ]
            if broken_row is not None and start <= broken_row - 1 < start + len(lines):
                lines[broken_row - 1 - start] = f"{prefix}train/loss,{broken_row},not-a-number,1\n"
            out.writelines(lines)
    return path


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class Worker:
    """A real `celery worker` process (solo pool: the task runs in the process we measure)."""

    def __init__(self, *, broker_url: str, beat: bool = False, extra_env: dict[str, str] | None = None):
        self.log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": broker_url,
            "CELERY_EAGER": "false",
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT),  # the files the test process stored
            "DEFAULT_PERMISSION": settings.DEFAULT_PERMISSION,  # the worker decides as the server does
            **(extra_env or {}),
        }
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                   "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle",
                   "--without-heartbeat"]  # fmt: skip
        if beat:
            self.schedule = tempfile.mkdtemp(prefix="celery-beat-")
            command += ["--beat", "--schedule", f"{self.schedule}/schedule"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return Path(self.log.name).read_text()[-6000:]

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, nothing cleaned up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        # An embedded beat runs in a child process of its own; it must not outlive the test.
        subprocess.run(["pkill", "-KILL", "-P", str(self.process.pid)], check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A throwaway redis-server for tests that restart it (never the shared one)."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            skip_or_fail("these tests start their own redis-server, which is not installed")
        self.port = _free_port()
        self.folder = tempfile.mkdtemp(prefix="redis-")
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # Like the deployment's Redis: nothing persisted, so a restart forgets every message.
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.folder],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _reset_connections(app) -> None:
    # The pools were made for the previous broker URL (left open: other producers may hold them).
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def broker(url: str) -> Iterator[None]:
    """Send this process's tasks to `url` (not eagerly) for the duration of the block."""
    from config.celery import app

    previous = app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = url
    _reset_connections(app)
    try:
        yield
    finally:
        _reset_connections(app)
        app.conf.broker_url = previous
        app.conf.task_always_eager = True
