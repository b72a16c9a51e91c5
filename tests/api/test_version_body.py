"""The native version create reads its commonest body without its serializer: that reading must
give exactly what the serializer gives, and leave every other body, and every error, to it."""

from __future__ import annotations

import pytest

from registry.api.views import ModelVersionCreateApi, _plain_version_body

READ_PLAINLY = [
    {"run_id": "abc"},
    {"run_id": "abc", "source": "s3://bucket/model", "description": "  kept as sent  "},
    {"run_id": "abc", "source": "", "description": "", "tags": []},
    {"run_id": "abc", "description": "line\nbreak\t"},
    {"run_id": "abc", "unknown": 1},  # the serializer ignores fields it does not declare
]
LEFT_TO_THE_SERIALIZER = [
    {},
    {"run_id": ""},
    {"run_id": "   "},
    {"run_id": " abc"},
    {"run_id": "abc\n"},
    {"run_id": 5},
    {"run_id": True},
    {"run_id": None},
    {"run_id": "a\x00c"},
    {"run_id": "abc", "source": " padded "},
    {"run_id": "abc", "description": "naïve"},
    {"run_id": "abc", "description": None},
    {"run_id": "abc", "tags": None},
    {"run_id": "abc", "tags": "x"},
    {"run_id": "abc", "tags": [{"key": "k", "value": "v"}]},
    ["run_id", "abc"],
]


@pytest.mark.parametrize("body", READ_PLAINLY)
def test_a_plain_body_reads_as_the_serializer_validates_it(body):
    serializer = ModelVersionCreateApi.InputSerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    assert _plain_version_body(body) == dict(serializer.validated_data)


@pytest.mark.parametrize("body", LEFT_TO_THE_SERIALIZER)
def test_any_other_body_is_left_to_the_serializer(body):
    assert _plain_version_body(body) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"run_id": ""}, "run_id: This field may not be blank."),
        ({}, "run_id: This field is required."),
        ({"run_id": "a\x00c"}, "run_id: Null characters are not allowed."),
    ],
)
def test_errors_keep_the_serializers_words(contributor_api, body, message):
    response = contributor_api.post("/api/v1/models/digits/versions", body, format="json")
    assert response.status_code == 400
    assert response.json()["message"] == message
