"""The uploads pages: the form, the list per experiment, one upload with its progress, and access."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.factories import ExperimentFactory, RunFactory
from tracker.models import BulkUpload, MetricPoint
from tracker.services.uploads import create_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def contributor_client(client, contributor):
    client.force_login(contributor)
    return client


def stored(actor, run, text: str = "key,step,value\nloss,0,1\n", name: str = "m.csv") -> BulkUpload:
    """An upload whose task has not run yet (its on_commit never fires inside a test transaction)."""
    return create_upload(actor=actor, content=io.BytesIO(text.encode()), file_name=name, run=run).upload


def test_the_form_uploads_a_file_and_leads_to_its_page(
    contributor_client, run, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = contributor_client.post(
            reverse("dashboard:upload-new"),
            {
                "file": SimpleUploadedFile("m.csv", b"key,step,value\nloss,0,1\nloss,1,2\n"),
                "run_id": run.uuid,
            },
        )
    upload = BulkUpload.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:upload-detail", args=[upload.pk])
    assert MetricPoint.objects.filter(run=run).count() == 2
    page = contributor_client.get(response["Location"]).content.decode()
    assert "2 rows, 2 new points" in page


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (
            {"status": "running", "rows_done": 300_000, "bytes_done": 1024, "size_bytes": 4096},
            "300,000 rows, 1.0\xa0KB of 4.0\xa0KB",
        ),
        ({"status": "running", "rows_done": 1, "bytes_done": "size"}, "1 row, all read; storing them…"),
        (
            {"status": "done", "rows_done": 1, "points_inserted": 1, "bytes_done": "size"},
            "1 row, 1 new point",
        ),
        (
            {"status": "done", "rows_done": 12_345, "points_inserted": 12_000, "bytes_done": "size"},
            "12,345 rows, 12,000 new points",
        ),
    ],
    ids=["reading", "storing", "one-row", "thousands"],
)
def test_an_uploads_counts_read_as_numbers_and_its_last_step_says_what_it_does(
    contributor_client, contributor, run, state, shown
):
    upload = stored(contributor, run)
    if state["bytes_done"] == "size":
        state = {**state, "bytes_done": upload.size_bytes}
    BulkUpload.objects.filter(pk=upload.pk).update(**state)
    page = contributor_client.get(reverse("dashboard:upload-detail", args=[upload.pk])).content.decode()
    assert shown in page


def test_the_form_shows_a_bad_run_next_to_the_form_and_stores_nothing(contributor_client):
    response = contributor_client.post(
        reverse("dashboard:upload-new"),
        {"file": SimpleUploadedFile("m.csv", b"key,step,value\n"), "run_id": "x"},
    )
    assert response.status_code == 400
    assert "run_id: run &#x27;x&#x27; does not exist" in response.content.decode()
    assert not BulkUpload.objects.exists()


def test_a_viewer_is_told_uploading_needs_the_contributor_role_and_cannot_upload(viewer_client, run):
    page = viewer_client.get(reverse("dashboard:upload-new")).content.decode()
    assert "Uploading metrics needs the contributor role." in page
    assert 'type="file"' not in page
    response = viewer_client.post(
        reverse("dashboard:upload-new"),
        {"file": SimpleUploadedFile("m.csv", b"key,step,value\n"), "run_id": run.uuid},
    )
    assert response.status_code == 403  # a viewer's write is 403 on every path (docs/api.md)
    assert "Uploading metrics needs the contributor role." in response.content.decode()
    assert not BulkUpload.objects.exists()


def test_a_running_upload_shows_a_progress_bar_and_the_status_json_moves(viewer_client, contributor, run):
    upload = stored(contributor, run)
    BulkUpload.objects.filter(pk=upload.pk).update(status="running", bytes_done=10, rows_done=1)
    page = viewer_client.get(reverse("dashboard:upload-detail", args=[upload.pk])).content.decode()
    assert f'<progress max="{upload.size_bytes}" value="10"' in page
    assert f'"url": "/uploads/{upload.pk}/status.json"' in page
    status = viewer_client.get(reverse("dashboard:upload-status", args=[upload.pk])).json()
    assert (status["status"], status["bytes_done"], status["rows_done"]) == ("running", 10, 1)


def test_a_failed_upload_shows_its_error_with_the_line(viewer_client, contributor, run):
    upload = stored(contributor, run)
    BulkUpload.objects.filter(pk=upload.pk).update(
        status="failed", error_message="line 3, column value: 'abc' is not a number", error_line=3
    )
    page = viewer_client.get(reverse("dashboard:upload-detail", args=[upload.pk])).content.decode()
    assert "line 3, column value: &#x27;abc&#x27; is not a number" in page


def test_the_list_shows_one_experiment_s_uploads_escaped_in_few_queries(
    viewer_client, contributor, run, django_assert_max_num_queries
):
    other_run = RunFactory(experiment=ExperimentFactory(name="other"))
    for index in range(3):
        stored(
            contributor,
            run,
            text=f"key,step,value\nloss,{index},1\n",
            name=f"<img src=x onerror=alert({index})>.csv",
        )
    stored(contributor, other_run, name="elsewhere.csv")
    with django_assert_max_num_queries(8):
        response = viewer_client.get(reverse("dashboard:upload-list"), {"experiment": run.experiment.pk})
    page = response.content.decode()
    assert page.count("&lt;img src=x onerror=alert(") == 3
    assert "<img src=x" not in page
    assert "elsewhere.csv" not in page


def test_the_upload_pages_need_a_role(client, outsider, contributor, run):
    upload = stored(contributor, run)
    client.force_login(outsider)
    for name, args in (
        ("upload-list", []),
        ("upload-new", []),
        ("upload-detail", [upload.pk]),
        ("upload-status", [upload.pk]),
    ):
        assert client.get(reverse(f"dashboard:{name}", args=args)).status_code == 403, name


def test_the_experiment_list_run_page_and_upload_list_link_to_the_form_for_contributors(
    viewer_client, contributor, run
):
    client = Client()  # viewer_client is the test's `client`
    client.force_login(contributor)
    pages = {
        "experiments": reverse("dashboard:experiment-list"),
        "run": reverse("dashboard:run-detail", args=[run.uuid]),
        "uploads": reverse("dashboard:upload-list"),
    }
    form = reverse("dashboard:upload-new")
    for name, url in pages.items():
        assert f'href="{form}' in client.get(url).content.decode(), name
        assert f'href="{form}' not in viewer_client.get(url).content.decode(), name  # a viewer cannot upload
    assert f"{form}?run={run.uuid}" in client.get(pages["run"]).content.decode()
    assert reverse("dashboard:upload-list") in viewer_client.get(pages["experiments"]).content.decode()


@pytest.mark.parametrize("name", ["upload-list", "upload-new"])
def test_an_experiment_in_the_address_that_is_no_id_is_a_400_naming_the_field(viewer_client, name):
    response = viewer_client.get(reverse(f"dashboard:{name}"), {"experiment": "abc"})

    assert response.status_code == 400
    assert "experiment_id: &#x27;abc&#x27; is not an experiment id" in response.content.decode()
    assert "<h1>Bad request</h1>" in response.content.decode()
