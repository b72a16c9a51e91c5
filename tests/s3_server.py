"""An S3 API server for tests: moto's server mode, started on a free port for the session.

moto's in-process mock patches botocore; the server mode is a real HTTP endpoint, so the
artifact storage talks to it over the network exactly as it talks to MinIO or AWS (signed
requests, ranged GETs, multipart uploads). Use `s3_artifact_storage`: it points the default
storage at a fresh, empty bucket for the test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

CREDENTIALS = {"aws_access_key_id": "labledger-test", "aws_secret_access_key": "labledger-test-secret"}
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _moto_server_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("moto_server")
    found = str(beside_python) if beside_python.exists() else shutil.which("moto_server")
    if found is None:
        pytest.fail("moto_server is missing: pip install -r requirements-dev.txt (moto[server])")
    return [found]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server that lives as long as the test session."""
    port = _free_port()
    server = subprocess.Popen(
        [*_moto_server_command(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                pytest.fail(f"moto_server exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not answer within 30 s")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A new, empty bucket on the moto server (a name per test, so tests never share objects)."""
    name = f"labledger-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **CREDENTIALS).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_client(s3_endpoint):
    """A plain boto3 client, to look at what the storage wrote."""
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **CREDENTIALS)


@pytest.fixture
def s3_artifact_storage(settings, s3_endpoint, s3_bucket) -> str:
    """Artifacts of this test go to the bucket, through the storage ARTIFACT_STORAGE=s3 selects;
    the options come from the same function the settings use, fed the same AWS_* variables."""
    import environ

    from config.storage import s3_storage_options

    variables = {
        "AWS_STORAGE_BUCKET_NAME": s3_bucket,
        "AWS_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_S3_ADDRESSING_STYLE": "path",
    }
    env = environ.Env()
    env.ENVIRON = variables  # read these, not the process environment
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "config.storage.ArtifactS3Storage", "OPTIONS": s3_storage_options(env)},
    }
    return s3_bucket
