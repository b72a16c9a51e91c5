"""create_model_version(number=…): a version copied from MLflow keeps its number."""

import pytest

from config.exceptions import AlreadyExists, InvalidInput
from registry.services import create_model_version, delete_model_version
from tests.factories import RegisteredModelFactory, RunFactory


def test_a_version_keeps_the_number_it_is_given_and_the_next_one_follows_the_highest(contributor):
    model, run = RegisteredModelFactory(), RunFactory()

    kept = create_model_version(actor=contributor, model=model, run=run, number=3)
    earlier = create_model_version(actor=contributor, model=model, run=run, number=1)
    following = create_model_version(actor=contributor, model=model, run=run)

    assert (kept.version, earlier.version, following.version) == (3, 1, 4)


def test_a_number_in_use_even_by_a_deleted_version_is_refused(contributor):
    model, run = RegisteredModelFactory(name="m"), RunFactory()
    delete_model_version(
        actor=contributor, version=create_model_version(actor=contributor, model=model, run=run)
    )

    with pytest.raises(AlreadyExists) as error:
        create_model_version(actor=contributor, model=model, run=run, number=1)
    assert str(error.value) == "version: registered model 'm' has a version 1"


@pytest.mark.parametrize("number", [0, -2, True])
def test_a_number_that_is_not_positive_is_refused(contributor, number):
    with pytest.raises(InvalidInput) as error:
        create_model_version(
            actor=contributor, model=RegisteredModelFactory(), run=RunFactory(), number=number
        )
    assert str(error.value) == f"version: {number!r} is not a positive version number"
