"""The test suite leaves no folders behind in the system's temporary directory (issue #11 §6).

Test settings give every process that loads them (pytest, each xdist worker, a subprocess) its
own artifact and audit-key folders; each is removed when its process exits. These tests run
such processes with TMPDIR pointed at a folder of their own and look at what is left there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD_TEST = """
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def test_stores_an_artifact_file():
    name = default_storage.save("runs/0123/artifacts/model/weights.bin", ContentFile(b"weights"))
    assert (settings.ARTIFACT_ROOT / name).read_bytes() == b"weights"
    assert settings.AUDIT_SIGNING_KEY_FILE.parent.is_dir()
"""


def _environment(tmp_dir: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp_dir), "DJANGO_SETTINGS_MODULE": "config.settings.test"}


def _left_behind(tmp_dir: Path) -> list[str]:
    return sorted(path.name for path in tmp_dir.iterdir() if path.name.startswith("labledger-test-"))


def test_a_test_session_with_workers_removes_its_artifact_and_audit_folders(tmp_path):
    tmp_dir, tests = tmp_path / "tmp", tmp_path / "tests"
    tmp_dir.mkdir()
    tests.mkdir()
    (tests / "test_child.py").write_text(CHILD_TEST)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests), "-n", "2", "-q", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "--basetemp", str(tmp_path / "base")],
        cwd=ROOT,
        env=_environment(tmp_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "1 passed" in completed.stdout
    assert _left_behind(tmp_dir) == []


def test_a_subprocess_that_loads_the_test_settings_removes_its_folders(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; print(settings.ARTIFACT_ROOT)"
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert Path(completed.stdout.strip()).parent == tmp_path  # it did use this temporary directory
    assert _left_behind(tmp_path) == []
