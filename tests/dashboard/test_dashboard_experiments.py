"""The experiment list: names, descriptions, run counts, last activity and links to run tables."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from config.inputs import TagInput
from config.listing import LIST_PAGE_SIZE
from tracker.services import delete_run

HOSTILE = "<script>alert(1)</script>"


def test_experiment_list_shows_each_experiment_with_its_run_count(
    viewer_client, contributor, make_experiment, make_run
):
    digits = make_experiment("digits-sweep", description="Learning rate sweep on MNIST digits")
    make_experiment("empty-one")
    make_run(digits, "a")
    make_run(digits, "b")
    delete_run(actor=contributor, run=make_run(digits, "deleted"))  # not in the run table, not counted

    response = viewer_client.get(reverse("dashboard:experiment-list"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "digits-sweep" in content
    assert "Learning rate sweep on MNIST digits" in content
    assert f'href="{reverse("dashboard:run-table", args=[digits.pk])}"' in content
    rows = {e.name: e for e in response.context["experiments"]}
    assert rows["digits-sweep"].run_count == 2
    assert rows["empty-one"].run_count == 0
    assert rows["empty-one"].last_activity is None


def test_experiment_names_and_descriptions_are_escaped(viewer_client, make_experiment):
    make_experiment(HOSTILE, description=HOSTILE)
    content = viewer_client.get(reverse("dashboard:experiment-list")).content.decode()
    assert HOSTILE not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_experiment_list_runs_a_fixed_number_of_queries(
    viewer_client, make_experiment, make_run, django_assert_max_num_queries
):
    for index in range(6):
        experiment = make_experiment(f"exp-{index}")
        for run_index in range(5):
            make_run(experiment, f"run-{run_index}", finished=False)
    viewer_client.get(reverse("dashboard:experiment-list"))  # warm the session
    with django_assert_max_num_queries(6):
        response = viewer_client.get(reverse("dashboard:experiment-list"))
    assert response.status_code == 200


def listed(response) -> list[str]:
    return [experiment.name for experiment in response.context["experiments"]]


def test_the_search_matches_name_description_and_tags_ignoring_case(
    viewer_client, contributor, make_experiment, make_run
):
    from tracker.services import set_experiment_tag

    vision = make_experiment("Vision-ResNet", description="image models")
    make_experiment("text-bert", description="Transformer baselines for VISION-free text")
    tagged = make_experiment("audio")
    for key, value in (("team", "vision"), ("data", "vision-2024")):  # two matching tags: listed once
        set_experiment_tag(actor=contributor, experiment=tagged, tag=TagInput(key, value))
    make_run(tagged, "a")
    make_run(tagged, "b")
    make_run(vision, "c")
    url = reverse("dashboard:experiment-list")

    response = viewer_client.get(url, {"q": "vision"})

    assert response.status_code == 200
    assert listed(response) == ["audio", "text-bert", "Vision-ResNet"]
    counts = {e.name: e.run_count for e in response.context["experiments"]}
    assert counts == {"audio": 2, "text-bert": 0, "Vision-ResNet": 1}  # not multiplied by the tags
    assert "3 experiments match “vision”" in response.content.decode()
    assert listed(viewer_client.get(url, {"q": "resnet"})) == ["Vision-ResNet"]
    assert listed(viewer_client.get(url, {"q": "  "})) == ["audio", "Default", "text-bert", "Vision-ResNet"]
    nothing = viewer_client.get(url, {"q": "speech"})
    assert nothing.status_code == 200 and listed(nothing) == []
    assert "No experiment matches." in nothing.content.decode()


def test_the_list_orders_by_name_last_activity_or_run_count(viewer_client, make_experiment, make_run):
    busy, recent = make_experiment("b-busy"), make_experiment("c-recent")
    make_experiment("a-idle")
    for name in ("r1", "r2", "r3"):
        make_run(busy, name)
    make_run(recent, "late", minutes=60)
    url = reverse("dashboard:experiment-list")

    assert listed(viewer_client.get(url)) == ["a-idle", "b-busy", "c-recent", "Default"]
    # Last activity: the run updated last first; experiments without runs after every other.
    assert listed(viewer_client.get(url, {"sort": "activity"}))[:2] == ["c-recent", "b-busy"]
    assert listed(viewer_client.get(url, {"sort": "activity"}))[2:] == ["a-idle", "Default"]
    assert listed(viewer_client.get(url, {"sort": "runs"})) == ["b-busy", "c-recent", "a-idle", "Default"]


def test_a_long_list_comes_in_pages_whose_links_keep_the_search_and_order(viewer_client, make_experiment):
    for index in range(LIST_PAGE_SIZE + 5):
        make_experiment(f"sweep-{index:03d}")
    make_experiment("unrelated")
    url = reverse("dashboard:experiment-list")

    first = viewer_client.get(url, {"q": "sweep", "sort": "name"})
    assert listed(first) == [f"sweep-{index:03d}" for index in range(LIST_PAGE_SIZE)]
    content = first.content.decode()
    assert f"{LIST_PAGE_SIZE + 5} experiments match “sweep” · showing 1\u2013{LIST_PAGE_SIZE}" in content
    next_link = re.search(r'href="\?([^"]+)" rel="next"', content).group(1)
    assert sorted(next_link.replace("&amp;", "&").split("&")) == ["page=2", "q=sweep", "sort=name"]
    assert 'rel="prev"' not in content

    second = viewer_client.get(f"{url}?{next_link.replace('&amp;', '&')}")
    assert listed(second) == [f"sweep-{index:03d}" for index in range(LIST_PAGE_SIZE, LIST_PAGE_SIZE + 5)]
    assert 'rel="prev"' in second.content.decode() and 'rel="next"' not in second.content.decode()
    assert "Page 2 of 2" in second.content.decode()
    # A page past the end shows the last one, as a shared link to a shrunk list should.
    assert listed(viewer_client.get(url, {"q": "sweep", "page": "9"})) == listed(second)


@pytest.mark.parametrize("page", ["99999999999999999999999", str(2**63)])
def test_a_page_number_past_what_the_database_counts_shows_the_last_page(
    viewer_client, make_experiment, page
):
    make_experiment("sweep")

    response = viewer_client.get(reverse("dashboard:experiment-list"), {"page": page})

    assert response.status_code == 200
    assert listed(response) == ["Default", "sweep"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"q": "x" * 251}, "Search: Ensure this value has at most 250 characters (it has 251)."),
        ({"sort": "size"}, "Order: Select a valid choice. size is not one of the available choices."),
        ({"page": "0"}, "Page: Ensure this value is greater than or equal to 1."),
        ({"page": "two"}, "Page: Enter a whole number."),
    ],
)
def test_a_bad_search_is_a_400_naming_the_field(viewer_client, make_experiment, query, message):
    make_experiment("kept")
    response = viewer_client.get(reverse("dashboard:experiment-list"), query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert listed(response) == []
    assert "Nothing is listed until the search above is corrected." in response.content.decode()


def test_the_searched_text_is_escaped(viewer_client, make_experiment):
    make_experiment(f"x{HOSTILE}")
    content = viewer_client.get(reverse("dashboard:experiment-list"), {"q": HOSTILE}).content.decode()
    assert HOSTILE not in content
    assert "1 experiment matches “&lt;script&gt;alert(1)&lt;/script&gt;”" in content


def test_a_second_page_runs_a_fixed_number_of_queries(
    viewer_client, make_experiment, django_assert_max_num_queries
):
    for index in range(LIST_PAGE_SIZE + 3):
        make_experiment(f"exp-{index}")
    url = reverse("dashboard:experiment-list")
    viewer_client.get(url)  # warm the session
    with django_assert_max_num_queries(7):  # the first page's budget and the list's count
        response = viewer_client.get(url, {"page": "2"})
    assert len(listed(response)) == 4  # Default and three of the 53


def test_every_order_a_list_offers_is_one_its_selector_knows():
    """A label without an order would quietly sort by the default; an order without a label
    could never be chosen."""
    from dashboard.views.experiments import EXPERIMENT_SORTS
    from dashboard.views.registry import MODEL_SORTS
    from registry.selectors.catalog import MODEL_ORDERS
    from tracker.selectors.experiments import EXPERIMENT_ORDERS

    assert list(EXPERIMENT_SORTS) == list(EXPERIMENT_ORDERS)
    assert list(MODEL_SORTS) == list(MODEL_ORDERS)
