from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts, roles and API tokens"

    def ready(self) -> None:
        from . import lockouts  # noqa: F401  (connects the lockout audit to django-axes' signal)
