# Lab Ledger web and worker image (the team topology in docker-compose.yml uses it for both).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    LABLEDGER_VAR_DIR=/app/var \
    ARTIFACT_ROOT=/data/artifacts \
    WEB_CONCURRENCY=4

WORKDIR /app

# A fixed, unprivileged account; the app never runs as root.
RUN groupadd --system --gid 10001 labledger \
    && useradd --system --uid 10001 --gid labledger --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin labledger

# Dependencies first, so code changes reuse this layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Static files are collected at build time, with throwaway settings that exist only for this
# step: the real SECRET_KEY and database come from the environment at run time. /app/var holds
# the collected static files; /data/artifacts is where the artifact volume is mounted. Both
# belong to the app user so that `collectstatic` on start and artifact writes work.
RUN SECRET_KEY=collectstatic-only-not-a-real-secret-but-long-enough-for-the-check \
    REDIS_URL=redis://collectstatic-only.invalid:6379/0 \
    DEBUG=false \
    ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    ALLOW_SQLITE_IN_PRODUCTION=true \
    AUDIT_SIGNING_KEY_FILE=/nonexistent/collectstatic-only.pem \
    AUDIT_CHECKPOINT_FILE=/nonexistent/collectstatic-only.jsonl \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/collectstatic.sqlite3* \
    && mkdir -p /data/artifacts \
    && chown -R labledger:labledger /app/var /data/artifacts

USER labledger
EXPOSE 8000

# /healthz needs no login. Django answers 400 to a Host header outside ALLOWED_HOSTS, so the
# probe sends the first allowed host (a "*" or ".domain" entry is turned into a valid name).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; h = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); h = h if h and h != '*' else 'localhost'; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8000/healthz', headers={'Host': h}), timeout=4)"]

# gunicorn reads its worker count from WEB_CONCURRENCY. Override the command for other roles:
# `celery -A config worker`, `python manage.py createsuperuser`, ...
# gthread workers keep client connections alive (training scripts send many small requests).
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "4", \
     "--timeout", "120", "--access-logfile", "-"]
