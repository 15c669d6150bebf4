"""Camera events follow Frigate's shape: someone at a door is an event at once (``event.start``,
row written), updated while they stay, closed when they leave (``event.end``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from tests.conftest import STAGE_PURPOSE, Receiver, open_copy
from visage.core import Visage
from visage.store.schema import EventRow
from visage.usecases.watch import StopReason, WatchOptions, watch


def test_an_event_starts_when_the_track_is_first_recognised(
    tmp_path: Path,
    shared_app: Visage,
    stage_home: tuple[Path, dict[str, str]],
    stage_clip: Path,
    receiver: Receiver,
) -> None:
    home, ids = stage_home
    core = open_copy(home, tmp_path / "home", models=shared_app, webhook_urls=[receiver.url])
    sid = next(i for i, folder in ids.items() if folder == "lin_manuel_miranda")

    # While the clip plays: the stored row and the messages the receiver already has.
    first_seen: dict[str, tuple[int, datetime, int]] = {}  # row id: (frame, ended_at, frames)
    starts_seen_at: list[int] = []

    def progress(n: int) -> None:
        with core.store.session() as session:
            for row in session.scalars(select(EventRow)):
                first_seen.setdefault(row.id, (n, row.ended_at, row.frames))
        if any(m["type"] == "event.start" for m in receiver.messages()):
            starts_seen_at.append(n)

    report = watch(
        core,
        str(stage_clip),
        STAGE_PURPOSE,
        WatchOptions(camera="door", max_frames=40, event_update_s=0.2),
        progress=progress,
    )
    core.notifier.flush()
    assert report.stopped is StopReason.frame_limit
    event = next(e for e in report.events if e.subject_id == sid)
    assert event.event_id is not None

    # The row existed while the track was still going, and was updated as it went on.
    frame, ended_at, frames = first_seen[event.event_id]
    assert frame < report.frames and ended_at < event.ended_at and frames < event.frames
    with core.store.session() as session:
        stored = session.get(EventRow, event.event_id)
        assert stored is not None
        assert (stored.ended_at, stored.frames) == (event.ended_at, event.frames)
    # The receiver had the start before the run was over.
    assert starts_seen_at and starts_seen_at[0] < report.frames

    # start, then updates, then end, for the same event id; ids only, never a name.
    messages = [m for m in receiver.messages() if str(m["type"]).startswith("event.")]
    mine = [m for m in messages if m["event_id"] == event.event_id]
    kinds = [m["type"] for m in mine]
    assert kinds[0] == "event.start" and kinds[-1] == "event.end", kinds
    assert kinds.count("event.start") == 1 == kinds.count("event.end")
    assert "event.update" in kinds
    assert all(m["subject_id"] == sid and m["camera"] == "door" for m in mine)
    assert mine[-1]["frames"] == event.frames
    assert "Lin" not in json.dumps(receiver.messages())
    core.close()
