"""Fixtures for the review workflow: a model whose `production` alias is protected, versions
trained by carl-contributor, and a second reviewer for N-of-M approvals."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from accounts.services import assign_role
from registry.models import Label
from registry.services import (
    create_model_version,
    create_registered_model,
    request_promotion,
    set_promotion_policy,
)
from tests.factories import UserFactory
from tracker.services import start_run

PRODUCTION = Label.alias("production")


@pytest.fixture
def second_reviewer(db):
    user = UserFactory(username="rhea-reviewer")
    assign_role(user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def protected_model(contributor, admin):
    """'digits' with `production` protected and one approval required (the defaults, written down)."""
    model = create_registered_model(actor=contributor, name="digits")
    set_promotion_policy(actor=admin, model=model, protected_aliases=["production"], required_approvals=1)
    return model


@pytest.fixture
def trained_versions(contributor, experiment, protected_model):
    """Three versions, each from a run carl-contributor started (so carl may not review them)."""
    runs = [start_run(actor=contributor, experiment=experiment, name=f"r{i}") for i in range(3)]
    return [create_model_version(actor=contributor, model=protected_model, run=run) for run in runs]


@pytest.fixture
def open_request(requester, trained_versions):
    """rita-requester asks for version 2 → production."""
    return request_promotion(
        actor=requester,
        version=trained_versions[1],
        label=PRODUCTION,
        justification="Better F1 on the holdout.",
    )
