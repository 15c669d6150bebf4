"""`watch` on a file (issue 14 §4): events carry their position in the clip (media time,
seconds from its start) besides the wall-clock time, in the report, the store and what
the doors read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from sqlalchemy import inspect, select

from tests.conftest import STAGE_PURPOSE, open_copy
from visage.core import Visage
from visage.store.schema import EventRow
from visage.usecases import events as events_uc
from visage.usecases.watch import WatchOptions, watch


@pytest.fixture()
def stage(
    tmp_path: Path, shared_app: Visage, stage_home: tuple[Path, dict[str, str]]
) -> Iterator[tuple[Visage, dict[str, str]]]:
    home, ids = stage_home
    core = open_copy(home, tmp_path / "stage-home", models=shared_app)
    yield core, ids
    core.close()


def test_events_of_a_file_carry_their_position_in_the_clip(
    stage: tuple[Visage, dict[str, str]], stage_clip: Path
) -> None:
    app, ids = stage
    with av.open(str(stage_clip)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 30)
        frames = sum(1 for _ in container.decode(video=0))
    duration = frames / fps
    report = watch(app, str(stage_clip), STAGE_PURPOSE, WatchOptions(camera="stage"))
    assert {e.subject_id for e in report.events} == set(ids)
    for e in report.events:
        assert e.media_start_s is not None and e.media_end_s is not None
        assert 0 <= e.media_start_s <= e.media_end_s <= duration
        # the clock and the clip agree on how long the person was seen
        wall = (e.ended_at - e.started_at).total_seconds()
        assert abs(wall - (e.media_end_s - e.media_start_s)) < 0.01
    # Alex Lacamoire comes in around frame 80 (see stage_clip): later in the clip.
    starts = {ids[e.subject_id or ""]: e.media_start_s or 0.0 for e in report.events}
    assert starts["alex_lacamoire"] > starts["lin_manuel_miranda"] + 1.0
    with app.store.session() as session:
        stored = {r.subject_id: r for r in session.scalars(select(EventRow))}
    for e in report.events:
        row = stored[e.subject_id or ""]
        assert (row.media_start_s, row.media_end_s) == (e.media_start_s, e.media_end_s)
    read = {e.subject_id: e for e in events_uc.events(app)}  # what the API and CLI show
    for e in report.events:
        assert read[e.subject_id or ""].media_start_s == e.media_start_s


def test_the_migration_adds_nullable_columns(fresh_app: Visage) -> None:
    with fresh_app.store.session() as session:
        columns = {c["name"]: c for c in inspect(session.get_bind()).get_columns("events")}
    assert columns["media_start_s"]["nullable"] and columns["media_end_s"]["nullable"]
