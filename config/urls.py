from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import LogoutView, favicon, healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("config.mlflow_urls")),
    path("api/", include("config.api_urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("favicon.ico", favicon, name="favicon"),
    path("", include("dashboard.urls")),
]
