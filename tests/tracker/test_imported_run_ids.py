"""start_run(run_id=…): a run copied from MLflow keeps its id."""

import pytest

from config.exceptions import AlreadyExists, InvalidInput
from tests.factories import ExperimentFactory
from tracker.services import start_run

RUN_ID = "0123456789abcdef0123456789abcdef"


def test_a_run_started_with_an_id_keeps_it(contributor):
    experiment = ExperimentFactory()

    run = start_run(actor=contributor, experiment=experiment, name="copied", run_id=RUN_ID)

    assert run.uuid == RUN_ID
    assert run.artifact_uri == f"mlflow-artifacts:/{experiment.pk}/{RUN_ID}/artifacts"


def test_an_id_already_taken_is_refused(contributor):
    experiment = ExperimentFactory()
    start_run(actor=contributor, experiment=experiment, run_id=RUN_ID)

    with pytest.raises(AlreadyExists) as error:
        start_run(actor=contributor, experiment=experiment, run_id=RUN_ID)
    assert str(error.value) == f"run_id: run {RUN_ID} already exists"


@pytest.mark.parametrize("run_id", ["abc", RUN_ID.upper(), RUN_ID + "0", "../" + RUN_ID[3:]])
def test_an_id_that_is_not_32_hex_digits_is_refused(contributor, run_id):
    with pytest.raises(InvalidInput) as error:
        start_run(actor=contributor, experiment=ExperimentFactory(), run_id=run_id)
    assert str(error.value) == f"run_id: {run_id!r} is not 32 lowercase hex digits"
