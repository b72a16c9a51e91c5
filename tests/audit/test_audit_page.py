"""The audit trail page: the filtered, keyset-paged log, its export, checkpoints and the last check."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent, AuditVerification
from audit.sealing import seal_events
from audit.services import make_checkpoint
from audit.tasks import verify_audit_chain
from config.inputs import TagInput
from dashboard.views.audit import EVENTS_PER_PAGE, audit_page_url
from tracker.services import create_experiment

pytestmark = pytest.mark.django_db
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


def _log(actor, *names):
    """Write events and seal them, as the sealer does within seconds of their commit."""
    experiments = [create_experiment(actor=actor, name=name) for name in names]
    seal_events()
    return experiments


def _sequences(response) -> list[int]:
    return [event.sequence for event in response.context["page"].events]


def test_the_page_lists_events_newest_first_with_who_and_what(viewer_client, contributor):
    _log(contributor, "first", "second")

    response = viewer_client.get(reverse("dashboard:audit"))

    assert response.status_code == 200
    assert _sequences(response) == sorted(AuditEvent.objects.values_list("sequence", flat=True), reverse=True)
    html = response.content.decode()
    assert "experiment.created" in html and "carl-contributor" in html
    assert '<a href="/audit/" aria-current="page">Audit</a>' in html


def test_filters_narrow_the_log(viewer_client, contributor, reviewer):
    _log(contributor, "mine")
    _log(reviewer, "theirs")
    theirs = AuditEvent.objects.get(action="experiment.created", actor_name="rob-reviewer")

    by_actor = viewer_client.get(
        reverse("dashboard:audit"), {"actor": "rob-reviewer", "action": "experiment.created"}
    )
    by_object = viewer_client.get(
        reverse("dashboard:audit"), {"object_type": theirs.object_type, "object_id": theirs.object_id}
    )
    by_time = viewer_client.get(
        reverse("dashboard:audit"),
        {"since": theirs.created_at.strftime("%Y-%m-%d %H:%M:%S"), "action": "experiment.created"},
    )

    assert _sequences(by_actor) == [theirs.sequence]
    assert _sequences(by_object) == [theirs.sequence]
    # Seconds are the form's resolution, so the earlier event may share the second.
    assert theirs.sequence in _sequences(by_time)


def test_an_object_is_found_under_every_id_it_had(viewer_client, contributor):
    one, _, three = _log(contributor, "one", "two", "three")
    url = audit_page_url(object_type="tracker.experiment", object_ids=[str(one.pk), str(three.pk)])

    response = viewer_client.get(url)
    older = viewer_client.get(f"{url}&before={10**6}")

    expected = list(
        AuditEvent.objects.filter(
            object_type="tracker.experiment", object_id__in=[str(one.pk), str(three.pk)]
        )
        .order_by("-sequence")
        .values_list("sequence", flat=True)
    )
    assert _sequences(response) == _sequences(older) == expected
    assert f'<input type="hidden" name="object_id" value="{three.pk}">' in response.content.decode()
    assert f"object_id={one.pk}&amp;object_id={three.pk}" in response.content.decode()  # the export link


def test_pages_are_keyset_paged_by_sequence(viewer_client, contributor):
    _log(contributor, *[f"e{i}" for i in range(EVENTS_PER_PAGE + 5)])
    total = AuditEvent.objects.count()

    first = viewer_client.get(reverse("dashboard:audit"))
    older = viewer_client.get(reverse("dashboard:audit"), {"before": first.context["page"].next_before})

    assert _sequences(first) == list(range(total, total - EVENTS_PER_PAGE, -1))
    assert _sequences(older) == list(range(total - EVENTS_PER_PAGE, 0, -1))
    assert older.context["page"].next_before is None
    assert f'href="?before={total - EVENTS_PER_PAGE + 1}" rel="next"' in first.content.decode()


def test_the_page_runs_a_fixed_number_of_queries(viewer_client, contributor, django_assert_max_num_queries):
    _log(contributor, *[f"e{i}" for i in range(30)])
    make_checkpoint()
    verify_audit_chain.delay()
    viewer_client.get(reverse("dashboard:audit"))  # warm the session

    with django_assert_max_num_queries(10):
        response = viewer_client.get(reverse("dashboard:audit"), {"action": "experiment.created"})

    assert len(response.context["page"].events) == 30


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "last tuesday"}, "since: Enter a valid date/time."),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "until: must be later than since."),
        ({"before": "-3"}, "before: Ensure this value is greater than or equal to 1."),
        ({"actor": "x" * 151}, "actor: Ensure this value has at most 150 characters (it has 151)."),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(viewer_client, db, query, message):
    response = viewer_client.get(reverse("dashboard:audit"), query)

    assert response.status_code == 400
    assert f'<p class="field-error">{message}</p>' in response.content.decode()


def test_event_text_is_escaped(viewer_client, contributor):
    _log(contributor, HOSTILE)

    html = viewer_client.get(reverse("dashboard:audit")).content.decode()

    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_long_event_data_is_cut_to_a_line_that_opens_to_all_of_it_and_text_reads_as_written(
    viewer_client, contributor
):
    """Data past a line was cut with no way to read it, and "ünï" read "\\u00fcn\\u00ef"."""
    note = "ünï " + "x" * 400 + " the end"
    create_experiment(actor=contributor, name="long", tags=[TagInput("note", note)])
    html = viewer_client.get(reverse("dashboard:audit")).content.decode()
    opened = re.search(
        r'<details class="event-data"><summary>(.*?)</summary><pre>(.*?)</pre></details>', html, re.S
    )
    assert opened is not None
    assert opened.group(1).endswith("…") and "the end" not in opened.group(1)
    assert "after: {" in opened.group(2) and "the end" in opened.group(2)
    assert "ünï" in opened.group(2) and "\\u00fc" not in html


def test_the_export_link_carries_the_filter_and_streams_csv(viewer_client, contributor):
    _log(contributor, "one", "two")

    page = viewer_client.get(reverse("dashboard:audit"), {"action": "experiment.created"})
    link = f"{reverse('dashboard:audit-export')}?action=experiment.created"
    response = viewer_client.get(link)

    assert f'id="export-csv" href="{link}"' in page.content.decode()
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["experiment.created", "experiment.created"]


def test_a_bad_export_filter_is_a_400_naming_the_field(viewer_client, db):
    response = viewer_client.get(reverse("dashboard:audit-export"), {"until": "never"})

    assert response.status_code == 400
    assert response.content.decode() == "until: Enter a valid date/time."


def test_the_last_check_and_the_checkpoints_are_shown(viewer_client, contributor):
    _log(contributor, "one")
    checkpoint = make_checkpoint()
    verify_audit_chain.delay()

    html = viewer_client.get(reverse("dashboard:audit")).content.decode()

    assert '<span class="badge status-finished" id="verification-result">intact</span>' in html
    assert f'href="{reverse("dashboard:audit-checkpoint", args=[checkpoint.pk])}" download' in html
    assert checkpoint.key_id in html


def test_a_broken_chain_is_shown_with_the_event_and_reason(viewer_client, contributor):
    _log(contributor, "one", "two")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET actor_name = 'mallory' WHERE sequence = 2")
    verify_audit_chain.delay(full=True)

    html = viewer_client.get(reverse("dashboard:audit")).content.decode()

    assert '<span class="badge status-failed" id="verification-result">broken</span>' in html
    assert "Event #2: content does not match its hash (edited)" in html


def test_a_contributor_can_queue_a_check_and_a_viewer_cannot(client, viewer, contributor):
    client.force_login(viewer)
    assert "Check now" not in client.get(reverse("dashboard:audit")).content.decode()
    client.post(reverse("dashboard:audit-check"))
    assert AuditVerification.objects.count() == 0

    client.force_login(contributor)
    response = client.post(reverse("dashboard:audit-check"), follow=True)

    assert AuditVerification.objects.count() == 1
    assert "A check of the chain is queued." in response.content.decode()


def test_checking_needs_a_post_with_a_csrf_token(client, contributor):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(contributor)

    assert csrf_client.post(reverse("dashboard:audit-check")).status_code == 403
    client.force_login(contributor)
    assert client.get(reverse("dashboard:audit-check")).status_code == 405
    assert AuditVerification.objects.count() == 0


def test_downloads_from_the_page(viewer_client, contributor):
    _log(contributor, "one")
    checkpoint = make_checkpoint()

    one = viewer_client.get(reverse("dashboard:audit-checkpoint", args=[checkpoint.pk]))
    every = viewer_client.get(reverse("dashboard:audit-checkpoints"))
    key = viewer_client.get(reverse("dashboard:audit-public-key"))

    assert b"".join(one.streaming_content).decode() == checkpoint.document + "\n"
    assert b"".join(every.streaming_content).decode() == checkpoint.document + "\n"
    assert key.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert viewer_client.get(reverse("dashboard:audit-checkpoint", args=[999])).status_code == 404


@pytest.mark.parametrize("name", ["audit", "audit-export", "audit-checkpoints", "audit-public-key"])
def test_every_audit_page_needs_a_login_and_a_role(client, outsider, name):
    url = reverse(f"dashboard:{name}")
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(outsider)
    assert client.get(url).status_code == 403


def test_the_object_history_block_lists_an_objects_events_and_links_the_full_log(contributor):
    from django.template.loader import render_to_string

    from dashboard.views.audit import history_block

    [experiment] = _log(contributor, HOSTILE)
    history = history_block(object_type="tracker.experiment", object_ids=[str(experiment.pk)])

    html = render_to_string("audit/_object_history.html", history)

    assert [e.action for e in history["events"]] == ["experiment.created"]
    assert f'href="/audit/?object_type=tracker.experiment&amp;object_id={experiment.pk}"' in html
    assert HOSTILE not in html


def test_the_run_page_and_run_table_show_their_objects_audit_history(viewer_client, contributor):
    from tests.factories import RunFactory
    from tracker.services import update_run

    [experiment] = _log(contributor, "sweep")
    run = RunFactory(experiment=experiment, user=contributor, name="baseline")
    update_run(actor=contributor, run=run, name="renamed")

    run_page = viewer_client.get(reverse("dashboard:run-detail", args=[run.uuid]))
    table_page = viewer_client.get(reverse("dashboard:run-table", args=[run.experiment.pk]))

    assert [e.action for e in run_page.context["history"]["events"]] == ["run.updated"]
    assert 'id="object-history-title">Audit history</h2>' in run_page.content.decode()
    assert f"/audit/?object_type=tracker.run&amp;object_id={run.uuid}" in run_page.content.decode()
    assert (
        f"/audit/?object_type=tracker.experiment&amp;object_id={run.experiment.pk}"
        in table_page.content.decode()
    )


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SQLite seals each event before its commit")
def test_events_not_sealed_yet_are_marked_and_counted(viewer_client, contributor):
    create_experiment(actor=contributor, name="fresh")

    html = viewer_client.get(reverse("dashboard:audit")).content.decode()

    assert 'class="badge unsealed"' in html
    unsealed = AuditEvent.objects.filter(hash__isnull=True).count()
    assert f'<p class="muted" id="unsealed-count">{unsealed} events committed but not sealed yet;' in html
    seal_events()
    assert 'class="badge unsealed"' not in viewer_client.get(reverse("dashboard:audit")).content.decode()
