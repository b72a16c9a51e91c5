"""What a new team reads and runs to deploy (issue #11 §5 and §6): docker-compose stores artifacts
in its S3-compatible service, docs/operations.md says how to use a real bucket instead, and the
README says how to serve on another port, as the Makefile does it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_web_and_worker_store_artifacts_in_the_minio_bucket():
    services = _compose()["services"]
    assert "minio" in services and "minio-init" in services  # the service, and its bucket made once
    for name in ("web", "worker"):
        environment = services[name]["environment"]
        assert environment["ARTIFACT_STORAGE"].startswith("${ARTIFACT_STORAGE:-s3}"), name
        assert "http://minio:9000" in environment["AWS_S3_ENDPOINT_URL"], name
        assert "AWS_STORAGE_BUCKET_NAME" in environment, name


def test_operations_guide_says_how_to_point_at_a_real_bucket():
    guide = (ROOT / "docs" / "operations.md").read_text()
    section = guide[guide.index("## Artifact storage") :]
    for variable in ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"):
        assert variable in section, variable


def test_readme_says_how_to_serve_on_another_port_as_the_makefile_does():
    readme = (ROOT / "README.md").read_text()
    assert "make run PORT=8001" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^PORT :?= 8000$", makefile, re.MULTILINE)
    run_recipe = makefile[makefile.index("\nrun:") :].split("\n\n", 1)[0]
    assert "$(PORT)" in run_recipe
