"""A real (small) training loop with mlflow's scikit-learn autologging, unchanged, logging to us."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from tracker.models import Artifact, LoggedModel, Run

pytestmark = pytest.mark.django_db(transaction=True)


def _two_moons(samples: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    angle = rng.uniform(0, np.pi, samples)
    label = rng.integers(0, 2, samples)
    x = np.where(label == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(label == 0, np.sin(angle), 0.5 - np.sin(angle))
    features = np.column_stack([x, y]) + rng.normal(0, 0.1, (samples, 2))
    return features, label


def test_sklearn_autolog_logs_params_metrics_and_the_model(client):
    features, labels = _two_moons()
    x_train, x_test, y_train, y_test = train_test_split(features, labels, random_state=0)
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog(log_input_examples=False, log_model_signatures=True, silent=True)
    try:
        with mlflow.start_run() as active:
            model = LogisticRegression(C=0.5, max_iter=200).fit(x_train, y_train)
            test_accuracy = model.score(x_test, y_test)
    finally:
        mlflow.sklearn.autolog(disable=True)

    run = client.get_run(active.info.run_id)
    assert run.data.params["C"] == "0.5"
    assert run.data.params["max_iter"] == "200"
    assert 0.5 < run.data.metrics["training_accuracy_score"] <= 1.0
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    stored = Run.objects.get(uuid=active.info.run_id)
    logged_model = LoggedModel.objects.get(source_run=stored)
    assert logged_model.status == "LOGGED_MODEL_READY"
    assert Artifact.objects.filter(logged_model=logged_model, path="MLmodel").exists()

    reloaded = mlflow.sklearn.load_model(f"models:/{logged_model.model_id}")
    assert reloaded.score(x_test, y_test) == test_accuracy
