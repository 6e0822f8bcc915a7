"""The store: analytics records in SQLite or PostgreSQL, written in batches, read back as records.

Usage::

    with Store("sqlite:///data/tiltwatch.db") as store:     # or "postgresql://user:pw@host/db"
        run_id = store.start_run("table-7", "rtsp://cam7/stream")
        store.add(observation)                                # buffered; written in batches
        store.upsert_visit(visit)                             # latest version of a visit wins
        store.end_run(run_id)
        alerts = store.alerts(camera="table-7", start=t0, end=t1, kind="tilt")
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from alembic.util import CommandError
from sqlalchemy import ColumnElement, delete, func, insert, select, union, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session

from tiltwatch.analytics.records import Alert, Observation, Visit, ZoneCount
from tiltwatch.errors import ConfigError, StoreError, TiltwatchError

from .engine import is_sqlite_file, make_engine, masked, one_line, parse_url, plain, to_json
from .migrate import upgrade
from .schema import AlertRow, Base, ObservationRow, RunRow, StreamRow, VisitRow, ZoneCountRow

R = TypeVar("R", Observation, Visit, Alert, ZoneCount)
Record = Observation | Alert | ZoneCount

# Append-only records and their tables; visits are upserted separately.
TABLES: dict[type, type[Base]] = {Observation: ObservationRow, Alert: AlertRow, ZoneCount: ZoneCountRow}
KEYS_PER_QUERY = 500  # stays far below every database's limit on bound parameters
DAY_S = 86400.0
EPOCH_TRIES = 3  # a run's epoch taken by a concurrent start: try the next
ABANDONED_S = 600.0  # an open run with nothing written for this long was left by a killed process
HOST = socket.gethostname()
_OWN_RUNS: set[str] = set()  # runs this process started (a restarted container may reuse a pid)


def _writer_gone(run_id: str, host: str | None, pid: int | None) -> bool:
    """Whether the process that writes run ``run_id`` is known to be gone: it ran on this host and
    no process has its pid now, or the pid is this process's own and this process never started it."""
    if host != HOST or pid is None or run_id in _OWN_RUNS:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # (signal 0: only asks whether the process exists)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: it exists
        return False
    return False


def _row(record: Any) -> dict[str, Any]:
    """A snapshot of ``record`` as column values, checked now so one bad record cannot block a batch.

    Lists and dicts go through JSON (a deep copy: later changes to the object do not leak in).
    NaN is refused: SQLite stores it as NULL and PostgreSQL's JSON rejects it.
    """
    row = {}
    for f in fields(record):
        value = plain(getattr(record, f.name))
        try:
            if isinstance(value, list | dict):
                value = json.loads(to_json(value))
            elif isinstance(value, float) and math.isnan(value):
                raise ValueError("NaN")
        except (TypeError, ValueError) as e:
            raise ValueError(f"{type(record).__name__}.{f.name} cannot be stored: {e}") from None
        row[f.name] = value
    return row


def _insert_new(table: type[Base], dialect: str):
    """INSERT that skips rows whose key (the table's unique index) is stored already: a batch written
    again, after a flush whose commit landed but whose answer was lost, adds nothing."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # (other databases: a retried batch fails on the key instead)
        return insert(table)
    return dialect_insert(table).on_conflict_do_nothing()


class Store:
    """Persistent, batched store of :mod:`tiltwatch.analytics.records`.

    ``url`` is any SQLAlchemy URL; ``postgresql://`` uses psycopg 3. The schema is migrated to
    the newest revision on open. Records are buffered and written in one transaction when
    ``batch_size`` are waiting or ``batch_seconds`` have passed since the last write (checked
    on each add), on :meth:`flush` and on :meth:`close`: a process killed loses at most the batch
    not yet written. Appended records are keyed (see ``schema.py``) and inserted with "on conflict
    do nothing", so a batch written twice is stored once. Queries flush first, so they see
    everything added so far. Thread-safe; an in-memory SQLite database is per thread.
    """

    def __init__(
        self,
        url: str = "sqlite:///tiltwatch.db",
        batch_size: int = 200,
        batch_seconds: float = 2.0,
        create: bool = True,
    ) -> None:
        """``create=False``: for commands that only read or delete: an SQLite file that is not there is
        an error (a mistyped path), never a new empty store."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if batch_seconds < 0:
            raise ConfigError(f"batch_seconds must be >= 0, got {batch_seconds}")
        self._url = parse_url(url)
        self.url = masked(self._url)  # safe to show
        if not create and is_sqlite_file(self._url) and not Path(self._url.database).expanduser().is_file():
            raise ConfigError(f"no store at {self._url.database} (a mistyped --db?); nothing was created there")
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self._engine = make_engine(self._url)
        try:
            with self._engine.begin() as connection:
                upgrade(connection, self._url)
        except (SQLAlchemyError, CommandError, OSError) as e:
            self._engine.dispose()
            raise ConfigError(f"cannot open database {self.url}: {one_line(e, self._url)}") from None
        self._rows: dict[type[Base], list[dict[str, Any]]] = {table: [] for table in TABLES.values()}
        self._visits: dict[str, dict[str, Any]] = {}  # by visit_key: the last upsert wins
        self._lock = threading.RLock()
        self._last_write = time.monotonic()
        self._retry_at = 0.0  # after a failed write, adds do not retry before this
        self._closed = False

    def __repr__(self) -> str:
        return f"Store({self.url!r}, pending={self.pending})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs ---------------------------------------------------------------------------------

    def start_run(self, camera: str, source: str) -> str:
        """Record the start of a run now (committed at once) and return its new ``run_id``.

        Runs of the camera that a killed process left open are closed first (:meth:`close_abandoned`)."""
        self.close_abandoned(camera)
        run_id = uuid.uuid4().hex[:12]
        for attempt in range(EPOCH_TRIES):
            try:
                with self._transaction("start a run") as session:
                    last = session.scalar(select(func.max(RunRow.epoch)).where(RunRow.camera == camera)) or 0
                    row = RunRow(
                        run_id=run_id,
                        camera=camera,
                        epoch=last + 1,
                        source=source,
                        started_at=time.time(),
                        host=HOST,
                        pid=os.getpid(),
                    )
                    session.add(row)
                _OWN_RUNS.add(run_id)
                return run_id
            except StoreError:
                if attempt == EPOCH_TRIES - 1:  # (another process took that epoch at the same moment: the next)
                    raise
        raise AssertionError("unreachable")

    def runs(self, camera: str | None = None) -> list[dict[str, Any]]:
        """The runs (of ``camera``, or all) by start: run_id, camera, epoch, source, started_at, ended_at,
        interrupted."""
        self.flush()
        names = ("run_id", "camera", "epoch", "source", "started_at", "ended_at", "interrupted")
        query = select(*(getattr(RunRow, n) for n in names)).order_by(RunRow.started_at, RunRow.run_id)
        if camera is not None:
            query = query.where(RunRow.camera == camera)
        with self._transaction("read runs") as session:
            return [dict(zip(names, row, strict=True)) for row in session.execute(query)]

    def keep_stream(self, spec: dict[str, Any], running: bool = False) -> None:
        """Remember a stream added over the API (``spec``: its request), and whether it runs."""
        with self._transaction("keep a stream") as session:
            session.merge(StreamRow(id=spec["id"], spec=spec, running=running, updated_at=time.time()))

    def stream_running(self, stream_id: str, running: bool) -> None:
        """Record that a kept stream was started or stopped (a stream not kept: nothing)."""
        with self._transaction("record a stream's state") as session:
            session.execute(
                update(StreamRow).where(StreamRow.id == stream_id).values(running=running, updated_at=time.time())
            )

    def forget_stream(self, stream_id: str) -> None:
        with self._transaction("forget a stream") as session:
            session.execute(delete(StreamRow).where(StreamRow.id == stream_id))

    def kept_streams(self) -> list[tuple[dict[str, Any], bool]]:
        """The streams kept by :meth:`keep_stream`, oldest change first: (request, running)."""
        with self._transaction("read the kept streams") as session:
            rows = session.execute(select(StreamRow.spec, StreamRow.running).order_by(StreamRow.updated_at))
            return [(dict(spec), bool(running)) for spec, running in rows]

    def end_run(self, run_id: str, at: float | None = None) -> None:
        """Write what is buffered, then mark ``run_id`` ended at ``at`` (default: now)."""
        self.flush()
        with self._transaction("end a run") as session:
            result = session.execute(
                update(RunRow).where(RunRow.run_id == run_id).values(ended_at=time.time() if at is None else at)
            )
        if result.rowcount == 0:
            raise TiltwatchError(f"no run {run_id!r} in {self.url}")

    def close_abandoned(self, camera: str | None = None, now: float | None = None, quiet_s: float = ABANDONED_S) -> int:
        """Close the runs (of ``camera``, or all) still open whose process was killed: one written on
        this host by a process that is gone, or any with nothing written for ``quiet_s`` (another
        host's cannot be asked). Each ends at its last record and is marked ``interrupted``, with
        its open visits, so that no later report counts them as going on. Returns how many were closed."""
        cutoff = (time.time() if now is None else now) - quiet_s
        self.flush()
        with self._transaction("close abandoned runs") as session:
            runs = session.execute(
                select(RunRow.run_id, RunRow.started_at, RunRow.host, RunRow.pid).where(
                    RunRow.ended_at.is_(None), *([RunRow.camera == camera] if camera is not None else [])
                )
            ).all()
            closed = 0
            for run_id, started, host, pid in runs:
                last = session.scalar(select(func.max(VisitRow.end)).where(VisitRow.run_id == run_id))
                last = max(started, last or started)
                if last >= cutoff and not _writer_gone(run_id, host, pid):
                    continue  # still writing: a live run of another process
                session.execute(update(RunRow).where(RunRow.run_id == run_id).values(ended_at=last, interrupted=True))
                session.execute(
                    update(VisitRow)
                    .where(VisitRow.run_id == run_id, VisitRow.closed.is_(False))
                    .values(closed=True, interrupted=True)
                )
                closed += 1
        return closed

    # --- writing ------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records buffered and not yet written."""
        return sum(map(len, self._rows.values())) + len(self._visits)

    def add(self, record: Record | Visit) -> None:
        """Buffer an :class:`Observation`, :class:`Alert` or :class:`ZoneCount` (a :class:`Visit` is upserted)."""
        if isinstance(record, Visit):
            return self.upsert_visit(record)
        table = TABLES.get(type(record))
        if table is None:
            raise TypeError(f"Store.add takes Observation, Alert, ZoneCount or Visit, not {type(record).__name__}")
        with self._lock:
            self._check_open()
            self._rows[table].append(_row(record))
            self._maybe_flush()

    def upsert_visit(self, visit: Visit) -> None:
        """Buffer ``visit``; on write it replaces the stored row with the same ``visit_key``, if any."""
        with self._lock:
            self._check_open()
            self._visits.pop(visit.visit_key, None)  # re-insert: dict order follows the latest upsert
            self._visits[visit.visit_key] = _row(visit)
            self._maybe_flush()

    def flush(self) -> int:
        """Write the buffer in one transaction and return how many records it held.

        On failure the transaction rolls back, the buffer is kept for the next flush, and
        :class:`TiltwatchError` says why.
        """
        with self._lock:
            count = self.pending
            if count:
                try:
                    with Session(self._engine) as session, session.begin():
                        self._write(session)
                except SQLAlchemyError as e:
                    self._retry_at = time.monotonic() + self.batch_seconds
                    raise TiltwatchError(
                        f"could not write {count} records to {self.url}: {one_line(e, self._url)}"
                    ) from None
                for rows in self._rows.values():
                    rows.clear()
                self._visits.clear()
            self._last_write = time.monotonic()
            self._retry_at = 0.0
            return count

    def close(self) -> None:
        """Write what is buffered and release the database. Closing twice is fine."""
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            except TiltwatchError as e:
                raise TiltwatchError(f"{e}; closed anyway, those records are lost") from None
            finally:
                self._closed = True
                self._engine.dispose()

    def _check_open(self) -> None:
        if self._closed:
            raise TiltwatchError(f"the store {self.url} is closed")

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now >= self._retry_at and (self.pending >= self.batch_size or now - self._last_write >= self.batch_seconds):
            self.flush()

    def _write(self, session: Session) -> None:
        for table, rows in self._rows.items():
            if rows:
                session.execute(_insert_new(table, session.get_bind().dialect.name), rows)
        # Upsert without dialect-specific ON CONFLICT: find which keys exist, update those, insert the rest.
        visits = list(self._visits.values())
        for i in range(0, len(visits), KEYS_PER_QUERY):
            chunk = visits[i : i + KEYS_PER_QUERY]
            keys = [v["visit_key"] for v in chunk]
            existing = set(session.scalars(select(VisitRow.visit_key).where(VisitRow.visit_key.in_(keys))))
            new = [v for v in chunk if v["visit_key"] not in existing]
            old = [v for v in chunk if v["visit_key"] in existing]
            if new:
                session.execute(insert(VisitRow), new)
            if old:
                session.execute(update(VisitRow), old)  # bulk UPDATE by primary key

    # --- reading ------------------------------------------------------------------------------

    def observations(
        self,
        camera: str | None = None,
        start: float | None = None,
        end: float | None = None,
        zone: str | None = None,
        visit_key: str | None = None,
    ) -> list[Observation]:
        """Observations with ``start <= t < end``, oldest first."""
        return self._select(
            Observation,
            ObservationRow,
            ObservationRow.t,
            ObservationRow.t,
            start,
            end,
            camera=camera,
            zone=zone,
            visit_key=visit_key,
        )

    def visits(
        self,
        camera: str | None = None,
        start: float | None = None,
        end: float | None = None,
        zone: str | None = None,
        closed: bool | None = None,
    ) -> list[Visit]:
        """Visits overlapping ``[start, end)``, by start time; ``zone``: visits that touched it."""
        visits = self._select(Visit, VisitRow, VisitRow.start, VisitRow.end, start, end, camera=camera, closed=closed)
        # Zones live in a JSON list; filtering here keeps the query the same on every database.
        return visits if zone is None else [v for v in visits if zone in v.zones]

    def alerts(
        self,
        camera: str | None = None,
        start: float | None = None,
        end: float | None = None,
        kind: str | None = None,
        zone: str | None = None,
    ) -> list[Alert]:
        """Alerts overlapping ``[start, end)``, by start time."""
        return self._select(
            Alert, AlertRow, AlertRow.start, AlertRow.end, start, end, camera=camera, kind=kind, zone=zone
        )

    def zone_counts(
        self, camera: str | None = None, start: float | None = None, end: float | None = None, zone: str | None = None
    ) -> list[ZoneCount]:
        """Staff-zone counts with ``start <= t < end``, oldest first."""
        return self._select(
            ZoneCount, ZoneCountRow, ZoneCountRow.t, ZoneCountRow.t, start, end, camera=camera, zone=zone
        )

    def cameras(self) -> list[str]:
        """Every camera with a run or a record, sorted."""
        self.flush()
        query = union(*(select(table.camera) for table in (RunRow, *TABLES.values(), VisitRow)))
        with self._transaction("list cameras") as session:
            return sorted(session.scalars(query))

    def _select(
        self,
        record: type[R],
        table: type[Base],
        first: InstrumentedAttribute,
        last: InstrumentedAttribute,
        start: float | None,
        end: float | None,
        **equal: Any,
    ) -> list[R]:
        """Rows whose span ``[first, last]`` overlaps ``[start, end)`` (a point when first is last)."""
        self.flush()
        query = select(*(getattr(table, f.name) for f in fields(record)))
        conditions: list[ColumnElement[bool]] = [getattr(table, k) == v for k, v in equal.items() if v is not None]
        if start is not None:
            conditions.append(last >= start)
        if end is not None:
            conditions.append(first < end)
        keys = table.__mapper__.primary_key  # ties broken by insertion order (or key), stable across calls
        query = query.where(*conditions).order_by(first, *keys)
        with self._transaction(f"read {table.__tablename__}") as session:
            return [record(*row) for row in session.execute(query)]

    # --- housekeeping -------------------------------------------------------------------------

    def purge(self, older_than_days: float, now: float | None = None) -> dict[str, int]:
        """Delete what ended more than ``older_than_days`` before ``now``; rows deleted per table."""
        if older_than_days < 0:
            raise ConfigError(f"older_than_days must be >= 0, got {older_than_days}")
        cutoff = (time.time() if now is None else now) - older_than_days * DAY_S
        self.flush()
        old = {
            ObservationRow: ObservationRow.t < cutoff,
            ZoneCountRow: ZoneCountRow.t < cutoff,
            AlertRow: AlertRow.end < cutoff,
            VisitRow: VisitRow.end < cutoff,
            RunRow: RunRow.ended_at < cutoff,
        }  # NULL (still running) never compares older
        with self._transaction("purge old rows") as session:
            return {
                table.__tablename__: session.execute(
                    delete(table).where(condition), execution_options={"synchronize_session": False}
                ).rowcount
                for table, condition in old.items()
            }

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Session]:
        self._check_open()
        try:
            with Session(self._engine) as session, session.begin():
                yield session
        except SQLAlchemyError as e:
            raise StoreError(f"could not {what} in {self.url}: {one_line(e, self._url)}") from None
