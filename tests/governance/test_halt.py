"""The Stop switch in the core: scopes, what a halt stops and what it never stops, resume,
audit — through the use-cases, on a real enrolled gallery and the Hamilton clip."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_app
from visage.core import Visage
from visage.errors import InputError, NotFoundError
from visage.governance.halt import (
    HaltedError,
    HaltKind,
    HaltScope,
    active,
    blocking,
    clear_halt,
    parse_scope,
    set_halt,
)
from visage.usecases import audit_log
from visage.usecases import halt as halt_uc
from visage.usecases.anonymize import anonymize
from visage.usecases.enroll import enroll
from visage.usecases.faces import detect
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, make_consent
from visage.usecases.verify import verify
from visage.usecases.watch import StopReason, WatchOptions, watch

GATE = "access-control"
STAGE = "stage"


@pytest.fixture(scope="module")
def core(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path
) -> Iterator[Visage]:
    """Joe Biden enrolled for both purposes."""
    app = make_app(tmp_path_factory.mktemp("halt-home"), models=shared_app)
    sid = add_subject(app, "Joe", make_consent("F-joe", [GATE, STAGE])).id
    assert enroll(app, sid, sorted((data / "people/joe_biden").iterdir())).enrolled
    yield app
    app.close()


@pytest.fixture(autouse=True)
def no_halt_left(core: Visage) -> Iterator[None]:
    yield
    for h in halt_uc.list_halts(core):
        halt_uc.resume(core, h.scope)


def _names(core: Visage, data: Path, purpose: str) -> set[str]:
    found = identify(core, data / "scenes/obama_and_biden.jpg", purpose)
    return {c.name for f in found.faces for c in f.candidates}


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("all", "all"),
        (" ALL ", "all"),
        ("camera:north-gate_1.a", "camera:north-gate_1.a"),
        ("purpose:Access-Control", "purpose:access-control"),
        ("Purpose: stage ", "purpose:stage"),
    ],
)
def test_scopes_parse_to_one_stored_form(text: str, stored: str) -> None:
    assert str(parse_scope(text)) == stored
    assert parse_scope(stored) == parse_scope(text)


@pytest.mark.parametrize(
    "text",
    ["", "everything", "camera:", "camera:../x", "purpose:", "purpose:a b", "cam:x", "all:x"],
)
def test_bad_scopes_are_clear_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="scope"):
        parse_scope(text)


def test_blocking_finds_the_halt_that_covers_a_search(core: Visage) -> None:
    with core.store.session() as session:
        set_halt(session, HaltScope.camera("door"), "lens covered", "local:test")
        set_halt(session, HaltScope.purpose(STAGE), "complaint", "local:test")
        assert blocking(session, GATE) is None
        assert blocking(session, GATE, "yard") is None
        assert blocking(session, GATE, "door").scope == "camera:door"  # type: ignore[union-attr]
        assert blocking(session, STAGE).reason == "complaint"  # type: ignore[union-attr]
        set_halt(session, HaltScope.all(), "audit", "local:test")
        # "all" is named first, whatever else also covers the search.
        assert blocking(session, STAGE, "door").scope == "all"  # type: ignore[union-attr]
        assert {h.scope for h in active(session)} == {"all", "camera:door", "purpose:stage"}
        for scope in ("all", "camera:door", "purpose:stage"):
            assert clear_halt(session, parse_scope(scope)) is not None
        assert clear_halt(session, HaltScope.all()) is None
        assert active(session) == []


def test_a_halt_needs_a_reason(core: Visage) -> None:
    for reason in ("", "   \n "):
        with pytest.raises(InputError, match="reason"):
            halt_uc.halt(core, "all", reason)
    with pytest.raises(InputError, match="at most"):
        halt_uc.halt(core, "all", "x" * 501)
    assert halt_uc.list_halts(core) == []


def test_halt_all_refuses_every_1n_search_and_nothing_else(core: Visage, data: Path) -> None:
    assert "Joe" in _names(core, data, GATE)
    done = halt_uc.halt(core, HaltScope.all(), "suspected misidentification")
    assert done.scope == "all" and done.active and done.actor.startswith("local:")
    with pytest.raises(HaltedError) as refused:
        identify(core, data / "scenes/obama_and_biden.jpg", GATE)
    assert "halted (all)" in str(refused.value) and "suspected misidentification" in str(
        refused.value
    )
    with pytest.raises(HaltedError):
        identify(core, data / "scenes/obama_and_biden.jpg", STAGE)
    entry = audit_log.entries(core, operation="identify")[-1]
    assert entry.outcome == "refused" and entry.details["reason"] == "halted: all"
    # Keep-enrolled anonymisation is a 1:N search: refused, and no output written.
    out = core.home / "kept.jpg"
    with pytest.raises(HaltedError):
        anonymize(core, data / "scenes/obama_and_biden.jpg", out, keep_enrolled=True, purpose=GATE)
    assert not out.exists()
    assert audit_log.entries(core, operation="anonymize")[-1].details["reason"] == "halted: all"
    # Detection and 1:1 verification are not 1:N processing: they keep working.
    seen = len(detect(core, data / "scenes/obama_and_biden.jpg").faces)
    assert seen >= 2
    # Blurring everyone is a safeguard, not 1:N processing either.
    blurred = anonymize(core, data / "scenes/obama_and_biden.jpg", core.home / "blurred.jpg")
    assert blurred.faces_masked >= seen and blurred.kept_visible == 0
    # two 250x250 LFW photos of one man: what is tested is that 1:1 runs, and the 1-2
    # megapixel portraits of people/ cost ~4x more to compare
    same = [data / f"lfw10/Colin_Powell/Colin_Powell_000{i}.jpg" for i in (1, 2)]
    assert verify(core, same[0], same[1], purpose=GATE).same
    # Resuming is explicit, and then identify works again.
    lifted = halt_uc.resume(core, "all")
    assert lifted.scope == "all" and not lifted.active
    assert "Joe" in _names(core, data, GATE)


def test_halting_one_purpose_leaves_the_others(core: Visage, data: Path) -> None:
    halt_uc.halt(core, f"purpose:{STAGE}", "complaint from the venue")
    with pytest.raises(HaltedError, match=r"purpose:stage"):
        identify(core, data / "scenes/obama_and_biden.jpg", STAGE.upper())  # normalised
    assert "Joe" in _names(core, data, GATE)
    kept = anonymize(
        core,
        data / "scenes/obama_and_biden.jpg",
        core.home / "kept.jpg",
        keep_enrolled=True,
        purpose=GATE,
    )
    assert kept.kept_visible == 1 and kept.faces_masked >= 1  # Joe kept; Obama masked


def test_resume_needs_a_halt_and_both_are_audited_with_the_actor(core: Visage) -> None:
    with pytest.raises(NotFoundError, match="camera:door is not halted"):
        halt_uc.resume(core, "camera:door")
    before = len(audit_log.entries(core))
    halt_uc.halt(core, "camera:door", "maintenance")
    halt_uc.halt(core, "camera:door", "maintenance, lens replaced")  # updates, one halt
    assert [(h.scope, h.reason) for h in halt_uc.list_halts(core)] == [
        ("camera:door", "maintenance, lens replaced")
    ]
    halt_uc.resume(core, "camera:door")
    halts = audit_log.entries(core, operation="halt")[-2:]
    [resumed] = audit_log.entries(core, operation="resume")[-1:]
    assert [h.details for h in halts] == [
        {"scope": "camera:door", "reason": "maintenance"},
        {"scope": "camera:door", "reason": "maintenance, lens replaced"},
    ]
    assert resumed.details == {"scope": "camera:door"}
    assert all(e.actor.startswith("local:") for e in [*halts, resumed])
    assert len(audit_log.entries(core)) == before + 3
    assert audit_log.verify(core).ok


def test_a_halted_camera_refuses_watch_and_a_running_watch_stops(core: Visage, data: Path) -> None:
    clip = str(data / "video/hamilton_clip.mp4")
    halt_uc.halt(core, HaltScope(HaltKind.camera, "door"), "lens covered")
    with pytest.raises(HaltedError, match="camera:door"):
        watch(core, clip, STAGE, WatchOptions(camera="door"))
    assert audit_log.entries(core, operation="watch")[-1].details["reason"] == (
        "halted: camera:door"
    )
    halt_uc.resume(core, "camera:door")
    # A running watch ends between frames within about a second of a halt of its purpose.
    frames: list[int] = []
    result: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: result.setdefault(
            "report", watch(core, clip, STAGE, WatchOptions(camera="door"), progress=frames.append)
        )
    )
    worker.start()
    deadline = time.monotonic() + 60
    while len(frames) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    halt_uc.halt(core, f"purpose:{STAGE}", "complaint")
    halted_at, at_halt = time.monotonic(), len(frames)
    worker.join(timeout=60)
    assert not worker.is_alive()
    report = result["report"]
    assert report.stopped is StopReason.halted  # type: ignore[attr-defined]
    assert time.monotonic() - halted_at < 3.0
    assert at_halt <= report.frames < 275  # type: ignore[attr-defined]
