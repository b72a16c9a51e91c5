"""Run detail: params, tags, datasets, context, artifacts and the chart configuration."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.urls import reverse

from tracker.services import DatasetSpec

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def detailed_run(make_experiment, make_run):
    experiment = make_experiment("digits-sweep")
    return make_run(
        experiment,
        "baseline",
        params={"lr": "0.001", "epochs": "20"},
        metrics={"loss": [0.9, 0.5, 0.3], "val loss": [1.0, 0.7]},
        tags={"team": "vision"},
        datasets=[
            DatasetSpec(
                name="digits",
                digest="ab" * 32,
                version="2.1",
                context="training",
                source_type="s3",
                source="s3://bucket/digits/train.parquet",
            )
        ],
        artifacts={"model/weights.bin": b"\x00\x01weights\xff", "report.txt": b"accuracy: 0.91\n"},
        code_commit="0123456789abcdef0123456789abcdef01234567",
        source="train.py",
        environment={"python": "3.11.9", "packages": {"torch": "2.3.0"}},
    )


def test_run_detail_shows_params_tags_datasets_and_context(viewer_client, detailed_run):
    response = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid]))
    assert response.status_code == 200
    content = response.content.decode()
    for text in (
        "baseline",
        detailed_run.uuid,
        '<th scope="row">lr</th><td class="wrap">0.001</td>',
        '<th scope="row">team</th><td class="wrap">vision</td>',
        "<td>digits</td>",
        "<td>2.1</td>",
        'title="' + "ab" * 32 + '"',
        "<td>training</td>",
        "s3://bucket/digits/train.parquet",
        "0123456789abcdef0123456789abcdef01234567",
        "train.py",
        "1m 35s",
    ):
        assert text in content, text


def test_the_environment_is_pretty_printed_json(viewer_client, detailed_run):
    content = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid])).content.decode()
    block = re.search(r'<pre class="json">(.*?)</pre>', content, re.DOTALL)
    assert json.loads(unescape(block.group(1))) == {"python": "3.11.9", "packages": {"torch": "2.3.0"}}
    assert "\n  &quot;packages&quot;: {\n    &quot;torch&quot;: &quot;2.3.0&quot;\n  }," in block.group(1)


def test_artifacts_are_listed_with_download_links(viewer_client, detailed_run):
    content = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid])).content.decode()
    url = reverse("dashboard:artifact-download", args=[detailed_run.uuid, "model/weights.bin"])
    assert f'<a href="{url}" download>model/weights.bin</a>' in content
    assert "10\xa0bytes" in content


def test_an_artifact_download_returns_its_bytes_as_an_attachment(viewer_client, detailed_run):
    url = reverse("dashboard:artifact-download", args=[detailed_run.uuid, "model/weights.bin"])
    response = viewer_client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x00\x01weights\xff"
    assert response["Content-Disposition"] == 'attachment; filename="weights.bin"'


def test_a_missing_artifact_is_a_404(viewer_client, detailed_run):
    url = reverse("dashboard:artifact-download", args=[detailed_run.uuid, "nope.txt"])
    assert viewer_client.get(url).status_code == 404


def test_the_page_hands_chart_config_to_js_through_json_script(viewer_client, detailed_run):
    response = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid]))
    content = response.content.decode()
    block = re.search(r'<script id="run-chart-config" type="application/json">(.*?)</script>', content)
    charts = json.loads(block.group(1))
    assert [c["key"] for c in charts] == ["loss", "val loss"]
    assert charts[1]["seriesUrl"] == f"/runs/{detailed_run.uuid}/metrics/val%20loss/series.json"
    assert charts[0]["runName"] == "baseline"
    assert '<script src="/static/plotly/plotly.min.js" defer></script>' in content
    assert '<script src="/static/js/run_chart.js" defer></script>' in content
    # No inline script: the only <script> without src is the JSON data block.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", content) == [
        '<script id="run-chart-config" type="application/json">'
    ]


def test_hostile_text_is_escaped_on_the_detail_page(viewer_client, make_experiment, make_run):
    run = make_run(
        make_experiment(),
        HOSTILE,
        params={"p": HOSTILE},
        tags={"t": HOSTILE},
        metrics={"loss": 1.0},
        datasets=[DatasetSpec(name=HOSTILE, digest="0" * 64, version=HOSTILE, source=HOSTILE)],
        source=HOSTILE,
        environment={"x": HOSTILE},
    )
    content = viewer_client.get(reverse("dashboard:run-detail", args=[run.uuid])).content.decode()
    assert "<script>alert" not in content
    assert ESCAPED in content
    # The JSON block escapes < and > too, so it cannot close its <script> element early.
    block = re.search(r'<script id="run-chart-config" type="application/json">(.*?)</script>', content)
    assert "\\u003Cscript\\u003E" in block.group(1)
    assert json.loads(block.group(1))[0]["runName"] == HOSTILE


def test_a_run_without_metrics_loads_no_chart_code(viewer_client, make_experiment, make_run):
    run = make_run(make_experiment(), "quiet")
    content = viewer_client.get(reverse("dashboard:run-detail", args=[run.uuid])).content.decode()
    assert "No metrics were logged." in content
    assert "plotly.min.js" not in content
