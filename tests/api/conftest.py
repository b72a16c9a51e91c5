"""Fixtures for the native API tests: a client per persona and a small registry."""

from __future__ import annotations

import pytest

from tests.factories import ModelVersionFactory, RegisteredModelFactory


@pytest.fixture
def contributor_api(api_client_for, contributor):
    return api_client_for(contributor)


@pytest.fixture
def viewer_api(api_client_for, viewer):
    return api_client_for(viewer)


@pytest.fixture
def registered_model(db):
    return RegisteredModelFactory(name="digit classifier.v2")


@pytest.fixture
def model_version(registered_model, run):
    return ModelVersionFactory(model=registered_model, run=run, version=1)
