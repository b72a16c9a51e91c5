from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Experiment tracking"

    def ready(self) -> None:
        from .permissions import register_audit_visibility

        register_audit_visibility()
