"""The model registry over the API: models, versions, aliases, stages and their history."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from registry.api.serializers import ModelVersionSerializer
from registry.models import ModelAlias, ModelVersion, ModelVersionTag, RegisteredModel, Stage
from tests.api.api_helpers import error, url

MODEL = "digit classifier.v2"  # spaces and dots travel percent-encoded in the path


@pytest.fixture
def two_versions(contributor_api, registered_model, run):
    for _ in range(2):
        response = contributor_api.post(
            url("models/{name}/versions", name=MODEL), {"run_id": run.uuid}, format="json"
        )
        assert response.status_code == 201
    return registered_model


def test_contributor_registers_a_model(contributor_api):
    response = contributor_api.post(
        "/api/v1/models",
        {"name": "fraud model", "description": "gbm", "tags": [{"key": "owner", "value": "risk"}]},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["description"], body["tags"], body["aliases"]) == (
        "fraud model",
        "gbm",
        {"owner": "risk"},
        {},
    )


def test_duplicate_model_name_is_a_409(contributor_api, registered_model):
    response = contributor_api.post("/api/v1/models", {"name": MODEL}, format="json")

    assert response.status_code == 409
    assert error(response) == {
        "error_code": "RESOURCE_ALREADY_EXISTS",
        "message": f"name: registered model {MODEL!r} already exists",
        "field": "name",
    }


def test_model_name_with_a_slash_is_a_400(contributor_api, db):
    response = contributor_api.post("/api/v1/models", {"name": "team/model"}, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == "name: 'team/model' must not contain '/', ':' or '@'"


def test_model_with_spaces_and_dots_is_found_by_its_encoded_name(viewer_api, registered_model):
    response = viewer_api.get(url("models/{name}", name=MODEL))

    assert response.status_code == 200
    assert response.json()["name"] == MODEL


def test_unknown_model_is_a_404(viewer_api, db):
    response = viewer_api.get(url("models/{name}/versions", name="ghost"))

    assert response.status_code == 404
    assert error(response) == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "name: registered model 'ghost' does not exist",
        "field": "name",
    }


def test_versions_are_numbered_and_point_at_their_run(viewer_api, two_versions, run):
    versions = viewer_api.get(url("models/{name}/versions", name=MODEL)).json()["versions"]
    second = viewer_api.get(url("models/{name}/versions/{v}", name=MODEL, v=2)).json()

    assert [v["version"] for v in versions] == [2, 1]
    assert second["run_id"] == run.uuid
    assert second["experiment_id"] == run.experiment_id
    assert second["created_by"] == "carl-contributor"
    assert second["source"] == f"{run.artifact_uri}/model"
    assert second["stage"] == "None"


def test_version_for_an_unknown_run_is_a_404(contributor_api, registered_model):
    response = contributor_api.post(
        url("models/{name}/versions", name=MODEL), {"run_id": "f" * 32}, format="json"
    )

    assert response.status_code == 404
    assert error(response)["field"] == "run_id"


def test_unknown_or_malformed_version_numbers(viewer_api, two_versions):
    missing = viewer_api.get(url("models/{name}/versions/{v}", name=MODEL, v=9))
    malformed = viewer_api.get(url("models/{name}/versions/{v}", name=MODEL, v="latest"))

    assert missing.status_code == 404
    assert error(missing)["message"] == f"version: registered model {MODEL!r} has no version 9"
    assert malformed.status_code == 400
    assert error(malformed)["message"] == "version: 'latest' is not a version number"
    assert viewer_api.get(url("models/{name}/versions/{v}", name=MODEL, v=10**30)).status_code == 404


def test_alias_is_set_read_moved_and_removed(contributor_api, two_versions):
    alias_url = url("models/{name}/aliases/{alias}", name=MODEL, alias="champion")

    set_to_1 = contributor_api.put(alias_url, {"version": 1}, format="json")
    moved_to_2 = contributor_api.put(alias_url, {"version": 2}, format="json")
    read = contributor_api.get(alias_url)
    listing = contributor_api.get(url("models/{name}/aliases", name=MODEL)).json()["aliases"]
    model = contributor_api.get(url("models/{name}", name=MODEL)).json()
    removed = contributor_api.delete(alias_url)

    assert set_to_1.json()["aliases"] == ["champion"]
    assert moved_to_2.json()["version"] == 2
    assert read.json()["version"] == 2
    assert [(a["alias"], a["version"]) for a in listing] == [("champion", 2)]
    assert model["aliases"] == {"champion": 2}
    assert removed.status_code == 204
    assert not ModelAlias.objects.exists()
    assert contributor_api.get(alias_url).status_code == 404


@pytest.mark.parametrize(
    ("alias", "body", "status", "message"),
    [
        (
            "latest",
            {"version": 1},
            400,
            "alias: 'latest' is reserved ('latest' and 'v<number>' name versions)",
        ),
        ("prod!", {"version": 1}, 400, "alias: 'prod!' may only contain letters, digits, '_' and '-'"),
        (
            "production\n",
            {"version": 1},
            400,
            "alias: 'production\\n' may only contain letters, digits, '_' and '-'",
        ),
        ("prod", {"version": 7}, 404, f"version: registered model {MODEL!r} has no version 7"),
        ("prod", {"version": "two"}, 400, "version: A valid integer is required."),
        ("prod", {}, 400, "version: This field is required."),
    ],
)
def test_bad_alias_requests(contributor_api, two_versions, alias, body, status, message):
    response = contributor_api.put(
        url("models/{name}/aliases/{alias}", name=MODEL, alias=alias), body, format="json"
    )

    assert response.status_code == status
    assert error(response)["message"] == message


def test_stage_transition_archives_the_versions_already_there(contributor_api, two_versions):
    stage_url = "models/{name}/versions/{v}/stage"
    contributor_api.post(url(stage_url, name=MODEL, v=1), {"stage": "staging"}, format="json")

    response = contributor_api.post(
        url(stage_url, name=MODEL, v=2),
        {"stage": "Staging", "archive_existing_versions": True},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["stage"] == "Staging"
    stages = dict(two_versions.versions.values_list("version", "stage"))
    assert stages == {1: Stage.ARCHIVED, 2: Stage.STAGING}


def test_unknown_stage_is_a_400(contributor_api, two_versions):
    response = contributor_api.post(
        url("models/{name}/versions/{v}/stage", name=MODEL, v=1), {"stage": "Live"}, format="json"
    )

    assert response.status_code == 400
    assert error(response)["message"] == "stage: 'Live' is not one of None, Staging, Production, Archived"


def test_alias_history_says_who_moved_what_and_when(contributor_api, two_versions):
    alias_url = url("models/{name}/aliases/{alias}", name=MODEL, alias="champion")
    contributor_api.put(alias_url, {"version": 1}, format="json")
    contributor_api.put(alias_url, {"version": 2}, format="json")
    contributor_api.post(
        url("models/{name}/versions/{v}/stage", name=MODEL, v=2), {"stage": "Staging"}, format="json"
    )

    history = contributor_api.get(url("models/{name}/alias-history", name=MODEL)).json()["history"]

    rows = [(h["kind"], h["name"], h["version"], h["assigned_by"], h["removed_at"] is None) for h in history]
    assert sorted(rows) == [
        ("alias", "champion", 1, "carl-contributor", False),
        ("alias", "champion", 2, "carl-contributor", True),
        ("stage", "Staging", 2, "carl-contributor", True),
    ]


def test_patch_describes_and_renames_a_model(contributor_api, registered_model):
    response = contributor_api.patch(
        url("models/{name}", name=MODEL), {"description": "cnn", "new_name": "digits cnn"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("digits cnn", "cnn")
    assert contributor_api.get(url("models/{name}", name="digits cnn")).status_code == 200


def test_a_refused_rename_leaves_the_description_unchanged(contributor_api, registered_model):
    RegisteredModel.objects.create(name="taken")

    response = contributor_api.patch(
        url("models/{name}", name=MODEL), {"description": "cnn", "new_name": "taken"}, format="json"
    )

    assert response.status_code == 409
    assert error(response)["message"] == "new_name: registered model 'taken' already exists"
    registered_model.refresh_from_db()
    assert registered_model.description == ""


def test_version_description_is_updated_and_versions_deleted(contributor_api, two_versions):
    version_url = url("models/{name}/versions/{v}", name=MODEL, v=1)

    patched = contributor_api.patch(version_url, {"description": "baseline"}, format="json")
    deleted = contributor_api.delete(version_url)

    assert patched.json()["description"] == "baseline"
    assert deleted.status_code == 204
    assert list(two_versions.versions.values_list("version", flat=True)) == [2]


def test_deleting_a_model_deletes_its_versions(contributor_api, two_versions):
    response = contributor_api.delete(url("models/{name}", name=MODEL))

    assert response.status_code == 204
    assert not RegisteredModel.objects.filter(name=MODEL).exists()


def test_model_list_query_count_does_not_grow_with_the_models(
    viewer_api, contributor_api, run, django_assert_max_num_queries
):
    for index in range(10):
        name = f"model {index}"
        contributor_api.post("/api/v1/models", {"name": name}, format="json")
        contributor_api.post(url("models/{name}/versions", name=name), {"run_id": run.uuid}, format="json")
        contributor_api.put(
            url("models/{name}/aliases/{a}", name=name, a="prod"), {"version": 1}, format="json"
        )
    viewer_api.get("/api/v1/me")

    with django_assert_max_num_queries(6):
        response = viewer_api.get("/api/v1/models")

    models = response.json()["models"]
    assert len(models) == 10
    assert models[0]["aliases"] == {"prod": 1}
    assert models[0]["version_count"] == 1


def test_a_versions_written_out_answer_is_what_its_declared_fields_give(contributor, two_versions):
    """ModelVersionSerializer writes its answer out by hand for speed; walking its declared
    fields, as DRF would, gives the same, for a version with aliases, tags and a creator and
    for one without a creator."""
    first, second = ModelVersion.objects.filter(model=two_versions).order_by("version")
    ModelAlias.objects.create(model=two_versions, alias="champion", version=first)
    ModelAlias.objects.create(model=two_versions, alias="baseline", version=first)
    ModelVersionTag.objects.create(version=first, key="<b>owner</b>", value="risk & ops")
    ModelVersion.objects.filter(pk=second.pk).update(created_by=None, stage=Stage.STAGING)
    for version in ModelVersion.objects.filter(model=two_versions):
        serializer = ModelVersionSerializer()
        walked = serializers.Serializer.to_representation(serializer, version)
        assert serializer.to_representation(version) == walked
        assert list(serializer.to_representation(version)) == list(walked)  # the same key order


def test_a_new_versions_answer_is_the_one_a_read_gives(contributor_api, registered_model, run):
    """A registration answers with its version's empty aliases and tags without reading them
    (ModelVersionSerializer's `bare`), with tags it reads them: either way, as a read answers."""
    path = url("models/{name}/versions", name=MODEL)
    for body in ({"run_id": run.uuid}, {"run_id": run.uuid, "tags": [{"key": "k", "value": "v"}]}):
        created = contributor_api.post(path, body, format="json")
        assert created.status_code == 201
        number = created.json()["version"]
        read = contributor_api.get(url("models/{name}/versions/{v}", name=MODEL, v=number))
        assert created.json() == read.json()
        assert (read.json()["aliases"], read.json()["tags"]) == (
            [],
            {t["key"]: t["value"] for t in body.get("tags", [])},
        )
