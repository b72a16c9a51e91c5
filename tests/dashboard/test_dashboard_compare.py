"""The compare page: runs in the URL, the diff table, dataset warnings, config for the charts,
escaping, errors and a query budget."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tracker.services import DatasetSpec

from .conftest import HOSTILE

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
# A 1 x 1 PNG: an artifact the page shows as an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


@pytest.fixture
def sweep(make_experiment, make_run):
    experiment = make_experiment("sweep")
    return [
        make_run(
            experiment,
            name,
            params={"lr": lr, "optimizer": "adam"},
            metrics={"loss": [1.0, 0.5], "val_f1": 0.8},
            tags={"team": "nlp"},
            datasets=[DatasetSpec("digits", digest * 64, version, context="training")],
            code_commit="abc123",
        )
        for name, lr, digest, version in (("lr-0.1", "0.1", "a", "2.0"), ("lr-0.01", "0.01", "b", "2.1"))
    ]


def compare_url(runs, **extra) -> str:
    query = "&".join([f"runs={run.uuid}" for run in runs] + [f"{k}={v}" for k, v in extra.items()])
    return f"{reverse('dashboard:compare')}?{query}"


def config_of(content: str) -> dict:
    block = re.search(r'<script id="compare-config" type="application/json">(.*?)</script>', content)
    return json.loads(block.group(1))


def test_the_diff_highlights_differing_params_and_keeps_equal_ones(viewer_client, sweep):
    content = viewer_client.get(compare_url(sweep)).content.decode()
    lr = re.search(
        r'<tr class="differs" data-section="param">\s*<th[^>]*>.*?lr</th>(.*?)</tr>', content, re.S
    )
    assert lr is not None
    assert lr.group(1).count('class="diff wrap mono"') == 2
    assert re.search(r'<tr class="same" data-section="param">\s*<th[^>]*>.*?optimizer</th>', content, re.S)
    assert re.search(r'<tr class="same" data-section="code">\s*<th[^>]*>.*?code commit</th>', content, re.S)
    assert 'id="only-differences"' in content


def metric_cells(content: str, key: str) -> tuple[str, list[str]]:
    """The metric table's row for `key`: its class and its cells' HTML."""
    row = re.search(rf'<tr class="(\w+)" data-key="{key}">\s*<th[^>]*>{key}</th>(.*?)</tr>', content, re.S)
    assert row is not None, f"no metric row {key}"
    return row.group(1), re.findall(r"<td[^>]*>.*?</td>", row.group(2), re.S)


def test_the_metric_table_shows_each_runs_latest_value_and_marks_both_ends(
    viewer_client, make_experiment, make_run
):
    experiment = make_experiment()
    runs = [
        make_run(experiment, "a", metrics={"loss": [2.0, 0.5], "acc": 0.7}),
        make_run(experiment, "b", metrics={"loss": [1.0, 0.25, 0.3], "acc": 0.7, "f1": 0.6}),
        make_run(experiment, "c", metrics={"loss": 0.9, "acc": 0.7}),
    ]
    content = viewer_client.get(compare_url(runs)).content.decode()

    kind, cells = metric_cells(content, "loss")
    assert kind == "differs"
    latest = [re.search(r'<span class="latest">(.*?)</span>', cell).group(1) for cell in cells]
    assert latest == ["0.5", "0.3", "0.9"]
    assert "step 1 · min 0.5 · max 2" in cells[0] and "step 2 · min 0.25 · max 1" in cells[1]
    assert "extreme-lowest" in cells[1] and '<span class="extreme">lowest</span>' in cells[1]
    assert "extreme-highest" in cells[2] and '<span class="extreme">highest</span>' in cells[2]
    assert "extreme" not in cells[0]
    # The same value everywhere marks nothing, and "Only differences" may hide it.
    kind, cells = metric_cells(content, "acc")
    assert kind == "same" and not any("extreme" in cell for cell in cells)
    # A metric only one run logged: a dash for the others, and no end to mark.
    kind, cells = metric_cells(content, "f1")
    assert kind == "differs"
    assert cells[0].count('class="missing"') == 1 and cells[2].count('class="missing"') == 1
    assert not any("extreme" in cell for cell in cells)


def test_nan_is_shown_but_never_marked_as_an_end(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    runs = [
        make_run(experiment, "a", metrics={"loss": float("nan")}),
        make_run(experiment, "b", metrics={"loss": 0.4}),
        make_run(experiment, "c", metrics={"loss": 0.2}),
    ]
    _, cells = metric_cells(viewer_client.get(compare_url(runs)).content.decode(), "loss")
    assert '<span class="latest">NaN</span>' in cells[0] and "extreme" not in cells[0]
    assert "extreme-highest" in cells[1] and "extreme-lowest" in cells[2]


def test_an_infinite_metric_is_shown_as_text_and_left_off_the_plots(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    runs = [
        make_run(experiment, "diverged", metrics={"loss": float("inf")}),
        make_run(experiment, "fine", metrics={"loss": 0.3}),
    ]
    content = viewer_client.get(compare_url(runs)).content.decode()
    block = re.search(r'<script id="compare-config" type="application/json">(.*?)</script>', content).group(1)

    def refuse(token):
        raise AssertionError(f"{token} is not JSON")

    config = json.loads(block, parse_constant=refuse)  # the browser's JSON.parse is as strict
    assert [run["metrics"]["loss"] for run in config["runs"]] == [None, 0.3]
    _, cells = metric_cells(content, "loss")
    assert '<span class="latest">Infinity</span>' in cells[0] and "min Infinity · max Infinity" in cells[0]
    assert "extreme" not in "".join(cells)  # one finite value: no ends to mark


def test_the_artifact_table_lines_files_up_by_path_and_flags_different_bytes(
    viewer_client, make_experiment, make_run
):
    experiment = make_experiment()
    runs = [
        make_run(experiment, "a", artifacts={"model.pkl": b"weights-a", "plot.png": PNG, "cfg.json": b"{}"}),
        make_run(experiment, "b", artifacts={"model.pkl": b"weights-b", "plot.png": PNG}),
    ]
    content = viewer_client.get(compare_url(runs)).content.decode()

    def row(path):
        found = re.search(rf'<tr class="(\w+)" data-path="{re.escape(path)}">(.*?)</tr>', content, re.S)
        assert found is not None, path
        return found.group(1), re.findall(r"<td[^>]*>.*?</td>", found.group(2), re.S)

    assert re.findall(r'data-path="([^"]+)"', content) == ["cfg.json", "model.pkl", "plot.png"]
    kind, cells = row("model.pkl")
    assert kind == "differs"
    assert all(f"/runs/{run.uuid}/artifacts/model.pkl" in cell for run, cell in zip(runs, cells, strict=True))
    assert "9\xa0bytes" in cells[0]  # filesizeformat's non-breaking space
    kind, cells = row("plot.png")
    assert kind == "same"  # the same bytes in both runs
    assert all('class="artifact-thumb"' in cell and "?inline=1" in cell for cell in cells)
    kind, cells = row("cfg.json")
    assert kind == "differs" and 'class="missing"' in cells[1] and "artifact-thumb" not in cells[0]


def test_a_run_with_many_artifacts_lists_the_first_paths_and_says_so(
    viewer_client, make_experiment, make_run, monkeypatch
):
    from tracker.selectors import comparison

    monkeypatch.setattr(comparison, "MAX_COMPARED_ARTIFACTS", 3)
    experiment = make_experiment()
    runs = [
        make_run(experiment, "a", artifacts={f"f{i}.txt": b"x" for i in range(5)}),
        make_run(experiment, "b", artifacts={"f0.txt": b"x", "f4.txt": b"y"}),
    ]
    content = viewer_client.get(compare_url(runs)).content.decode()
    assert re.findall(r'data-path="([^"]+)"', content) == ["f0.txt", "f1.txt", "f2.txt"]
    assert "Only the first 3 paths are listed." in content
    few = viewer_client.get(compare_url([*runs[1:], make_run(experiment, "c")])).content.decode()
    assert re.findall(r'data-path="([^"]+)"', few) == ["f0.txt", "f4.txt"]
    assert "Only the first" not in few


def test_runs_without_metrics_show_no_metric_table(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    runs = [make_run(experiment, f"r{i}", params={"lr": str(i)}) for i in range(2)]
    content = viewer_client.get(compare_url(runs)).content.decode()
    assert 'id="metric-table"' not in content and "These runs logged no metrics." in content


def test_only_the_environment_entries_that_differ_become_rows(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    packages = {"numpy": "2.1.0", "scipy": "1.14.0"}
    runs = [
        make_run(
            experiment, "a", environment={"python": "3.11.9", "packages": {**packages, "torch": "2.2.0"}}
        ),
        make_run(
            experiment, "b", environment={"python": "3.11.9", "packages": {**packages, "torch": "2.3.0"}}
        ),
        make_run(experiment, "c", environment={"python": "3.11.9", "packages": packages}),
    ]
    content = viewer_client.get(compare_url(runs)).content.decode()

    env_rows = re.findall(
        r'<tr class="(\w+)" data-section="env">\s*<th[^>]*>.*?</span> (.*?)</th>(.*?)</tr>', content, re.S
    )
    assert [(kind, key) for kind, key, _ in env_rows] == [("differs", "packages.torch")]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", env_rows[0][2], re.S)
    assert cells[:2] == ["2.2.0", "2.3.0"] and 'class="missing"' in cells[2]
    assert "3 environment entries (Python, packages, platform) are the same in every run" in content


def test_different_dataset_versions_raise_a_warning(viewer_client, sweep):
    content = viewer_client.get(compare_url(sweep)).content.decode()
    assert "These runs used different datasets, or different versions of one" in content
    assert re.search(
        r'<tr class="differs" data-section="dataset">\s*<th[^>]*>.*?digits \(training\)</th>', content, re.S
    )
    assert "2.0 · aaaaaaaaaaaa" in content and "2.1 · bbbbbbbbbbbb" in content


def test_the_same_dataset_everywhere_raises_no_warning(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    runs = [
        make_run(experiment, f"r{i}", metrics={"loss": 1.0}, datasets=[DatasetSpec("digits", "c" * 64, "3")])
        for i in range(2)
    ]
    assert 'id="dataset-warning"' not in viewer_client.get(compare_url(runs)).content.decode()


def test_the_page_hands_runs_colours_and_state_to_js_through_json_script(viewer_client, sweep):
    response = viewer_client.get(
        compare_url(sweep, keys="loss", x="wall", smoothing="0.6", log="1", group_by="lr")
    )
    config = config_of(response.content.decode())
    assert [run["name"] for run in config["runs"]] == ["lr-0.1", "lr-0.01"]
    assert [run["colour"] for run in config["runs"]] == ["#4e79a7", "#f28e2b"]
    assert config["runs"][0]["params"] == {"lr": "0.1", "optimizer": "adam"}
    assert config["runs"][0]["metrics"] == {"loss": 0.5, "val_f1": 0.8}
    assert (config["keys"], config["x"], config["smoothing"], config["log"], config["groupBy"]) == (
        ["loss"],
        "wall",
        0.6,
        True,
        "lr",
    )
    assert config["seriesUrl"] == "/charts/series.json"


def test_without_chosen_keys_the_first_metric_keys_are_charted(viewer_client, sweep):
    config = config_of(viewer_client.get(compare_url(sweep)).content.decode())
    assert config["keys"] == ["loss", "val_f1"]
    assert (config["pcMetric"], config["sy"]) == ("loss", "loss")


def test_parallel_coordinates_and_the_scatter_start_on_the_params_that_differ(
    viewer_client, make_experiment, make_run
):
    experiment = make_experiment()
    shared = {"activation": "tanh", "batch_size": "32", "epochs": "40"}
    runs = [
        make_run(experiment, f"r{i}", params={**shared, "lr": lr, "wd": wd}, metrics={"loss": 1.0})
        for i, (lr, wd) in enumerate((("0.1", "0"), ("0.2", "0"), ("0.2", "0.01")))
    ]
    config = config_of(viewer_client.get(compare_url(runs)).content.decode())
    assert (config["pc"], config["sx"]) == (["lr", "wd"], "params.lr")
    chosen = config_of(viewer_client.get(compare_url(runs, pc="epochs", sx="params.wd")).content.decode())
    assert (chosen["pc"], chosen["sx"]) == (["epochs"], "params.wd")


def test_the_parallel_and_scatter_metric_is_one_every_run_has(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    runs = [
        make_run(experiment, "a", params={"lr": "1"}, metrics={"aux": 1.0, "loss": 0.1, "val_acc": 0.9}),
        make_run(experiment, "b", params={"lr": "2"}, metrics={"loss": 0.2, "val_acc": 0.8}),
    ]
    config = config_of(viewer_client.get(compare_url(runs)).content.decode())
    assert config["keys"] == ["aux", "loss", "val_acc"]
    assert (config["pcMetric"], config["sy"]) == ("loss", "loss")  # `aux` is only run a's
    charted = config_of(viewer_client.get(compare_url(runs, keys="aux")).content.decode())
    assert (charted["pcMetric"], charted["sy"]) == ("loss", "loss")  # not charted, but both runs have it
    chosen = config_of(viewer_client.get(compare_url(runs, pc_metric="aux", sy="aux")).content.decode())
    assert (chosen["pcMetric"], chosen["sy"]) == ("aux", "aux")


def test_where_no_param_differs_the_axes_start_on_the_first_params(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    params = {name: "1" for name in ("a", "b", "c", "d", "e")}
    runs = [make_run(experiment, f"r{i}", params=params, metrics={"loss": float(i)}) for i in range(2)]
    config = config_of(viewer_client.get(compare_url(runs)).content.decode())
    assert (config["pc"], config["sx"]) == (["a", "b", "c", "d"], "params.a")


def importance_of(client, runs, metric):
    query = "&".join([f"runs={run.uuid}" for run in runs] + [f"metric={metric}"])
    return client.get(f"{reverse('dashboard:param-importance')}?{query}")


def test_parameter_importance_weighs_the_params_that_differ_for_the_chosen_metric(
    viewer_client, make_experiment, make_run
):
    experiment = make_experiment()
    runs = [
        make_run(
            experiment,
            f"r{i}",
            params={"lr": str(lr), "seed": str(seed), "epochs": "10"},
            metrics={"loss": 1 - lr, "val_acc": 0.5 + 0.01 * seed},
        )
        for i, (lr, seed) in enumerate(((0.1, 3), (0.2, 1), (0.3, 4), (0.4, 2), (0.5, 0)))
    ]
    config = config_of(viewer_client.get(compare_url(runs)).content.decode())
    assert (config["im"], config["importanceUrl"]) == ("loss", reverse("dashboard:param-importance"))
    assert config_of(viewer_client.get(compare_url(runs, im="val_acc")).content.decode())["im"] == "val_acc"

    body = importance_of(viewer_client, runs, "loss").json()
    assert (body["metric"], body["runsUsed"], body["note"]) == ("loss", 5, "")
    assert [p["key"] for p in body["params"]] == ["lr", "seed"]
    assert body["params"][0]["correlation"] == pytest.approx(-1.0)
    by_seed = importance_of(viewer_client, runs, "val_acc").json()["params"]
    assert by_seed[0]["key"] == "seed" and by_seed[0]["correlation"] == pytest.approx(1.0)
    nothing = importance_of(viewer_client, runs[:3], "loss").json()
    assert nothing["params"] == []
    assert nothing["note"] == "needs at least 4 runs with a value for loss; 3 have one"


def test_parameter_importance_refuses_a_request_without_a_metric_naming_the_field(viewer_client, sweep):
    response = importance_of(viewer_client, sweep, "")
    assert response.status_code == 400
    assert response.json()["field"] == "metric"


def test_hostile_names_and_values_are_escaped_everywhere_on_the_page(
    viewer_client, make_experiment, make_run
):
    experiment = make_experiment()
    runs = [
        make_run(experiment, HOSTILE, params={"p": HOSTILE}, tags={"t": HOSTILE}, metrics={"loss": 1.0}),
        make_run(experiment, "plain", params={"p": "1"}, metrics={"loss": 2.0}),
    ]
    content = viewer_client.get(compare_url(runs)).content.decode()
    assert "<script>alert" not in content
    assert content.count(ESCAPED) >= 4  # run list, diff header, param and tag cells
    assert config_of(content)["runs"][0]["name"] == HOSTILE


def test_one_run_is_a_400_that_says_how_many_to_pick(viewer_client, sweep):
    response = viewer_client.get(compare_url(sweep[:1]))
    assert response.status_code == 400
    content = response.content.decode()
    assert "<p>runs: choose between 2 and 100 runs, got 1</p>" in content
    assert "compare.js" not in content


def test_a_malformed_run_id_is_a_400_naming_the_field(viewer_client):
    response = viewer_client.get(f"{reverse('dashboard:compare')}?runs=nope&runs={'a' * 32}")
    assert response.status_code == 400
    assert "runs: &#x27;nope&#x27; is not a 32-character hexadecimal run id" in response.content.decode()


def test_an_unknown_run_is_a_404(viewer_client, sweep):
    response = viewer_client.get(f"{compare_url(sweep)}&runs={'f' * 32}")
    assert response.status_code == 404


def test_the_compare_page_has_a_query_budget_independent_of_the_run_count(
    viewer_client, make_experiment, make_run, django_assert_max_num_queries
):
    experiment = make_experiment()
    runs = [
        make_run(
            experiment,
            f"r{i}",
            params={"lr": str(i)},
            metrics={"loss": [1.0, 0.5]},
            artifacts={"model.pkl": b"w%d" % i, "plot.png": PNG},
        )
        for i in range(12)
    ]
    with django_assert_max_num_queries(12):
        assert viewer_client.get(compare_url(runs)).status_code == 200


def test_anonymous_users_are_sent_to_log_in(client, sweep):
    response = client.get(compare_url(sweep))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("choice", "field"),
    [({"x": "bogus"}, "X"), ({"smoothing": "abc"}, "Smoothing"), ({"smoothing": "5"}, "Smoothing")],
)
def test_a_bad_display_choice_falls_back_to_its_default_with_a_warning(viewer_client, sweep, choice, field):
    """An old link or a hand-edited URL should not blank the page with a hint about runs."""
    response = viewer_client.get(compare_url(sweep, **choice))
    content = response.content.decode()
    assert response.status_code == 200
    assert f"{field}: " in content and "Showing its default instead." in content
    config = config_of(content)
    assert (config["x"], config["smoothing"]) == ("step", 0)


class FormSubmissions(HTMLParser):
    """What each GET form of a page sends as it stands: hidden inputs, checked boxes, range
    values and each select's selected (or first) option, in document order."""

    def __init__(self):
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []
        self.select: tuple[str, list[tuple[str, bool]]] | None = None
        self.option: tuple[str, bool] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("method") == "get":
            self.forms.append([])
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            if a.get("type") in ("hidden", "range") or (a.get("type") == "checkbox" and "checked" in a):
                self.forms[-1].append((a["name"], a.get("value", "on")))
        elif tag == "select":
            self.select = (a["name"], [])
        elif tag == "option" and self.select is not None:
            self.select[1].append((a["value"], "selected" in a))

    def handle_endtag(self, tag):
        if tag == "select" and self.select is not None and self.forms:
            name, options = self.select
            chosen = [value for value, selected in options if selected] or [options[0][0]]
            self.forms[-1].append((name, chosen[0]))
            self.select = None


def submissions(content: str) -> list[dict[str, list[str]]]:
    parser = FormSubmissions()
    parser.feed(content)
    sent = []
    for pairs in parser.forms:
        query: dict[str, list[str]] = {}
        for name, value in pairs:
            query.setdefault(name, []).append(value)
        sent.append(query)
    return sent


def test_every_form_on_the_page_keeps_the_settings_the_others_set(viewer_client, sweep):
    """Applying the charts keeps the importance metric; weighing keeps the x-axis, smoothing,
    log scale and grouping; drawing one plot keeps the other's axes."""
    settings = {
        "keys": ["loss"],
        "x": ["relative"],
        "smoothing": ["0.5"],
        "log": ["1"],
        "group_by": ["lr"],
        "pc": ["lr"],
        "pc_metric": ["val_f1"],
        "sx": ["params.optimizer"],
        "sy": ["val_f1"],
        "im": ["loss"],
    }
    query = "&".join(f"{name}={value}" for name, values in settings.items() for value in values)
    content = viewer_client.get(f"{compare_url(sweep)}&{query}").content.decode()
    forms = submissions(content)
    assert len(forms) == 4  # the charts, parallel coordinates, the scatter, the importance
    for sent in forms:
        assert sent.pop("runs") == [run.uuid for run in sweep]
        assert sent == settings


def test_the_settings_a_form_carries_are_escaped(viewer_client, sweep):
    content = viewer_client.get(compare_url(sweep, sx='"><b>x</b>')).content.decode()
    assert '<input type="hidden" name="sx" value="&quot;&gt;&lt;b&gt;x&lt;/b&gt;">' in content
    assert "<b>x</b>" not in content
