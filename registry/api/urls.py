"""Registry resources under /api/v1/models; `route` picks the operation's view by HTTP method.

Model names may contain spaces and dots (not '/'), so `<str:name>` holds any of them once the
client percent-encodes the segment.
"""

from django.urls import path

from config.api import route

from . import permissions, promotions, views, webhooks

app_name = "registry-api"

urlpatterns = [
    path("models", route(get=views.ModelListApi, post=views.ModelCreateApi), name="models"),
    path(
        "models/<str:name>",
        route(get=views.ModelGetApi, patch=views.ModelUpdateApi, delete=views.ModelDeleteApi),
        name="model",
    ),
    path("models/<str:name>/restore", route(post=views.ModelRestoreApi), name="model-restore"),
    path(
        "models/<str:name>/permissions",
        route(get=permissions.ModelPermissionListApi),
        name="model-permissions",
    ),
    path(
        "models/<str:name>/permissions/<str:username>",
        route(
            get=permissions.ModelPermissionGetApi,
            put=permissions.ModelPermissionSetApi,
            delete=permissions.ModelPermissionDeleteApi,
        ),
        name="model-permission",
    ),
    path(
        "models/<str:name>/versions",
        route(get=views.ModelVersionListApi, post=views.ModelVersionCreateApi),
        name="versions",
    ),
    path(
        "models/<str:name>/versions/<str:version>",
        route(
            get=views.ModelVersionGetApi,
            patch=views.ModelVersionUpdateApi,
            delete=views.ModelVersionDeleteApi,
        ),
        name="version",
    ),
    path(
        "models/<str:name>/versions/<str:version>/restore",
        route(post=views.ModelVersionRestoreApi),
        name="version-restore",
    ),
    path(
        "models/<str:name>/versions/<str:version>/stage",
        route(post=views.ModelVersionStageApi),
        name="version-stage",
    ),
    path("models/<str:name>/aliases", route(get=views.ModelAliasListApi), name="aliases"),
    path(
        "models/<str:name>/aliases/<str:alias>",
        route(get=views.ModelAliasGetApi, put=views.ModelAliasSetApi, delete=views.ModelAliasDeleteApi),
        name="alias",
    ),
    path("models/<str:name>/alias-history", route(get=views.AliasHistoryApi), name="alias-history"),
    path("models/<str:name>/holders", route(get=promotions.HoldersAtApi), name="holders"),
    path(
        "models/<str:name>/policy",
        route(get=promotions.PolicyGetApi, put=promotions.PolicySetApi),
        name="policy",
    ),
    path("models/<str:name>/forced-moves", route(post=promotions.ForcedMoveApi), name="forced-moves"),
    path(
        "models/<str:name>/versions/<str:version>/lineage",
        route(get=promotions.LineageApi),
        name="version-lineage",
    ),
    path(
        "promotion-requests",
        route(get=promotions.PromotionRequestListApi, post=promotions.PromotionRequestCreateApi),
        name="promotion-requests",
    ),
    path(
        "promotion-requests/<int:request_id>",
        route(get=promotions.PromotionRequestGetApi),
        name="promotion-request",
    ),
    path(
        "promotion-requests/<int:request_id>/withdraw",
        route(post=promotions.PromotionRequestWithdrawApi),
        name="promotion-request-withdraw",
    ),
    path(
        "promotion-requests/<int:request_id>/reviews",
        route(post=promotions.ReviewCreateApi),
        name="promotion-request-reviews",
    ),
    path("webhooks", route(get=webhooks.WebhookListApi, post=webhooks.WebhookCreateApi), name="webhooks"),
    path(
        "webhooks/<int:webhook_id>",
        route(get=webhooks.WebhookGetApi, patch=webhooks.WebhookUpdateApi, delete=webhooks.WebhookDeleteApi),
        name="webhook",
    ),
    path(
        "webhooks/<int:webhook_id>/rotate-secret",
        route(post=webhooks.WebhookRotateSecretApi),
        name="webhook-rotate-secret",
    ),
    path("webhooks/<int:webhook_id>/test", route(post=webhooks.WebhookPingApi), name="webhook-test"),
    path(
        "webhooks/<int:webhook_id>/deliveries",
        route(get=webhooks.WebhookDeliveryListApi),
        name="webhook-deliveries",
    ),
    path(
        "webhook-deliveries/<int:delivery_id>/redeliver",
        route(post=webhooks.DeliveryRedeliverApi),
        name="webhook-delivery-redeliver",
    ),
]
