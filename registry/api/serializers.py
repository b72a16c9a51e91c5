"""Shapes of registered models, versions, promotion requests and policies, shared by several
registry API views."""

from __future__ import annotations

from rest_framework import serializers

from config.api import StrictCharField
from registry.models import PromotionRequest, ReviewRole, Stage


class RegisteredModelSerializer(serializers.Serializer):
    name = StrictCharField()
    description = StrictCharField()
    tags = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField(help_text="Alias name → version number.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_tags(self, model) -> dict[str, str]:
        return {tag.key: tag.value for tag in model.tags.all()}

    def get_aliases(self, model) -> dict[str, int]:
        return {alias.alias: alias.version.version for alias in model.aliases.all()}


class ModelVersionSerializer(serializers.Serializer):
    """A model version. `context={"bare": True}`: the version is known to have no aliases and no
    tags (one this request has just made without tags), so the answer says so without asking."""

    name = StrictCharField(source="model.name")
    version = serializers.IntegerField()
    run_id = StrictCharField(source="run.uuid")
    experiment_id = serializers.IntegerField(source="run.experiment_id")
    source = StrictCharField()
    description = StrictCharField()
    stage = serializers.ChoiceField(choices=Stage.choices)
    aliases = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    created_by = StrictCharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_aliases(self, version) -> list[str]:
        if self.context.get("bare"):
            return []
        return sorted(alias.alias for alias in version.aliases.all())

    def get_tags(self, version) -> dict[str, str]:
        if self.context.get("bare"):
            return {}
        return {tag.key: tag.value for tag in version.tags.all()}

    def to_representation(self, version) -> dict:
        # Written out rather than walked field by field: every version answer and list comes
        # here, and DRF copies the declared fields for each instance (a third of a version
        # create's Python time). The fields above document the shape; a test holds the two equal.
        created_by = version.created_by
        return {
            "name": version.model.name,
            "version": version.version,
            "run_id": version.run.uuid,
            "experiment_id": version.run.experiment_id,
            "source": version.source,
            "description": version.description,
            "stage": version.stage,
            "aliases": self.get_aliases(version),
            "tags": self.get_tags(version),
            "created_by": created_by.username if created_by is not None else None,
            "created_at": _TIMESTAMP.to_representation(version.created_at),
            "updated_at": _TIMESTAMP.to_representation(version.updated_at),
        }


_TIMESTAMP = serializers.DateTimeField()  # formats as the declared fields do (settings, time zone)


class ReviewSerializer(serializers.Serializer):
    reviewer = StrictCharField(source="reviewer.username")
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    comment = StrictCharField()
    created_at = serializers.DateTimeField()


class PromotionRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = StrictCharField(source="model.name")
    version = serializers.IntegerField(source="version.version")
    label_kind = serializers.ChoiceField(choices=["alias", "stage"])
    label = StrictCharField(source="label_name")
    status = serializers.ChoiceField(choices=PromotionRequest.Status.choices)
    requester = StrictCharField(source="requester.username")
    justification = StrictCharField()
    previous_version = serializers.IntegerField(
        source="previous_version.version", allow_null=True, help_text="Who held the label when it was opened."
    )
    approvals = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    closed_reason = StrictCharField(help_text="Why it ended unapplied (superseded, version deleted).")
    forced = serializers.BooleanField(help_text="An admin's break-glass move, without reviews.")
    forced_reason = StrictCharField()
    reviews = ReviewSerializer(many=True)


class PolicySerializer(serializers.Serializer):
    class KeyMetricSerializer(serializers.Serializer):
        key = StrictCharField()
        goal = serializers.ChoiceField(choices=["max", "min"])

    protected_aliases = serializers.ListField(
        child=StrictCharField(), help_text="Protecting 'production' protects the stage 'Production'."
    )
    required_approvals = serializers.IntegerField(min_value=1)
    review_role = serializers.ChoiceField(choices=ReviewRole.choices)
    key_metrics = KeyMetricSerializer(many=True)
    is_default = serializers.SerializerMethodField(
        help_text="True while the model follows the server's defaults."
    )

    def get_is_default(self, policy) -> bool:
        return policy.pk is None


class HoldingSerializer(serializers.Serializer):
    kind = StrictCharField(help_text="alias or stage")
    name = StrictCharField()
    version = serializers.IntegerField(source="version.version")
    assigned_at = serializers.DateTimeField()
    assigned_by = StrictCharField(source="assigned_by.username", allow_null=True)
    removed_at = serializers.DateTimeField(allow_null=True)
    request = serializers.IntegerField(source="request_id", allow_null=True)
    forced = serializers.SerializerMethodField()

    def get_forced(self, holding) -> bool:
        return bool(holding.request and holding.request.forced)
