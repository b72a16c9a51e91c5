"""Reviewed promotions over the API: requests, reviews, a model's policy, break-glass moves,
a version's lineage and which versions held each label at a moment."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from config.api import ApiView, StrictCharField
from registry import selectors, services
from registry.api.serializers import (
    HoldingSerializer,
    ModelVersionSerializer,
    PolicySerializer,
    PromotionRequestSerializer,
    ReviewSerializer,
)
from registry.models import Label, PromotionRequest, Review

MAX_LISTED = 1000


def _shown(request_id: int, user) -> dict:
    return PromotionRequestSerializer(selectors.get_promotion_request(request_id=request_id, user=user)).data


class LabelInputSerializer(serializers.Serializer):
    """A label is an alias or a legacy stage: exactly one of the two."""

    alias = StrictCharField(required=False)
    stage = StrictCharField(required=False, help_text="Only 'Production' can be protected.")

    def validate(self, attrs):
        if ("alias" in attrs) == ("stage" in attrs):
            raise serializers.ValidationError({"alias": "give either an alias or a stage"})
        return attrs


def _label(data) -> Label:
    return Label.alias(data["alias"]) if "alias" in data else Label.stage(data["stage"])


class PromotionRequestListApi(ApiView):
    """Promotion requests, newest first, filtered by model, status, version and label."""

    error_responses = {404: "The model (or its version) does not exist."}

    class FilterSerializer(serializers.Serializer):
        model = StrictCharField(required=False, help_text="A registered model's name.")
        status = serializers.ChoiceField(choices=PromotionRequest.Status.choices, required=False)
        version = serializers.IntegerField(required=False, min_value=1, help_text="Needs `model`.")
        label = StrictCharField(required=False, help_text="An alias or stage name.")
        requester = StrictCharField(required=False, help_text="The requester's user name.")
        limit = serializers.IntegerField(min_value=1, max_value=MAX_LISTED, default=100)
        page_token = StrictCharField(required=False, help_text="next_page_token of the page before.")

        def validate(self, attrs):
            if "version" in attrs and "model" not in attrs:
                raise serializers.ValidationError({"version": "filtering by version needs a model"})
            return attrs

    class OutputSerializer(serializers.Serializer):
        requests = PromotionRequestSerializer(many=True)
        next_page_token = StrictCharField(allow_null=True, help_text="Null on the last page.")

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        model = (
            selectors.get_registered_model(user=request.user, name=data["model"], field="model")
            if "model" in data
            else None
        )
        version = (
            selectors.get_model_version(model=model, version=data["version"]) if "version" in data else None
        )
        requests = selectors.list_promotion_requests(
            user=request.user,
            model=model,
            status=data.get("status"),
            version_id=version.pk if version else None,
            label_name=data.get("label"),
            requester=data.get("requester"),
            page_token=data.get("page_token"),
        ).prefetch_related(Prefetch("reviews", queryset=Review.objects.select_related("reviewer")))
        limit = data["limit"]
        page = list(requests[: limit + 1])
        next_token = selectors.request_page_token(page[limit - 1]) if len(page) > limit else None
        return Response(self.OutputSerializer({"requests": page[:limit], "next_page_token": next_token}).data)


class PromotionRequestCreateApi(ApiView):
    """Ask for a version to take a protected alias (or the Production stage); reviewers decide."""

    error_responses = {404: "The model (or its version) does not exist."}

    class InputSerializer(LabelInputSerializer):
        model = StrictCharField()
        version = serializers.IntegerField(min_value=1)
        justification = StrictCharField(trim_whitespace=False, max_length=5000)

    @extend_schema(request=InputSerializer, responses={201: PromotionRequestSerializer})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        model = selectors.get_registered_model(user=request.user, name=data["model"], field="model")
        opened = services.request_promotion(
            actor=request.user,
            version=selectors.get_model_version(model=model, version=data["version"]),
            label=_label(data),
            justification=data["justification"],
        )
        return Response(_shown(opened.pk, request.user), status=status.HTTP_201_CREATED)


class PromotionRequestGetApi(ApiView):
    """One request with its reviews."""

    @extend_schema(responses=PromotionRequestSerializer)
    def get(self, request, request_id):
        return Response(_shown(request_id, request.user))


class PromotionRequestWithdrawApi(ApiView):
    """The requester takes a pending request back."""

    @extend_schema(request=None, responses=PromotionRequestSerializer)
    def post(self, request, request_id):
        found = selectors.get_promotion_request(request_id=request_id, user=request.user)
        services.withdraw_promotion(actor=request.user, request=found)
        return Response(_shown(found.pk, request.user))


class ReviewCreateApi(ApiView):
    """Approve or reject a request (a rejection needs a comment); the approval that reaches the
    policy's number moves the label at once. The requester and the source run's author cannot."""

    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=Review.Decision.choices)
        comment = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=5000, default="")

    class OutputSerializer(serializers.Serializer):
        review = ReviewSerializer()
        request = PromotionRequestSerializer()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, request_id):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        found = selectors.get_promotion_request(request_id=request_id, user=request.user)
        services.review_promotion(
            actor=request.user,
            request=found,
            decision=body.validated_data["decision"],
            comment=body.validated_data["comment"],
        )
        shown = selectors.get_promotion_request(request_id=found.pk, user=request.user)
        review = next(r for r in shown.reviews.all() if r.reviewer_id == request.user.pk)
        return Response(self.OutputSerializer({"review": review, "request": shown}).data, status=201)


class PolicyGetApi(ApiView):
    """A model's promotion policy (the server's defaults until an admin sets one)."""

    @extend_schema(responses=PolicySerializer)
    def get(self, request, name):
        model = selectors.get_registered_model(user=request.user, name=name)
        return Response(PolicySerializer(selectors.policy_for(model=model)).data)


class PolicySetApi(ApiView):
    """Set what a model protects, how many approvals it needs and who reviews; admins only.
    Fields left out keep their current value."""

    class InputSerializer(serializers.Serializer):
        protected_aliases = serializers.ListField(child=StrictCharField(), required=False, max_length=100)
        required_approvals = serializers.IntegerField(required=False)
        review_role = StrictCharField(required=False)
        key_metrics = serializers.JSONField(required=False, help_text='[{"key": "val_f1", "goal": "max"}]')

    @extend_schema(request=InputSerializer, responses=PolicySerializer)
    def put(self, request, name):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = services.set_promotion_policy(
            actor=request.user,
            model=selectors.get_registered_model(user=request.user, name=name),
            **body.validated_data,
        )
        return Response(PolicySerializer(policy).data)


class ForcedMoveApi(ApiView):
    """Break-glass: an admin moves a protected label without reviews, with a mandatory reason;
    it is recorded as a forced request and shown as such wherever the move appears."""

    class InputSerializer(LabelInputSerializer):
        version = serializers.IntegerField(min_value=1)
        reason = StrictCharField(trim_whitespace=False, max_length=5000)

    @extend_schema(request=InputSerializer, responses={201: PromotionRequestSerializer})
    def post(self, request, name):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        model = selectors.get_registered_model(user=request.user, name=name)
        forced = services.force_move(
            actor=request.user,
            model=model,
            label=_label(data),
            version=selectors.get_model_version(model=model, version=data["version"]),
            reason=data["reason"],
        )
        return Response(_shown(forced.pk, request.user), status=status.HTTP_201_CREATED)


class LineageApi(ApiView):
    """Why this version: its run, who registered it, every request and review, each label it
    holds or held."""

    class OutputSerializer(serializers.Serializer):
        version = ModelVersionSerializer()
        run_id = StrictCharField(source="run.uuid")
        run_name = StrictCharField(source="run.name")
        run_user = StrictCharField(source="run.user.username", allow_null=True)
        registered_by = StrictCharField(source="registered_by.username", allow_null=True)
        registered_at = serializers.DateTimeField()
        requests = PromotionRequestSerializer(many=True)
        holdings = HoldingSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, name, version):
        model = selectors.get_registered_model(user=request.user, name=name)
        lineage = selectors.lineage_of(version=selectors.get_model_version(model=model, version=version))
        return Response(self.OutputSerializer(lineage).data)


class HoldersAtApi(ApiView):
    """Which version held each alias and stage at a moment (a holding covers [assigned, removed))."""

    class FilterSerializer(serializers.Serializer):
        at = serializers.DateTimeField(help_text="ISO 8601, e.g. 2026-12-01T09:30:00Z")

    class OutputSerializer(serializers.Serializer):
        at = serializers.DateTimeField()
        holders = HoldingSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request, name):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        at = query.validated_data["at"]
        holders = selectors.alias_holders_at(
            model=selectors.get_registered_model(user=request.user, name=name), at=at
        )
        return Response(self.OutputSerializer({"at": at, "holders": holders}).data)
