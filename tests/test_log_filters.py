"""A refusal (403) is logged as one warning line, without the traceback Django attaches."""

from __future__ import annotations

import logging
import sys

import pytest

from config.log_filters import RefusalsWithoutTraceback

pytestmark = pytest.mark.django_db


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RefusalsWithoutTraceback())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


def test_a_403_is_logged_without_a_traceback_and_a_500_keeps_its_own():
    kept = _Kept()
    logger = logging.getLogger("django.request")
    logger.addHandler(kept)
    try:
        try:
            raise PermissionError("refused")
        except PermissionError:
            logger.warning("Forbidden (Permission denied): /x", exc_info=True, extra={"status_code": 403})
            logger.error("Internal Server Error: /y", exc_info=True, extra={"status_code": 500})
    finally:
        logger.removeHandler(kept)
    forbidden, failed = kept.lines
    assert forbidden == "Forbidden (Permission denied): /x"
    assert failed.startswith("Internal Server Error: /y\nTraceback")


def test_the_servers_console_handler_drops_a_refusals_traceback():
    """The settings' LOGGING, as Django configured it for this process."""
    console = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    try:
        raise PermissionError("refused")
    except PermissionError:
        record = logging.getLogger("django.request").makeRecord(
            "django.request",
            logging.WARNING,
            __file__,
            1,
            "Forbidden",
            (),
            sys.exc_info(),
            extra={"status_code": 403},
        )
    assert console.filter(record) and record.exc_info is None
