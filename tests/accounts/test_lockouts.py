"""Repeated failed logins are throttled (django-axes) on the login page and for Basic credentials
on the MLflow API, each lockout is audited once, and `unlock_login` lifts one."""

from __future__ import annotations

import base64

from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent

PASSWORD = "correct horse battery staple"
LIMIT = 5  # LOGIN_FAILURE_LIMIT's default
SERVER_INFO = "/api/3.0/mlflow/server-info"


def _basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _log_in(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def _lockout_events(username: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="user.login_locked_out", object_id=username))


def test_login_page_locks_a_username_out_after_five_failures_even_for_the_right_password(contributor):
    client = Client()
    failures = [_log_in(client, contributor.username, "wrong") for _ in range(LIMIT)]

    right_password = _log_in(client, contributor.username, PASSWORD)

    assert [r.status_code for r in failures] == [200] * (LIMIT - 1) + [429]
    assert right_password.status_code == 429
    assert "_auth_user_id" not in client.session
    message = (
        f"Too many failed logins for {contributor.username!r} from this address: try again in 15 minutes, "
        "or ask an administrator to unlock it."
    )
    assert message in right_password.content.decode().replace("&#x27;", "'")


def test_lockout_is_audited_once_however_often_the_client_retries(contributor):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(LIMIT + 3):
        _log_in(client, contributor.username, "wrong")

    events = _lockout_events(contributor.username)

    assert len(events) == 1
    assert events[0].actor_name == "system"
    assert events[0].after == {
        "ip_address": "203.0.113.7",
        "path": "/accounts/login/",
        "failures": LIMIT,
        "cooloff_minutes": 15,
    }


def test_a_lockout_holds_one_address_only(contributor):
    for _ in range(LIMIT):
        _log_in(Client(REMOTE_ADDR="203.0.113.7"), contributor.username, "wrong")

    elsewhere = Client(REMOTE_ADDR="198.51.100.2")
    response = _log_in(elsewhere, contributor.username, PASSWORD)

    assert response.status_code == 302
    assert elsewhere.session["_auth_user_id"] == str(contributor.pk)


def test_a_successful_login_forgets_earlier_failures(contributor):
    client = Client()
    for _ in range(LIMIT - 1):
        _log_in(client, contributor.username, "wrong")
    assert _log_in(client, contributor.username, PASSWORD).status_code == 302
    client.logout()

    after = [_log_in(client, contributor.username, "wrong").status_code for _ in range(LIMIT - 1)]

    assert after == [200] * (LIMIT - 1)


def test_unlock_login_command_lifts_the_lockout_and_is_audited(contributor, capsys):
    client = Client()
    for _ in range(LIMIT):
        _log_in(client, contributor.username, "wrong")

    call_command("unlock_login", contributor.username)

    assert (
        capsys.readouterr().out
        == f"{contributor.username} may log in again (1 failed-login record(s) removed).\n"
    )
    assert _log_in(client, contributor.username, PASSWORD).status_code == 302
    unlocked = AuditEvent.objects.get(action="user.login_unlocked")
    assert (unlocked.object_id, unlocked.after) == (contributor.username, {"attempts_removed": 1})


def test_unlock_login_of_a_user_without_failures_says_so(db, capsys):
    call_command("unlock_login", "nobody-locked")

    assert capsys.readouterr().out == "nobody-locked had no failed logins recorded; nothing to unlock.\n"
    assert not AuditEvent.objects.filter(action="user.login_unlocked").exists()


def test_basic_credentials_on_the_mlflow_api_are_throttled_too(contributor):
    client = Client()
    failures = [client.get(SERVER_INFO, headers=_basic(contributor.username, "wrong")) for _ in range(LIMIT)]

    right_password = client.get(SERVER_INFO, headers=_basic(contributor.username, PASSWORD))

    assert [r.status_code for r in failures] == [401] * (LIMIT - 1) + [403]
    assert right_password.status_code == 403
    assert right_password.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": (
            f"Too many failed logins for {contributor.username!r} from this address: try again in 15 "
            "minutes, or ask an administrator to unlock it."
        ),
    }
    assert len(_lockout_events(contributor.username)) == 1
    assert _lockout_events(contributor.username)[0].after["path"] == SERVER_INFO


def test_login_page_and_api_failures_count_together(contributor):
    client = Client()
    for _ in range(LIMIT - 1):
        client.get(SERVER_INFO, headers=_basic(contributor.username, "wrong"))

    response = _log_in(client, contributor.username, "wrong")

    assert response.status_code == 429


def test_the_limit_comes_from_settings(settings, contributor):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()

    statuses = [_log_in(client, contributor.username, "wrong").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_a_remembered_right_password_is_refused_while_the_username_is_locked_out(contributor):
    client = Client()
    search = "/api/2.0/mlflow/experiments/search"
    before = client.get(search, headers=_basic(contributor.username, PASSWORD))  # remembered now
    for _ in range(LIMIT):
        client.get(search, headers=_basic(contributor.username, "wrong"))

    right_password = client.get(search, headers=_basic(contributor.username, PASSWORD))

    assert before.status_code == 200
    assert right_password.status_code == 403
    assert right_password.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": (
            f"Too many failed logins for {contributor.username!r} from this address: try again in 15 "
            "minutes, or ask an administrator to unlock it."
        ),
    }
    assert _log_in(client, contributor.username, PASSWORD).status_code == 429


def test_a_remembered_right_password_works_again_once_the_lockout_is_lifted(contributor):
    client = Client()
    client.get(SERVER_INFO, headers=_basic(contributor.username, PASSWORD))
    for _ in range(LIMIT):
        client.get(SERVER_INFO, headers=_basic(contributor.username, "wrong"))

    call_command("unlock_login", contributor.username)

    assert client.get(SERVER_INFO, headers=_basic(contributor.username, PASSWORD)).status_code == 200
