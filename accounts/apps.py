from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts, roles and API tokens"

    def ready(self) -> None:
        from audit.visibility import show_admins_only

        from . import lockouts  # connects the lockout audit to django-axes' signal

        show_admins_only(actions=lockouts.ACCOUNT_SECURITY_ACTIONS)
