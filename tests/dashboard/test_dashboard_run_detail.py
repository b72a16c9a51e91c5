"""Run detail: params, tags, datasets, context, artifacts and the chart configuration."""

from __future__ import annotations

import io
import json
import re
from html import unescape

import pytest
from django.urls import reverse

from tracker.services import DatasetSpec, create_logged_model, delete_run, start_run, store_artifact

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
    assert f'<a href="{url}" download class="mono">model/weights.bin</a>' in content
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
    assert charts[1]["seriesUrl"] == "/charts/series.json"
    assert charts[1]["runId"] == detailed_run.uuid
    assert charts[0]["runName"] == "baseline"
    assert '<script src="/static/plotly/plotly.min.js" defer></script>' in content
    assert '<script src="/static/js/chart_common.js" defer></script>' in content
    assert '<script src="/static/js/run_chart.js" defer></script>' in content
    live = re.search(r'<script id="run-live-config" type="application/json">(.*?)</script>', content)
    assert json.loads(live.group(1)) == {"running": False, "keysPerRequest": 20}  # a finished run
    # No inline script: the only <script>s without src are the JSON data blocks.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", content) == [
        '<script id="run-chart-config" type="application/json">',
        '<script id="run-live-config" type="application/json">',
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


def test_text_artifacts_show_their_first_lines_escaped_and_images_inline(
    viewer_client, make_experiment, make_run
):
    lines = "\n".join(f"line {i} {HOSTILE}" for i in range(30)).encode()
    run = make_run(
        make_experiment(),
        "previews",
        artifacts={
            "config.yaml": b"lr: 0.01\nepochs: 3\n",
            "metrics.csv": b"step,loss\n0,0.9\n",
            "log.txt": lines,
            "plot.png": b"\x89PNG\r\n\x1a\nnot really",
            "drawing.svg": b"<svg onload=alert(1)></svg>",
            "weights.bin": b"\x00\x01",
        },
    )
    content = viewer_client.get(reverse("dashboard:run-detail", args=[run.uuid])).content.decode()
    assert '<pre class="artifact-text">lr: 0.01\nepochs: 3</pre>' in content
    assert '<pre class="artifact-text">step,loss\n0,0.9</pre>' in content
    log = re.search(r'<pre class="artifact-text">(line 0.*?)</pre>', content, re.DOTALL).group(1)
    assert log.splitlines()[-1] == "…"
    assert len(log.splitlines()) == 21  # twenty lines, then the ellipsis
    assert f"line 19 {ESCAPED}" in log and "line 20" not in log
    image = reverse("dashboard:artifact-download", args=[run.uuid, "plot.png"])
    assert f'<img class="artifact-image" src="{image}?inline=1" alt="plot.png" loading="lazy">' in content
    assert "drawing.svg?inline=1" not in content
    assert "<svg onload" not in content


def test_an_image_is_served_inline_only_when_asked_and_never_as_svg(viewer_client, make_experiment, make_run):
    run = make_run(make_experiment(), "img", artifacts={"plot.png": b"png-bytes", "x.svg": b"<svg/>"})
    png = viewer_client.get(
        reverse("dashboard:artifact-download", args=[run.uuid, "plot.png"]), {"inline": "1"}
    )
    assert png["Content-Type"] == "image/png"
    assert png["Content-Disposition"] == 'inline; filename="plot.png"'
    assert png["Content-Security-Policy"] == "default-src 'none'"
    svg = viewer_client.get(reverse("dashboard:artifact-download", args=[run.uuid, "x.svg"]), {"inline": "1"})
    assert svg["Content-Disposition"] == 'attachment; filename="x.svg"'


def test_a_failed_runs_reason_is_shown_at_the_top(viewer_client, make_experiment, make_run, contributor):
    from tracker.services import finish_run

    run = make_run(
        make_experiment(), "broken", tags={"failure_reason": f"CUDA out of memory {HOSTILE}"}, finished=False
    )
    finish_run(actor=contributor, run=run, status="FAILED")
    content = viewer_client.get(reverse("dashboard:run-detail", args=[run.uuid])).content.decode()
    top = content.index('id="failure-reason"')
    assert top < content.index("<h2>Metrics</h2>")
    assert f'<pre class="wrap">CUDA out of memory {ESCAPED}</pre>' in content


def test_a_failed_run_without_a_reason_says_none_was_recorded(
    viewer_client, make_experiment, make_run, contributor
):
    from tracker.services import finish_run

    run = finish_run(
        actor=contributor, run=make_run(make_experiment(), "broken", finished=False), status="FAILED"
    )
    content = viewer_client.get(reverse("dashboard:run-detail", args=[run.uuid])).content.decode()
    assert "No reason was recorded" in content


def test_a_finished_run_shows_no_failure_box(viewer_client, detailed_run):
    content = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid])).content.decode()
    assert 'id="failure-reason"' not in content


def _children_and_models(run, contributor, count: int) -> None:
    """`count` child runs and `count` logged models, each model with two files."""
    for index in range(count):
        start_run(actor=contributor, experiment=run.experiment, name=f"fold-{index}", parent=run)
        model = create_logged_model(
            actor=contributor, experiment=run.experiment, name=f"m{index}", source_run=run
        )
        for path in ("MLmodel", "model.pkl"):
            store_artifact(actor=contributor, owner=model, path=path, content=io.BytesIO(b"x" * (index + 1)))


@pytest.mark.parametrize("count", [1, 4])
def test_the_run_detail_page_has_a_query_budget(
    viewer_client, detailed_run, contributor, count, django_assert_max_num_queries
):
    """The same number of queries however many children, logged models and files the run has."""
    _children_and_models(detailed_run, contributor, count)
    with django_assert_max_num_queries(15):
        assert viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid])).status_code == 200


def test_a_parent_lists_its_children_and_links_them_for_comparison(viewer_client, detailed_run, contributor):
    _children_and_models(detailed_run, contributor, 2)
    hidden = start_run(
        actor=contributor, experiment=detailed_run.experiment, name="gone", parent=detailed_run
    )
    delete_run(actor=contributor, run=hidden)
    page = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid])).content.decode()
    section = page[page.index('id="child-runs"') : page.index("</section>", page.index('id="child-runs"'))]
    assert 'Child runs <span class="muted">(2)</span>' in section
    assert "fold-0" in section and "fold-1" in section and "gone" not in section
    children = sorted(run.uuid for run in detailed_run.children.filter(name__startswith="fold"))
    assert all(f"runs={uuid}" in section for uuid in children)
    assert f"?filter=tags.mlflow.parentRunId%20%3D%20%27{detailed_run.uuid}%27" in section
    child_page = viewer_client.get(reverse("dashboard:run-detail", args=[children[0]])).content.decode()
    assert 'id="child-runs"' not in child_page and "Parent run" in child_page


def test_the_models_a_run_logged_are_listed_with_their_files(viewer_client, detailed_run, contributor):
    _children_and_models(detailed_run, contributor, 1)
    model = detailed_run.logged_models.get()
    page = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid])).content.decode()
    assert 'id="logged-models"' in page and model.model_id in page
    url = reverse(
        "dashboard:logged-model-artifact-download", args=[detailed_run.uuid, model.model_id, "model.pkl"]
    )
    assert f'href="{url}"' in page
    response = viewer_client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"x"
    assert response["Content-Disposition"].startswith("attachment")
    other = make_other_run(detailed_run, contributor)
    wrong_run = reverse(
        "dashboard:logged-model-artifact-download", args=[other.uuid, model.model_id, "model.pkl"]
    )
    assert viewer_client.get(wrong_run).status_code == 404  # the model is not that run's


def make_other_run(run, contributor):
    return start_run(actor=contributor, experiment=run.experiment, name="other")


# Edits from the page: the same services the APIs use, contributors and up, CSRF.


@pytest.fixture
def contributor_client(client, contributor):
    client.force_login(contributor)
    return client


def edit_url(run, action: str) -> str:
    return reverse("dashboard:run-edit", args=[run.uuid, action])


def test_a_contributor_renames_a_run_and_the_audit_log_records_it(contributor_client, detailed_run):
    from audit.models import AuditEvent

    response = contributor_client.post(
        edit_url(detailed_run, "rename"), {"name": "  better name "}, follow=True
    )
    assert response.redirect_chain == [(reverse("dashboard:run-detail", args=[detailed_run.uuid]), 302)]
    assert "Run renamed." in response.content.decode()
    detailed_run.refresh_from_db()
    assert detailed_run.name == "better name"
    event = AuditEvent.objects.filter(action="run.updated").latest("sequence")
    assert (event.before["name"], event.after["name"]) == ("baseline", "better name")


def test_the_description_is_mlflows_note_tag(contributor_client, detailed_run):
    contributor_client.post(edit_url(detailed_run, "note"), {"note": f"Tried {HOSTILE}"})
    assert detailed_run.tags.get(key="mlflow.note.content").value == f"Tried {HOSTILE}"
    content = contributor_client.get(
        reverse("dashboard:run-detail", args=[detailed_run.uuid])
    ).content.decode()
    assert f'<p class="wrap note-text">Tried {ESCAPED}</p>' in content


def test_tags_are_set_and_removed_from_the_page(contributor_client, detailed_run):
    contributor_client.post(edit_url(detailed_run, "tag"), {"key": "stage", "value": "candidate"})
    assert detailed_run.tags.get(key="stage").value == "candidate"
    contributor_client.post(edit_url(detailed_run, "untag"), {"key": "stage"})
    assert not detailed_run.tags.filter(key="stage").exists()


def test_a_bad_tag_key_is_a_message_naming_the_field_and_nothing_changes(contributor_client, detailed_run):
    response = contributor_client.post(
        edit_url(detailed_run, "tag"), {"key": "bad key!", "value": "x"}, follow=True
    )
    message = (
        "key: &#x27;bad key!&#x27; may only contain letters, digits, underscores, dashes, periods, spaces"
    )
    assert message in response.content.decode()
    assert not detailed_run.tags.filter(key="bad key!").exists()


def test_deleting_and_restoring_a_run_from_its_page(contributor_client, detailed_run):
    contributor_client.post(edit_url(detailed_run, "delete"))
    detailed_run.refresh_from_db()
    assert detailed_run.lifecycle == "deleted"
    content = contributor_client.get(
        reverse("dashboard:run-detail", args=[detailed_run.uuid])
    ).content.decode()
    assert "This run is deleted" in content and "Restore run" in content
    contributor_client.post(edit_url(detailed_run, "restore"))
    detailed_run.refresh_from_db()
    assert detailed_run.lifecycle == "active"


def test_a_viewer_sees_no_edit_controls_and_cannot_post_one(viewer_client, detailed_run):
    content = viewer_client.get(reverse("dashboard:run-detail", args=[detailed_run.uuid])).content.decode()
    assert "Edit run" not in content
    response = viewer_client.post(edit_url(detailed_run, "rename"), {"name": "hijacked"})
    assert response.status_code == 403
    detailed_run.refresh_from_db()
    assert detailed_run.name == "baseline"


def test_edits_need_a_csrf_token(contributor, detailed_run):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(contributor)
    assert client.post(edit_url(detailed_run, "delete")).status_code == 403
    detailed_run.refresh_from_db()
    assert detailed_run.lifecycle == "active"


def test_an_unknown_edit_action_is_a_404(contributor_client, detailed_run):
    assert contributor_client.post(edit_url(detailed_run, "explode")).status_code == 404


def test_experiments_are_deleted_and_restored_through_the_service(contributor_client, detailed_run):
    experiment = detailed_run.experiment
    url = reverse("dashboard:experiment-edit", args=[experiment.pk, "delete"])
    response = contributor_client.post(url, follow=True)
    assert "Experiment deleted; it can be restored." in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.lifecycle == "deleted"
    contributor_client.post(reverse("dashboard:experiment-edit", args=[experiment.pk, "restore"]))
    experiment.refresh_from_db()
    assert experiment.lifecycle == "active"


def test_an_edit_never_redirects_off_site(contributor_client, detailed_run):
    response = contributor_client.post(
        edit_url(detailed_run, "tag"), {"key": "a", "value": "b", "next": "https://evil.test/"}
    )
    assert response["Location"] == reverse("dashboard:run-detail", args=[detailed_run.uuid])


def test_the_experiment_list_offers_delete_then_restore_to_a_contributor(contributor_client, detailed_run):
    experiment = detailed_run.experiment
    delete = reverse("dashboard:experiment-edit", args=[experiment.pk, "delete"])
    list_url = reverse("dashboard:experiment-list")
    assert f'action="{delete}"' in contributor_client.get(list_url).content.decode()
    contributor_client.post(delete)
    content = contributor_client.get(list_url).content.decode()
    restore = reverse("dashboard:experiment-edit", args=[experiment.pk, "restore"])
    assert "Deleted experiments" in content and f'action="{restore}"' in content
    assert f'{experiment.name} <span class="muted">(1 run)</span>' in content  # the run it took along


def test_a_run_deleted_with_its_experiment_says_so_and_offers_no_restore_of_its_own(
    contributor_client, detailed_run
):
    contributor_client.post(reverse("dashboard:experiment-edit", args=[detailed_run.experiment.pk, "delete"]))
    content = contributor_client.get(
        reverse("dashboard:run-detail", args=[detailed_run.uuid])
    ).content.decode()
    assert "It was deleted with its experiment, and restoring the experiment restores it." in content
    assert edit_url(detailed_run, "restore") not in content


def test_the_default_experiment_offers_no_delete_button_since_it_cannot_be_deleted(
    contributor_client, detailed_run
):
    content = contributor_client.get(reverse("dashboard:experiment-list")).content.decode()
    assert "Default" in content
    assert f'form="experiment-delete-{detailed_run.experiment.pk}"' in content
    assert 'form="experiment-delete-0"' not in content and 'id="experiment-delete-0"' not in content


def test_a_viewer_sees_no_experiment_delete_button(viewer_client, detailed_run):
    content = viewer_client.get(reverse("dashboard:experiment-list")).content.decode()
    assert "experiment-delete-" not in content and "Deleted experiments" not in content


def test_the_run_page_shows_a_datasets_input_tags_beside_it_escaped(viewer_client, make_experiment, make_run):
    tags = (("mlflow.data.context", "training"), ("split", "fold-3"), ("note", HOSTILE))
    run = make_run(
        make_experiment(),
        "tagged-input",
        datasets=[DatasetSpec(name="digits", digest="cd" * 32, context="training", tags=tags)],
    )
    content = viewer_client.get(reverse("dashboard:run-detail", args=[run.uuid])).content.decode()
    assert '<th scope="col">Input tags</th>' in content
    assert '<span class="chip">split=fold-3</span> <span class="chip">note=' + ESCAPED + "</span>" in content
    assert "mlflow.data.context=" not in content  # the context has its own column


def test_a_parent_on_this_server_is_a_link_and_an_unknown_one_plain_text(
    viewer_client, make_experiment, make_run
):
    experiment = make_experiment()
    parent = make_run(experiment, "sweep")
    child = make_run(experiment, "trial", tags={"mlflow.parentRunId": parent.uuid})
    child.parent = parent
    child.save(update_fields=["parent"])
    orphan = make_run(experiment, "orphan", tags={"mlflow.parentRunId": HOSTILE})
    linked = viewer_client.get(reverse("dashboard:run-detail", args=[child.uuid])).content.decode()
    href = reverse("dashboard:run-detail", args=[parent.uuid])
    assert f'<dt>Parent run</dt><dd><a href="{href}">sweep</a></dd>' in linked
    plain = viewer_client.get(reverse("dashboard:run-detail", args=[orphan.uuid])).content.decode()
    shown = f'<dd><span class="mono">{ESCAPED}</span> <span class="muted">(not on this server)</span>'
    assert f"<dt>Parent run</dt>{shown}" in plain


def test_json_holding_a_lone_surrogate_stored_before_it_was_refused_is_shown_escaped():
    """A run's environment could hold one on SQLite before such text was refused; written as
    is, the page could not be encoded and answered 500."""
    from dashboard.templatetags.dashboard_tags import compact_json, pretty_json

    assert compact_json({"k": "ünï \ud800"}) == '{"k": "\\u00fcn\\u00ef \\ud800"}'
    assert pretty_json({"k": "ünï"}) == '{\n  "k": "ünï"\n}'
