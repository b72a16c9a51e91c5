"""Test settings: the embedded defaults plus a fast hasher and a throwaway artifact root."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _throwaway_folder(prefix: str) -> Path:
    """A temporary folder for this process (pytest, each xdist worker, any subprocess that loads
    these settings), removed when the process exits; a forked child never removes its parent's."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
    return folder


ARTIFACT_ROOT = _throwaway_folder("labledger-test-artifacts-")
# A folder whatever ARTIFACT_STORAGE says: the S3 tests point the storage at their own bucket.
STORAGES = {
    **STORAGES,
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT)},
    },
}

# Each test session signs checkpoints with its own throwaway key. No checkpoint file by default:
# the database is rolled back after each test but a file would not be, and checkpoints left by
# one test would make the next one's chain look cut. Tests of the file point it at tmp_path.
AUDIT_SIGNING_KEY_FILE = _throwaway_folder("labledger-test-audit-") / "signing-key.pem"
AUDIT_CHECKPOINT_FILE = ""

# Tests run tasks in-process unless a test starts a real worker and turns this off itself.
CELERY_TASK_ALWAYS_EAGER = True
# Serve static files from the finders: tests never run collectstatic.
WHITENOISE_AUTOREFRESH = True
# The live server answers each request on a new thread; persistent connections would outlive
# those threads and keep the test database busy when pytest tries to drop it.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Tests written before per-object permissions expect every contributor to change everything;
# tests of permissions set their own default (tests/permissions).
DEFAULT_PERMISSION = "MANAGE"
# The webhook tests' receivers listen on this machine (tests/webhook_receiver.py); the tests of
# the address rule set their own list.
WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
