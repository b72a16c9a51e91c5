"""The one error an uploaded file's content raises: where it is (line, column) and why."""

from __future__ import annotations

from config.exceptions import InvalidInput


class RowError(InvalidInput):
    """A bad cell, line or header; `location` is "line 12" (or "row 12", "event 12")."""

    def __init__(self, message: str, *, location: str, column: str) -> None:
        field = f"{location}, column {column}" if column else location
        super().__init__(message, field=field)
        self.location = location
        self.column = column

    @property
    def line(self) -> int | None:
        number = self.location.rsplit(" ", 1)[-1]
        return int(number) if number.isdigit() else None
