"""Files logged with the mlflow client come back byte for byte, through mlflow-artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import plotly.graph_objects as go
import pytest

from tracker.models import Artifact

pytestmark = pytest.mark.django_db(transaction=True)


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_logged_artifacts_download_byte_for_byte(client, tmp_path):
    source = tmp_path / "source"
    (source / "plots" / "deep").mkdir(parents=True)
    (source / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (source / "plots" / "curve.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    (source / "plots" / "deep" / "note.txt").write_text("näive ünïcode ✓")
    single = tmp_path / "summary.md"
    single.write_text("# results\n")

    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as active:
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(source), artifact_path="bundle")
        mlflow.log_dict({"lr": 0.01, "layers": [64, 64]}, "config/params.json")
        mlflow.log_text("trained on spiral v2", "notes/readme.txt")
        figure = go.Figure(go.Scatter(x=[0, 1, 2], y=[1.0, 0.5, 0.3], name="loss"))
        mlflow.log_figure(figure, "figures/loss.html")
    run_id = active.info.run_id

    listed = {f.path for f in client.list_artifacts(run_id)}
    assert listed == {"summary.md", "bundle", "config", "notes", "figures"}
    assert {(f.path, f.is_dir) for f in client.list_artifacts(run_id, "bundle")} == {
        ("bundle/weights.bin", False),
        ("bundle/plots", True),
    }

    downloaded = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "out")))
    files = _files_under(downloaded)
    assert files["summary.md"] == single.read_bytes()
    for name, content in _files_under(source).items():
        assert files[f"bundle/{name}"] == content
    assert json.loads(files["config/params.json"]) == {"lr": 0.01, "layers": [64, 64]}
    assert files["notes/readme.txt"] == b"trained on spiral v2"
    assert b"plotly" in files["figures/loss.html"].lower()
    stored = {a.path: a.size for a in Artifact.objects.filter(run__uuid=run_id)}
    assert stored == {name: len(content) for name, content in files.items()}


def test_download_of_a_single_file(client, tmp_path):
    mlflow.set_experiment("single-file")
    with mlflow.start_run() as active:
        mlflow.log_text("hello", "greeting.txt")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{active.info.artifact_uri}/greeting.txt", dst_path=str(tmp_path)
    )
    assert Path(local).read_text() == "hello"
