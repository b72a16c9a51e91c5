"""Downloads of the audit trail, shared by the API and the audit page: the export (CSV or JSON
lines, one event per line, chain order, streamed), the checkpoints and the public key."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

from . import selectors
from .chain import EXPORT_COLUMNS, ChainEvent, csv_row, export_record
from .checkpoints import public_key_text
from .hashing import canonical_json
from .models import AuditCheckpoint
from .selectors import EventFilter


class _Line:
    """A file-like sink for csv.writer that hands back each written line instead of storing it."""

    def write(self, text: str) -> str:
        return text


def csv_lines(events: Iterable[ChainEvent]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_COLUMNS)
    for event in events:
        yield writer.writerow(csv_row(event))


def jsonl_lines(events: Iterable[ChainEvent]) -> Iterator[str]:
    for event in events:
        yield canonical_json(export_record(event)) + "\n"


def export_response(*, filters: EventFilter, fmt: str, reader: Any) -> StreamingHttpResponse:
    """The streamed export download of what `reader` may read; shared with the audit page's
    export link."""
    events = selectors.export_events(filters=filters, reader=reader)
    lines, content_type = (
        (csv_lines(events), "text/csv; charset=utf-8")
        if fmt == "csv"
        else (jsonl_lines(events), "application/x-ndjson; charset=utf-8")
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(lines, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.{fmt}"'
    return response


def _jsonl_download(lines, *, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def checkpoints_response() -> StreamingHttpResponse:
    """Every checkpoint as JSON lines, the checkpoint file's own format; shared with the page."""
    return _jsonl_download(
        (row.document + "\n" for row in selectors.all_checkpoints()), filename="audit-checkpoints.jsonl"
    )


def public_key_response() -> HttpResponse:
    response = HttpResponse(public_key_text(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="audit-key.pub"'
    return response


def checkpoint_response(row: AuditCheckpoint) -> StreamingHttpResponse:
    return _jsonl_download(iter([row.document + "\n"]), filename=f"audit-checkpoint-{row.pk}.json")
