"""The store on real databases: SQLite files, and a throwaway PostgreSQL cluster when the server is installed.

Usage::

    python -m pytest tests/test_store.py -q
"""

from __future__ import annotations

import glob
import os
import pwd
import queue
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from tiltwatch.analytics.records import Alert, Observation, Visit, ZoneCount
from tiltwatch.errors import ConfigError, TiltwatchError
from tiltwatch.store import Store
from tiltwatch.store.schema import Base

PROBS = [0.05, 0.6, 0.05, 0.1, 0.05, 0.05, 0.05, 0.05]
DAY = 86400.0


# --- records ------------------------------------------------------------------------------------


def obs(
    t: float, camera: str = "cam-a", key: str = "r1:1", zone: str | None = "table-1", attentive: bool | None = True
) -> Observation:
    return Observation(
        camera=camera,
        visit_key=key,
        t=t,
        zone=zone,
        probs=list(PROBS),
        valence=0.25,
        arousal=-0.5,
        yaw=None if attentive is None else 12.5,
        pitch=-3.0,
        attentive=attentive,
    )


def visit(
    key: str,
    start: float,
    end: float,
    camera: str = "cam-a",
    zones: list[str] | None = None,
    frames: int = 10,
    closed: bool = False,
) -> Visit:
    zones = ["table-1"] if zones is None else zones
    return Visit(
        camera=camera,
        visit_key=key,
        run_id=key.split(":")[0],
        track_id=int(key.split(":")[1]),
        start=start,
        end=end,
        zones=zones,
        dwell_s={z: (end - start) / len(zones) for z in zones},
        frames=frames,
        mean_probs=list(PROBS),
        dominant="happiness",
        mean_valence=0.125,
        mean_arousal=-0.75,
        attention=None if closed else 0.5,
        closed=closed,
    )


def alert(start: float, end: float, kind: str = "tilt", camera: str = "cam-a", zone: str | None = "table-1") -> Alert:
    return Alert(
        camera=camera,
        kind=kind,
        visit_key="r1:1",
        track_id=1,
        zone=zone,
        start=start,
        end=end,
        value=0.875,
        threshold=0.5,
        evidence={"emotion": "anger", "series": [[start, 0.25], [end, 0.875]]},
    )


def count(url: str, table: str) -> int:
    """Rows in ``table`` as a separate connection sees them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- databases ----------------------------------------------------------------------------------


def _pg_binary(name: str) -> str | None:
    def version(bin_dir: str) -> int:
        v = Path(bin_dir).parent.name
        return int(v) if v.isdigit() else 0

    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if os.access(os.path.join(bin_dir, name), os.X_OK):
            return os.path.join(bin_dir, name)
    return shutil.which(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a unix socket in a temp folder; yields the admin URL."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not found (initdb)")
    root = tempfile.mkdtemp(prefix="tw-pg-")  # short path: a socket path must fit in 107 bytes
    wrap = list
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as nobody, in a folder nobody owns
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root and there is no 'nobody' user to run PostgreSQL as")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        if shutil.which("runuser"):

            def wrap(cmd: list[str]) -> list[str]:
                return ["runuser", "-u", "nobody", "--", *cmd]
        elif shutil.which("su"):

            def wrap(cmd: list[str]) -> list[str]:
                return ["su", "nobody", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        else:
            pytest.skip("running as root and neither runuser nor su is there to run PostgreSQL as nobody")
    data, port = os.path.join(root, "data"), free_port()
    env = {**os.environ, "LC_ALL": "C"}

    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(wrap(cmd), cwd=root, env=env, capture_output=True, text=True, timeout=120)

    done = run([initdb, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    options = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off"
    done = run([pg_ctl, "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60", "-o", options, "start"])
    if done.returncode != 0:
        log = Path(root, "log").read_text(errors="replace") if Path(root, "log").exists() else done.stderr
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {log.strip().splitlines()[-1:]}")
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database per test: a SQLite file, or a new database in the PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    admin_url: str = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.replace("@/postgres?", f"@/{name}?")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url, batch_size=1000, batch_seconds=3600) as s:
        yield s


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


# --- both databases -----------------------------------------------------------------------------


def test_round_trip_of_each_record(store: Store) -> None:
    records = [
        obs(100.0),
        obs(101.5, zone=None, attentive=None),
        alert(100.0, 130.0),
        ZoneCount(camera="cam-a", zone="cage", t=100.0, count=3),
    ]
    for r in records:
        store.add(r)
    v = visit("r1:1", 100.0, 160.0, zones=["table-1", "bar"], closed=True)
    store.upsert_visit(v)
    assert store.pending == 5
    assert store.flush() == 5 and store.pending == 0

    assert store.observations() == records[:2]
    assert store.alerts() == [records[2]]
    assert store.zone_counts() == [records[3]]
    assert store.visits() == [v]
    assert store.cameras() == ["cam-a"]
    assert isinstance(store.observations()[0].attentive, bool) and isinstance(store.visits()[0].closed, bool)


def test_filters_and_ordering(store: Store) -> None:
    for t in (30.0, 10.0, 20.0):  # added out of order, read back by time
        store.add(obs(t))
    store.add(obs(15.0, camera="cam-b", key="r2:7", zone="table-2"))
    store.add(ZoneCount("cam-a", "cage", 12.0, 1))
    store.add(ZoneCount("cam-a", "bar", 11.0, 2))
    store.add(alert(50.0, 60.0, kind="tilt"))
    store.add(alert(40.0, 45.0, kind="distress", zone=None))
    store.add(alert(55.0, 70.0, kind="tilt", camera="cam-b"))
    store.upsert_visit(visit("r1:1", 10.0, 20.0))
    store.upsert_visit(visit("r1:2", 5.0, 8.0, zones=["bar"], closed=True))
    store.upsert_visit(visit("r2:7", 15.0, 40.0, camera="cam-b", zones=["table-2", "table-1"]))

    assert [o.t for o in store.observations()] == [10.0, 15.0, 20.0, 30.0]
    assert [o.t for o in store.observations(camera="cam-a", start=10.0, end=30.0)] == [10.0, 20.0]  # [start, end)
    assert [o.camera for o in store.observations(zone="table-2")] == ["cam-b"]
    assert [o.t for o in store.observations(visit_key="r1:1", start=15.0)] == [20.0, 30.0]
    assert [z.zone for z in store.zone_counts()] == ["bar", "cage"]
    assert [z.t for z in store.zone_counts(zone="cage", end=12.0)] == []

    assert [v.visit_key for v in store.visits()] == ["r1:2", "r1:1", "r2:7"]  # by start
    assert [v.visit_key for v in store.visits(start=20.0)] == ["r1:1", "r2:7"]  # end == start overlaps
    assert [v.visit_key for v in store.visits(end=10.0)] == ["r1:2"]  # start == end does not
    assert [v.visit_key for v in store.visits(zone="table-1")] == ["r1:1", "r2:7"]
    assert [v.visit_key for v in store.visits(closed=True)] == ["r1:2"]
    assert [v.visit_key for v in store.visits(camera="cam-a", closed=False)] == ["r1:1"]

    assert [(a.kind, a.start) for a in store.alerts()] == [("distress", 40.0), ("tilt", 50.0), ("tilt", 55.0)]
    assert [a.camera for a in store.alerts(kind="tilt", start=60.0, end=61.0)] == ["cam-a", "cam-b"]
    assert [a.kind for a in store.alerts(camera="cam-a", zone="table-1")] == ["tilt"]
    assert store.alerts(start=70.5) == []
    assert store.cameras() == ["cam-a", "cam-b"]


def test_visit_upsert_keeps_one_row_with_the_latest_values(store: Store, store_url: str) -> None:
    store.upsert_visit(visit("r1:1", 10.0, 11.0, frames=2))
    store.upsert_visit(visit("r1:1", 10.0, 12.0, frames=3))  # same buffer: the last one wins
    store.flush()
    assert [(v.end, v.frames) for v in store.visits()] == [(12.0, 3)]
    store.upsert_visit(visit("r1:1", 10.0, 20.0, zones=["table-1", "bar"], frames=9, closed=True))  # an update
    store.upsert_visit(visit("r1:2", 11.0, 13.0))  # and an insert in the same transaction
    store.flush()
    assert count(store_url, "visits") == 2
    latest = store.visits(camera="cam-a")[0]
    assert (latest.end, latest.frames, latest.zones, latest.closed) == (20.0, 9, ["table-1", "bar"], True)


def test_purge_deletes_what_ended_before_the_cutoff(store: Store, store_url: str) -> None:
    now = 100 * DAY
    old, recent = now - 10 * DAY, now - DAY
    for t in (old, old + 1, recent):
        store.add(obs(t))
    store.add(ZoneCount("cam-a", "cage", old, 1))
    store.add(alert(old, old + 60))
    store.add(alert(old, recent))  # started long ago, ended recently: kept
    store.upsert_visit(visit("r1:1", old, old + 60))
    store.upsert_visit(visit("r1:2", old, recent))
    finished, running = store.start_run("cam-a", "clip.mp4"), store.start_run("cam-a", "rtsp://cam")
    store.end_run(finished, at=old + 120)

    removed = store.purge(older_than_days=7, now=now)
    assert removed == {"observations": 2, "zone_counts": 1, "alerts": 1, "visits": 1, "runs": 1}
    assert [o.t for o in store.observations()] == [recent]
    assert store.zone_counts() == [] and [a.end for a in store.alerts()] == [recent]
    assert [v.visit_key for v in store.visits()] == ["r1:2"]
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT run_id FROM runs")).scalars().all() == [running]
    engine.dispose()
    assert store.purge(older_than_days=7, now=now) == dict.fromkeys(removed, 0)


def test_schema_is_migrated_once_and_matches_the_models(store_url: str) -> None:
    with Store(store_url) as first:
        first.add(obs(1.0))
    with Store(store_url) as second:  # already at head: nothing to do, data kept
        assert len(second.observations()) == 1
    engine = create_engine(store_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == head()
        assert compare_metadata(context, Base.metadata) == []  # the migration builds what schema.py says
    engine.dispose()


def test_a_database_at_0003_upgrades_and_keeps_its_visits(store_url: str) -> None:
    """A store written before visits had a baseline: opened now, its rows are kept and read back
    with no baseline (the absolute rule applied to them), and new visits store theirs."""
    import json

    import sqlalchemy as sa
    from alembic import command

    from tiltwatch.store.migrate import config

    old = visit("r0:1", 10.0, 20.0, closed=True)
    columns = [c for c in fields_of(old) if c not in ("baseline", "baseline_frames", "peak_tilt", "peak_deviation")]
    row = {c: getattr(old, c) for c in columns}
    row.update({c: json.dumps(row[c]) for c in ("zones", "dwell_s", "mean_probs")})
    engine = create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(config(store_url, conn), "0003")
        conn.execute(sa.insert(sa.table("visits", *map(sa.column, columns))), [row])
    engine.dispose()
    with Store(store_url) as store:
        (back,) = store.visits()
        assert back == old and (back.baseline, back.baseline_frames, back.peak_deviation) == (None, 0, None)
        new = visit("r1:1", 30.0, 40.0)
        new.baseline, new.baseline_frames, new.peak_tilt, new.peak_deviation = [0.1] * 8, 42, 0.75, 0.5
        store.upsert_visit(new)
        assert store.visits(start=30.0) == [new]
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head()
    engine.dispose()


def head() -> str:
    """The newest migration's revision."""
    from alembic.script import ScriptDirectory

    from tiltwatch.store.migrate import config

    return ScriptDirectory.from_config(config("sqlite://")).get_current_head()


def fields_of(record) -> list[str]:
    from dataclasses import fields

    return [f.name for f in fields(record)]


def open_together(url: str, stores: int = 4) -> list[BaseException]:
    """Open ``stores`` stores on ``url`` from as many threads at once; the errors they raised."""
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(url).close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_stores_opening_a_new_database_at_once(store_url: str) -> None:
    assert open_together(store_url) == []


def test_runs_start_and_end(store: Store, store_url: str) -> None:
    run_id = store.start_run("cam-a", "rtsp://cam-a/stream")
    assert len(run_id) == 12 and count(store_url, "runs") == 1  # committed at once
    store.add(obs(1.0))
    store.end_run(run_id, at=123.0)
    assert count(store_url, "observations") == 1  # ending a run writes what it buffered
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT camera, source, ended_at FROM runs")).one() == (
            "cam-a",
            "rtsp://cam-a/stream",
            123.0,
        )
    engine.dispose()
    with pytest.raises(TiltwatchError, match="no run 'nope'"):
        store.end_run("nope")


def test_a_run_whose_process_is_gone_from_this_host_is_closed_at_once(store: Store, store_url: str) -> None:
    """A service restarted right after a kill must close the killed run's open visits at once; a
    run that may still be written (this process's, another host's) waits for its quiet time."""
    mine = store.start_run("cam", "a")  # this process's own: live
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # a process that has exited
    engine = create_engine(store_url)
    with engine.begin() as conn:
        now = time.time()
        for run_id, epoch, host, pid in [
            ("killed", 2, socket.gethostname(), dead_pid),
            ("same-pid", 3, socket.gethostname(), os.getpid()),  # a restarted container's pid 1, say
            ("elsewhere", 4, "another-host", dead_pid),
            ("old-row", 5, None, None),  # from before the store knew its writers
        ]:
            conn.execute(
                text(
                    "INSERT INTO runs (run_id, camera, epoch, source, started_at, interrupted, host, pid) "
                    "VALUES (:r, 'cam', :e, 's', :t, false, :h, :p)"
                ),
                {"r": run_id, "e": epoch, "t": now, "h": host, "p": pid},
            )
    engine.dispose()
    store.upsert_visit(visit("killed:1", now - 5, now, camera="cam"))
    assert store.close_abandoned("cam") == 2
    runs = {r["run_id"]: r for r in store.runs("cam")}
    assert runs["killed"]["interrupted"] and runs["same-pid"]["interrupted"]
    assert not any(runs[r]["ended_at"] for r in (mine, "elsewhere", "old-row"))  # still maybe writing
    assert all(v.closed and v.interrupted for v in store.visits(camera="cam"))
    assert store.close_abandoned("cam", now=time.time() + 3600) == 3  # the rest, once quiet long enough


# --- SQLite -------------------------------------------------------------------------------------


def test_many_new_sqlite_files_each_opened_by_four_stores_at_once(tmp_path: Path) -> None:
    """The race is in switching a new file to WAL; it used to fail about one time in fifteen."""
    for i in range(30):
        assert open_together(f"sqlite:///{tmp_path / f'{i}.db'}") == []


def test_batch_is_written_when_full(sqlite_url: str) -> None:
    with Store(sqlite_url, batch_size=10, batch_seconds=3600) as store:
        for i in range(9):
            store.add(obs(float(i)))
        assert count(sqlite_url, "observations") == 0
        store.add(obs(9.0))
        assert count(sqlite_url, "observations") == 10
        assert store.pending == 0
        store.add(obs(10.0))
    assert count(sqlite_url, "observations") == 11  # close() writes the rest


def test_batch_is_written_when_old_enough(sqlite_url: str) -> None:
    with Store(sqlite_url, batch_size=1000, batch_seconds=0.2) as store:
        store.add(obs(1.0))  # may be written at once: no write for 0.2 s since opening is possible on a slow box
        time.sleep(0.25)
        store.add(obs(2.0))  # checked on add: more than batch_seconds since the last write
        assert count(sqlite_url, "observations") == 2


def test_failed_write_rolls_back_and_keeps_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}?timeout=0.2"  # wait 0.2 s for a lock, not the default 5 s
    with Store(url, batch_size=1000, batch_seconds=3600) as store:
        for i in range(5):
            store.add(obs(float(i)))
        store.upsert_visit(visit("r1:1", 0.0, 4.0))
        blocker = sqlite3.connect(path)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        with pytest.raises(TiltwatchError, match=r"could not write 6 records .*locked"):
            store.flush()
        assert store.pending == 6 and count(url, "observations") == 0
        blocker.rollback()
        blocker.close()
        assert store.flush() == 6
    assert count(url, "observations") == 5 and count(url, "visits") == 1


def test_sqlite_file_gets_its_folder_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "tw.db"
    with Store(f"sqlite:///{path}") as store:
        store.add(obs(1.0, attentive=False))
        store.add(
            Observation(
                "cam-a",
                "r1:1",
                2.0,
                None,
                list(np.full(8, 0.125, np.float32)),
                np.float32(0.5),
                np.float64(0.25),
                None,
                None,
                np.bool_(True),
            )
        )  # numpy values too
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Store(f"sqlite:///{path}")
    assert [o.probs for o in again.observations()][1] == [0.125] * 8
    assert again.observations()[1].attentive is True
    again.close()
    again.close()  # twice is fine
    with pytest.raises(TiltwatchError, match="closed"):
        again.add(obs(3.0))


def test_in_memory_sqlite() -> None:
    with Store("sqlite://") as store:
        store.add(obs(1.0))
        assert len(store.observations()) == 1


CHILD = """
import sys
from tiltwatch.analytics.records import Observation
from tiltwatch.store import Store

store = Store(sys.argv[1], batch_size=1_000_000, batch_seconds=3600)
store.start_run("cam-kill", "child")
i = 0
while True:
    store.add(Observation("cam-kill", "k:1", float(i), "table-1", [0.125] * 8, 0.0, 0.0, 1.0, 2.0, True))
    i += 1
    if i % 50 == 0:
        store.flush()
        print(i // 50, flush=True)
"""


def test_sigkill_loses_at_most_the_batch_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    url = f"sqlite:///{path}"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True)
    reader.start()
    reported = 0
    try:
        while reported < 3:
            try:
                reported = int(lines.get(timeout=60))
            except queue.Empty:
                pytest.fail(f"the child reported no flush: {child.poll()=}")
        time.sleep(0.05)  # let it go on writing, so the kill lands anywhere
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
    while not lines.empty():
        reported = max(reported, int(lines.get()))
    assert child.returncode == -signal.SIGKILL, child.stderr.read()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
    # every reported batch is there; a batch written but not yet reported may be too; never half a batch
    assert rows % 50 == 0 and reported * 50 <= rows <= (reported + 1) * 50, (rows, reported)

    with Store(url) as store:
        store.start_run("cam-kill", "after")
        for i in range(7):
            store.add(obs(1e9 + i, camera="cam-kill"))
    assert count(url, "observations") == rows + 7
    assert count(url, "runs") == 2


# --- bad configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["notadb://x", "not a url at all", "sqlite:///{tmp}/a-dir-not-a-file", "sqlite:///{tmp}/a-file/under-a-file.db"],
)
def test_bad_url_is_a_config_error(url: str, tmp_path: Path) -> None:
    url = url.format(tmp=tmp_path)
    (tmp_path / "a-dir-not-a-file").mkdir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError) as err:
        Store(url)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql"])
def test_unreachable_server_is_a_config_error_without_the_password(scheme: str) -> None:
    url = f"{scheme}://tiltwatch:s3cret-pw%40x@127.0.0.1:{free_port()}/tiltwatch"  # nothing listens there
    with pytest.raises(ConfigError) as err:
        Store(url)
    message = str(err.value)
    assert "s3cret" not in message and "***" in message and "127.0.0.1" in message
    assert "\n" not in message


def test_bad_arguments(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        Store(sqlite_url, batch_size=0)
    with Store(sqlite_url) as store:
        with pytest.raises(ConfigError, match="older_than_days"):
            store.purge(-1)
        with pytest.raises(TypeError, match="Observation"):
            store.add("not a record")  # type: ignore[arg-type]
        bad = alert(1.0, 2.0)
        bad.evidence = {"frame": object()}
        with pytest.raises(ValueError, match="Alert.evidence"):
            store.add(bad)  # refused at once, so it cannot block the batch it would have joined
        with pytest.raises(ValueError, match="Observation.valence"):
            store.add(Observation("cam-a", "r1:1", 1.0, None, list(PROBS), float("nan"), 0.0, None, None, None))
        assert store.pending == 0
