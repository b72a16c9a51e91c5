"""The uploads pages in a real browser: the progress bar moves without a reload, then the result shows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tracker.models import BulkUpload
from tracker.services.uploads import create_upload, ingest_upload

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"


def test_a_running_upload_s_bar_moves_by_polling_and_the_page_shows_the_counts_when_done(
    login, viewer, contributor, run, live_server, recorded
):
    content = b"key,step,value\n" + b"".join(f"loss,{step},{step / 10}\n".encode() for step in range(1000))
    # The task queued on commit runs eagerly inside create_upload; reset it to "running" by hand
    # so the page can be watched while this test moves its progress as a worker would.
    upload = create_upload(
        actor=contributor, content=io.BytesIO(content), file_name="loss.csv", run=run
    ).upload
    BulkUpload.objects.filter(pk=upload.pk).update(status="running", bytes_done=1000, rows_done=100)
    page = login(viewer)
    page.goto(f"{live_server.url}/uploads/{upload.pk}/")
    bar = page.locator("progress")
    assert bar.get_attribute("value") == "1000"
    page.evaluate("window.reloaded = false")  # a reload would drop this marker
    BulkUpload.objects.filter(pk=upload.pk).update(bytes_done=upload.size_bytes // 2, rows_done=500)
    page.wait_for_function(f"() => document.querySelector('progress').value == {upload.size_bytes // 2}")
    assert page.evaluate("window.reloaded") is False
    assert "500 rows" in page.locator("[data-field=counts]").text_content()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "upload-running.png"), full_page=True)

    BulkUpload.objects.filter(pk=upload.pk).update(status="done", rows_done=1000, points_inserted=1000)
    page.wait_for_selector(".badge.upload-done")
    assert page.locator("[data-field=counts]").text_content().startswith("1,000 rows, 1,000 new points")
    page.screenshot(path=str(SCREENSHOTS / "upload-done.png"), full_page=True)
    assert recorded.dialogs == []


def test_the_form_uploads_a_file_and_lists_it_under_its_experiment(
    login, contributor, run, live_server, tmp_path
):
    path = tmp_path / "metrics.csv"
    path.write_text("key,step,value\nloss,0,1.5\nloss,1,0.5\n")
    page = login(contributor)
    page.goto(f"{live_server.url}/runs/{run.uuid}/")
    page.click("text=Upload metrics to this run")
    assert page.locator("input[name=run_id]").input_value() == run.uuid
    page.set_input_files("input[type=file]", str(path))
    page.click("button:text-is('Upload')")
    page.wait_for_selector(".badge.upload-done")
    assert "2 rows, 2 new points" in page.locator(".upload-state").text_content()
    page.click("text=All uploads")
    page.wait_for_selector("table.uploads tbody tr")  # count() does not wait for the new page
    assert page.locator("table.uploads tbody tr").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "uploads-list.png"), full_page=True)
    assert ingest_upload(upload_id=BulkUpload.objects.get().pk).status == "done"  # a retry changes nothing
