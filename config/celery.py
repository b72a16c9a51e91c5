"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app.

The beat schedule is CELERY_BEAT_SCHEDULE in config/settings/base.py: a signed audit checkpoint
every AUDIT_CHECKPOINT_INTERVAL_SECONDS, an incremental chain check every
AUDIT_VERIFY_INTERVAL_SECONDS and a full one every AUDIT_FULL_VERIFY_INTERVAL_SECONDS. Run one
`celery -A config beat` per deployment (docker-compose.yml's `beat` service).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("labledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
