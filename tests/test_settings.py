"""Production settings refuse the embedded mode's insecure defaults; the embedded mode starts
without warnings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAFE = {
    "DEBUG": "false",
    "SECRET_KEY": "kX9-vQ2_pL7mZ4rT8wY1nB6cH3jF0sD5gA2eU7iO4yK9xW1qE6",
    "REDIS_URL": "redis://redis.example.test:6379/0",
    "CELERY_EAGER": "",
    "ALLOWED_HOSTS": "ledger.example.test",
    "DATABASE_URL": "postgres://u:p@db.example.test:5432/labledger",
    "AUDIT_SIGNING_KEY_FILE": "/run/secrets/audit-signing-key.pem",
    "AUDIT_CHECKPOINT_FILE": "/mnt/audit/checkpoints.jsonl",
    "AUDIT_SIGNING_KEY": "",
    "AUDIT_CHECKPOINT_STORAGE": "",
    "ARTIFACT_STORAGE": "",
    "AWS_STORAGE_BUCKET_NAME": "",
}


def _import_production(code: str = "print(settings.DEBUG)", **overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SAFE}
    env.update({k: v for k, v in {**SAFE, **overrides}.items() if v is not None})
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    code = f"import django; django.setup(); from django.conf import settings; {code}"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_production_settings_start_with_safe_values():
    result = _import_production()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "true"}, "DEBUG must be off in production"),
        ({"SECRET_KEY": "embedded-mode-development-key-not-for-production"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        # Django's own definition of weak (security.W009): short, few distinct characters, or a
        # key `startproject` generated for development.
        ({"SECRET_KEY": "kX9-vQ2_pL7mZ4rT8wY1nB6cH3jF0sD5gA2eU7iO4yK9xW1q"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "abcd" * 20}, "SECRET_KEY is too weak for production: it needs at least 50"),
        (
            {"SECRET_KEY": "django-insecure-" + "kX9-vQ2_pL7mZ4rT8wY1nB6cH3jF0sD5gA2eU7i"},
            "SECRET_KEY is too weak",
        ),
        ({"REDIS_URL": ""}, "REDIS_URL must be set in production"),
        ({"CELERY_EAGER": "true"}, "CELERY_EAGER must be off in production"),
        (
            {"ARTIFACT_STORAGE": "s3"},
            "ARTIFACT_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (the artifact bucket).",
        ),
        ({"ARTIFACT_STORAGE": "ftp"}, "ARTIFACT_STORAGE='ftp' must be 'filesystem' or 's3'."),
        ({"DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "DATABASE_URL must point at PostgreSQL in production"),
        (
            {"AUDIT_SIGNING_KEY_FILE": ""},
            "Set AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE (an Ed25519 private key) in production",
        ),
        (
            {"AUDIT_CHECKPOINT_FILE": ""},
            "Set AUDIT_CHECKPOINT_FILE (a path on another disk) or AUDIT_CHECKPOINT_STORAGE in production",
        ),
    ],
)
def test_production_settings_refuse_insecure_defaults(overrides, message):
    result = _import_production(**overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_booleans_are_parsed_strictly():
    result = _import_production(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean: use true/false, yes/no, on/off or 1/0." in result.stderr


def test_artifact_storage_s3_selects_the_bucket_storage_from_aws_variables():
    result = _import_production(
        ARTIFACT_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="labledger-artifacts",
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        AWS_S3_ADDRESSING_STYLE="path",
        code="print(settings.STORAGES['default'])",
    )

    assert result.returncode == 0, result.stderr
    assert "'BACKEND': 'config.storage.ArtifactS3Storage'" in result.stdout
    assert "'bucket_name': 'labledger-artifacts'" in result.stdout
    assert "'endpoint_url': 'http://minio:9000'" in result.stdout
    assert "'file_overwrite': False" in result.stdout


def _run_embedded(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`args` run with the embedded mode's settings: SQLite under `tmp_path`, tasks in-process."""
    services = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_EAGER", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in services}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", LABLEDGER_VAR_DIR=str(tmp_path))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_embedded_database_passes_the_system_checks_without_a_warning(tmp_path):
    """`make run` migrates the SQLite file first: its output should not open with a warning
    about the PostgreSQL-only part of an index that SQLite rightly leaves out."""
    result = _run_embedded(tmp_path, "manage.py", "check", "--database", "default", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "identified no issues" in result.stdout


def test_an_eager_task_opens_its_broker_connection_without_a_warning(tmp_path):
    """`make run` seeds the demo with tasks run in-process, whose broker connection kombu opened
    with "No hostname was supplied" in the middle of the seeding's output."""
    code = (
        "import django; django.setup(); from config.celery import app\n"
        "with app.producer_or_acquire(None) as producer: print(producer.connection.hostname)"
    )
    result = _run_embedded(tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "localhost"
    assert "hostname" not in result.stderr.lower()
