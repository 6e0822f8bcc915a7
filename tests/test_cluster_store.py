"""The shared store as many camera actors write it: batches are idempotent (a batch written again is
stored once), each run of a camera is its next epoch, and a store written before rows were keyed
upgrades keeping one of each. On SQLite and on a real PostgreSQL server (tests/test_store.py's)."""

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tiltwatch.analytics.records import ZoneCount
from tiltwatch.errors import TiltwatchError
from tiltwatch.store import Store

from .test_store import alert, count, obs, pg_server, store_url  # noqa: F401  (fixtures: both databases)


def lose_the_answer_once():
    """The next commit lands, then its answer is lost (as when the connection drops after COMMIT)."""

    def lost(session):
        raise OperationalError("COMMIT", {}, OSError("server closed the connection unexpectedly"))

    event.listen(Session, "after_commit", lost, once=True)


def test_a_batch_whose_commit_answer_was_lost_is_stored_once(store_url):  # noqa: F811
    with Store(store_url, batch_size=1000, batch_seconds=3600) as store:
        for t in (1.0, 1.5, 2.0):
            store.add(obs(t))
        store.add(alert(1.0, 2.0))
        store.add(ZoneCount("cam-a", "cage", 1.0, 2))
        lose_the_answer_once()
        with pytest.raises(TiltwatchError):
            store.flush()  # the rows are in the database, but the store cannot know: it keeps the batch
        assert store.pending == 5
        assert store.flush() == 5  # written again
        store.add(obs(2.5))
        store.add(obs(1.0))  # (and a record sent twice by its writer)
    assert [count(store_url, t) for t in ("observations", "alerts", "zone_counts")] == [4, 1, 1]


def test_each_run_of_a_camera_is_its_next_epoch(store_url):  # noqa: F811
    with Store(store_url) as store:
        first, second = store.start_run("cam-a", "rtsp://a"), store.start_run("cam-a", "rtsp://a")
        other = store.start_run("cam-b", "rtsp://b")
        runs = {r["run_id"]: (r["camera"], r["epoch"]) for r in store.runs()}
        assert runs == {first: ("cam-a", 1), second: ("cam-a", 2), other: ("cam-b", 1)}
        assert [r["epoch"] for r in store.runs("cam-a")] == [1, 2]


def test_a_store_at_0004_with_rows_written_twice_upgrades_keeping_one_of_each(store_url):  # noqa: F811
    from alembic import command

    from tiltwatch.store.migrate import config

    o = obs(5.0)
    row = {k: getattr(o, k) for k in ("camera", "visit_key", "t", "zone", "valence", "arousal", "yaw", "pitch")}
    row.update(probs=json.dumps(o.probs), attentive=o.attentive, quality=o.quality)
    observations = sa.table("observations", *map(sa.column, row))
    runs = sa.table("runs", *map(sa.column, ("run_id", "camera", "source", "started_at", "interrupted")))
    engine = create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(config(store_url, conn), "0004")
        conn.execute(sa.insert(observations), [row, row, dict(row, t=6.0)])  # the first written twice
        conn.execute(
            sa.insert(runs),
            [
                {"run_id": rid, "camera": cam, "source": "s", "started_at": t, "interrupted": False}
                for rid, cam, t in (("r2", "cam-a", 20.0), ("r1", "cam-a", 10.0), ("r3", "cam-b", 15.0))
            ],
        )
    engine.dispose()
    with Store(store_url) as store:
        assert [x.t for x in store.observations()] == [5.0, 6.0]
        assert [(r["run_id"], r["epoch"]) for r in store.runs()] == [("r1", 1), ("r3", 1), ("r2", 2)]
        assert store.runs("cam-a")[-1]["epoch"] == 2 and (store.start_run("cam-a", "s") is not None)
        assert store.runs("cam-a")[-1]["epoch"] == 3
