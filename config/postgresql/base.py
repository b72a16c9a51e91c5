"""Django's PostgreSQL backend, with its connection health check skipped just after use.

With CONN_HEALTH_CHECKS Django sends `SELECT 1` before the first statement of every request that
reuses a connection, so that one the server closed while it sat idle (a restart, an idle
timeout) is replaced rather than failing the request. On a busy server that is a round trip on
every request for a connection that answered a moment ago: a tenth of an authenticated
`log_metric`'s time. Here the check is skipped when the connection's last request ended without
an error less than `settings.DB_HEALTH_CHECK_WINDOW` seconds ago, as connection pools do (HikariCP
bypasses its alive check for 500 ms after use). A server restart inside that window fails the
one request that meets the dead connection; Django then closes it, and the next request
connects anew.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.known_good_at: float | None = None  # monotonic time a request last ended cleanly on it

    def connect(self) -> None:
        super().connect()
        self.known_good_at = None  # a new connection is checked by connecting; nothing to skip

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and not self.health_check_done
            and self.known_good_at is not None
            and time.monotonic() - self.known_good_at < settings.DB_HEALTH_CHECK_WINDOW
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self) -> None:
        # Called as a request starts and as it ends. At the end, a connection that was used
        # (its check done or skipped) and raised no error is known to work as of now.
        used_cleanly = self.connection is not None and self.health_check_done and not self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if used_cleanly and self.connection is not None:
            self.known_good_at = time.monotonic()
