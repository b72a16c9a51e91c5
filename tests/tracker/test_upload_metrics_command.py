"""`manage.py upload_metrics`: the same service as the API, with a progress report."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tracker.models import MetricPoint, Run

# Transactional: the command commits, and the eager task must run at that commit, as it would.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def command():
    def run(*args) -> str:
        out = io.StringIO()
        call_command("upload_metrics", *args, stdout=out, stderr=io.StringIO())
        return out.getvalue()

    return run


def test_a_file_for_a_run_is_uploaded_and_reported_done(command, run, contributor, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("key,step,value\nloss,0,1\nloss,1,2\n")
    output = command(str(path), "--user", contributor.username, "--run", run.uuid, "--wait")
    assert output.splitlines()[-1].startswith("Upload ") and "done: 2 rows, 2 new points in " in output
    assert MetricPoint.objects.filter(run=run).count() == 2


def test_runs_are_created_inside_the_named_experiment(command, experiment, contributor, tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"run_name": "a", "key": "loss", "step": 0, "value": 1}\n')
    output = command(
        str(path), "--user", contributor.username, "--experiment", experiment.name, "--create-runs", "--wait"
    )
    assert "1 runs created" in output
    assert Run.objects.filter(experiment=experiment, name="a").exists()


def test_a_broken_file_fails_with_the_line_in_the_message(command, run, contributor, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("key,step,value\nloss,zero,1\n")
    with pytest.raises(CommandError, match=r"failed: line 2, column step: 'zero' is not an integer$"):
        command(str(path), "--user", contributor.username, "--run", run.uuid, "--wait")


def test_an_unknown_experiment_is_an_error_naming_it(command, contributor, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("key,step,value\nloss,0,1\n")
    with pytest.raises(CommandError) as error:
        command(str(path), "--user", contributor.username, "--experiment", "nope")
    assert str(error.value) == "experiment_name: no experiment is named 'nope'"


def test_a_tensorboard_log_directory_maps_each_run_folder_to_a_run(
    command, experiment, contributor, tmp_path
):
    from tensorboardX import SummaryWriter

    for folder, final_loss in (("lr-0.1", 0.5), ("lr-0.01", 0.25)):
        writer = SummaryWriter(str(tmp_path / "logs" / folder))
        writer.add_scalar("loss", 1.0, 0)
        writer.add_scalar("loss", final_loss, 1)
        writer.close()
    output = command(
        str(tmp_path / "logs"), "--user", contributor.username, "--experiment", experiment.name, "--wait"
    )
    assert output.count("done: 2 rows, 2 new points") == 2
    runs = Run.objects.filter(experiment=experiment)
    assert sorted(runs.values_list("name", flat=True)) == ["lr-0.01", "lr-0.1"]
    last = {run.name: run.metric_summaries.get().last_value for run in runs}
    assert last == {"lr-0.1": 0.5, "lr-0.01": 0.25}


def test_a_log_directory_needs_an_experiment(command, contributor, tmp_path):
    with pytest.raises(CommandError) as error:
        command(str(tmp_path), "--user", contributor.username)
    assert str(error.value) == "A log directory needs --experiment: each run folder becomes a run in it."
