"""Camera leases and one-at-a-time retention on both engines (no model, no server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import make_app
from tests.pg import pg_server
from visage.core import Visage
from visage.store import leases
from visage.store.db import lock_key
from visage.usecases import retention
from visage.usecases.cameras import add_camera


@pytest.fixture(params=["sqlite", "postgresql"])
def core(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Visage]:
    url = pg_server().database("leases") if request.param == "postgresql" else None
    app = make_app(tmp_path / "home", database_url=url)
    yield app
    app.close()


def test_a_lease_is_held_by_one_holder_until_it_lapses(core: Visage) -> None:
    cam = add_camera(core, "door", "rtsp://10.0.0.9/live", "stage", enabled=False).id
    with core.store.session() as session:
        assert leases.claim(session, "a", [cam], ttl_s=0.5) == {cam}
    with core.store.session() as session:
        assert leases.claim(session, "b", [cam]) == set()  # held by a
        assert leases.holders(session) == {cam: "a"}
        leases.check(session, "a", cam)
        with pytest.raises(leases.LeaseLostError):
            leases.check(session, "b", cam)
    time.sleep(0.7)  # a's heartbeat stopped (a died): the lease lapses
    with core.store.session() as session:
        with pytest.raises(leases.LeaseLostError):
            leases.check(session, "a", cam)  # a must not write any more
        assert leases.claim(session, "b", [cam]) == {cam}
    with core.store.session() as session:
        assert leases.claim(session, "a", [cam]) == set()
        leases.release(session, "b")
    with core.store.session() as session:  # released: taken at once, no wait for a lapse
        assert leases.claim(session, "a", [cam]) == {cam}


def test_retention_runs_on_one_replica_at_a_time(core: Visage) -> None:
    if not core.store.is_postgresql:
        assert retention.run_if_free(core) is not None  # one process: always its turn
        return
    with core.store.engine.connect() as other:  # another replica is running it
        k = {"k": lock_key("retention")}
        assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), k).scalar_one()
        assert retention.run_if_free(core) is None
        other.execute(text("SELECT pg_advisory_unlock(:k)"), k)
    assert retention.run_if_free(core) is not None
