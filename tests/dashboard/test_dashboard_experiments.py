"""The experiment list: names, descriptions, run counts, last activity and links to run tables."""

from __future__ import annotations

from django.urls import reverse

HOSTILE = "<script>alert(1)</script>"


def test_experiment_list_shows_each_experiment_with_its_run_count(viewer_client, make_experiment, make_run):
    digits = make_experiment("digits-sweep", description="Learning rate sweep on MNIST digits")
    make_experiment("empty-one")
    make_run(digits, "a")
    make_run(digits, "b")

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
