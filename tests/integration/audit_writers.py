"""Audit writers in their own processes, for tests/integration/test_sealed_chain.py.

`python -m tests.integration.audit_writers burst WORKER THREADS TRANSACTIONS` runs THREADS
threads, each on its own connection, each committing or rolling back TRANSACTIONS transactions of
one or two events, and prints one JSON line: the object ids of the events that committed.

`python -m tests.integration.audit_writers hold` reads commands from stdin, one per line, and
answers each on stdout: `xid` (the open transaction takes a transaction id, as any earlier write
would), `event NAME` (records an event, answers its sequence), `commit`, `rollback`. The
transaction stays open between commands, which is how a test leaves one in flight or kills it.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.db import connection, connections, transaction  # noqa: E402

from audit.services import record_event  # noqa: E402

WRITER_TYPE = "test.writer"


class RolledBack(Exception):
    pass


def _record(name: str) -> int:
    return record_event(actor=None, action="test.written", object_type=WRITER_TYPE, object_id=name).sequence


def _thread(worker: int, thread: int, transactions: int, committed: list[str]) -> None:
    rng = random.Random(worker * 1000 + thread)
    try:
        for index in range(transactions):
            names = [f"w{worker}-t{thread}-x{index}-e{n}" for n in range(1 + (index % 3 == 0))]
            try:
                with transaction.atomic():
                    for name in names:
                        _record(name)
                        # Hold the transaction a little, so numbers commit out of order.
                        time.sleep(rng.random() * 0.004)
                    if index % 4 == 3:
                        raise RolledBack
            except RolledBack:
                continue
            committed.extend(names)
    finally:
        connections.close_all()


def burst(worker: int, threads: int, transactions: int) -> None:
    committed: list[str] = []
    runners = [
        threading.Thread(target=_thread, args=(worker, thread, transactions, committed))
        for thread in range(threads)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    print(json.dumps(committed), flush=True)


def hold() -> None:
    transaction.set_autocommit(False)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "xid":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id()")
                answer = str(cursor.fetchone()[0])
        elif command == "event":
            answer = str(_record(argument))
        elif command == "commit":
            transaction.commit()
            answer = "committed"
        elif command == "rollback":
            transaction.rollback()
            answer = "rolled back"
        else:
            answer = f"unknown command {command!r}"
        print(answer, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "burst":
        burst(*(int(arg) for arg in sys.argv[2:5]))
    else:
        hold()
