"""Integration fixtures: the real PostgreSQL, Redis and a Celery worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        skip_or_fail("this test needs Redis: set REDIS_URL=redis://…")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        skip_or_fail(f"Redis at {url} does not answer: {error}")
    return url


def _test_database_url() -> str:
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"


# Each test process (pytest-xdist worker) has a test database of its own, so its Celery worker
# must read a queue of its own too: on a shared one, a worker ran the other process's tasks against
# the wrong database, and that test waited in vain.
TASK_QUEUE = f"tests-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def start_worker(redis_url: str, *, beat_schedule: Path | None = None, **env_extra: str) -> subprocess.Popen:
    """A real `celery worker` on the test database, consuming this test process's queue; with
    `beat_schedule`, it also runs beat's schedule (as `make run`'s worker does)."""
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": redis_url,
        "CELERY_QUEUE": TASK_QUEUE,
        "CELERY_EAGER": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        # The test's audit key and checkpoint file, never the checkout's var/audit: checkpoints
        # another database left there would make this test database's chain look cut.
        "AUDIT_SIGNING_KEY_FILE": str(settings.AUDIT_SIGNING_KEY_FILE),
        "AUDIT_CHECKPOINT_FILE": settings.AUDIT_CHECKPOINT_FILE,
        "DEFAULT_PERMISSION": settings.DEFAULT_PERMISSION,  # the worker decides as the server does
        "WEBHOOK_ALLOWED_NETWORKS": ",".join(settings.WEBHOOK_ALLOWED_NETWORKS),  # and sends where it does
        **env_extra,
    }
    beat = ["--beat", "--schedule", str(beat_schedule)] if beat_schedule else []
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--concurrency=1",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", *beat],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def stop_worker(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.fixture
def celery_worker_process(postgres, redis_url):
    """A real `celery worker` on the test database, consuming this test process's queue."""
    worker = start_worker(redis_url)
    try:
        yield worker
    finally:
        stop_worker(worker)


@pytest.fixture
def real_broker(redis_url):
    """Send tasks to Redis instead of running them in-process, for this test only."""
    from config.celery import app

    # settings.CELERY_BROKER_URL already comes from REDIS_URL; only eager mode is switched off.
    assert app.conf.broker_url == settings.CELERY_BROKER_URL == redis_url
    app.conf.task_always_eager = False
    app.conf.task_default_queue = TASK_QUEUE
    yield app
    app.conf.task_always_eager = True
    app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return None
