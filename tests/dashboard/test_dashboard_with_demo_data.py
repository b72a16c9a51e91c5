"""Every page renders the seeded demo data in a bounded number of queries."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.permissions import SYSTEM_READER
from registry.selectors import get_registered_model, get_version_by_alias
from tracker import selectors
from tracker.demo.seed import EXPERIMENT_NAME

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("seed_demo", "--quick", stdout=StringIO())
    return selectors.get_experiment_by_name(user=SYSTEM_READER, name=EXPERIMENT_NAME)


# The run page's two last queries: its child runs and the models it logged (one each, whatever
# their number: tests/dashboard/test_dashboard_run_detail.py).
@pytest.mark.parametrize(
    ("page", "max_queries"),
    [("experiment-list", 8), ("run-table", 14), ("run-detail", 16), ("registry", 10), ("settings", 8)],
)
def test_pages_render_demo_data_within_a_query_budget(
    viewer_client, demo, page, max_queries, django_assert_max_num_queries
):
    best = get_version_by_alias(
        model=get_registered_model(user=SYSTEM_READER, name="spiral-classifier"), alias="staging"
    ).run
    args = {"run-table": [demo.pk], "run-detail": [best.uuid]}.get(page, [])
    url = reverse(f"dashboard:{page}", args=args)
    with django_assert_max_num_queries(max_queries):
        response = viewer_client.get(url)
    assert response.status_code == 200
    expected = {
        "experiment-list": EXPERIMENT_NAME,
        "run-table": best.name,
        "run-detail": "val_f1",
        "registry": "spiral-classifier",
        "settings": "API tokens",
    }[page]
    assert expected in response.content.decode()


def test_readme_filter_on_demo_data_shows_exactly_the_matching_runs(viewer_client, demo):
    query = "datasets.version = '2.1' and metrics.val_f1 > 0.85"
    matching = {
        d.run.uuid
        for d in selectors.search_runs(user=SYSTEM_READER, experiment_ids=[demo.pk], filter_string=query).runs
    }
    every_run = {
        d.run.uuid
        for d in selectors.search_runs(user=SYSTEM_READER, experiment_ids=[demo.pk], max_results=1000).runs
    }
    assert 0 < len(matching) < len(every_run)
    url = reverse("dashboard:run-table", args=[demo.pk])
    page = viewer_client.get(url, {"page_size": 100, "filter": query}).content.decode()
    shown = {uuid for uuid in every_run if reverse("dashboard:run-detail", args=[uuid]) in page}
    assert shown == matching
