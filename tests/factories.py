"""factory_boy factories for tests; they write through the ORM, not the services."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from registry.models import ModelVersion, RegisteredModel
from tracker.models import DatasetInput, Experiment, Run


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("correct horse battery staple")


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    name = factory.Sequence(lambda n: f"experiment-{n}")


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    experiment = factory.SubFactory(ExperimentFactory)
    name = factory.Sequence(lambda n: f"run-{n}")
    start_time = factory.LazyFunction(timezone.now)


class DatasetInputFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DatasetInput

    run = factory.SubFactory(RunFactory)
    name = "digits"
    digest = factory.Sequence(lambda n: f"{n:064x}")
    version = "1.0"
    context = "training"


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RegisteredModel

    name = factory.Sequence(lambda n: f"model-{n}")


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    model = factory.SubFactory(RegisteredModelFactory)
    version = factory.Sequence(lambda n: n + 1)
    run = factory.SubFactory(RunFactory)
    source = factory.LazyAttribute(lambda v: f"mlflow-artifacts:/0/{v.run.uuid}/artifacts/model")
