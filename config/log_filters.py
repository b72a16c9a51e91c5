"""Log filters the settings name."""

from __future__ import annotations

import logging


class RefusalsWithoutTraceback(logging.Filter):
    """A 403 is the permission rules working, not a fault: Django logs each with the exception's
    traceback, which buried real errors in the log. The warning line stays; the traceback goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info, record.exc_text = None, None
        return True
