"""Anonymisation on a fresh install: plain masking needs no data directory (and says it is not
audited before any work), ``--keep-enrolled`` without one fails at once, a failed run leaves
nothing under the output's name, and the progress bar shows on a terminal but never with
``--json``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.cli_runner import run, run_process
from tests.conftest import clip_head
from visage.config import Settings
from visage.core import Visage
from visage.errors import InputError, NotInitialisedError
from visage.store.schema import AuditEntryRow
from visage.usecases.anonymize import anonymize

FRAMES = 11


@pytest.fixture(scope="module")
def short_clip(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first third of a second (11 frames) of the Hamilton clip. The claims here (where
    a run leaves its frames, what it prints) hold for any length; each frame costs a
    detection, in this process and in each real process of the progress test."""
    return clip_head(data / "video/hamilton_clip.mp4", tmp_path_factory.mktemp("c") / "s.mp4", 0.34)


def _bare(home: Path, models: Visage) -> Visage:
    """A core over ``home``, never initialised, with the session's loaded models."""
    core = Visage(Settings(home=home))
    core._analyzer = models.analyzer
    return core


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_cli_masks_without_init_and_creates_no_data_dir(data: Path, tmp_path: Path) -> None:
    home = tmp_path / "never-initialised"
    out = tmp_path / "masked.png"
    r = run(home, "anonymize", str(data / "scenes/two_people.jpg"), str(out), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["faces_masked"] == 2 and report["audited"] is False
    assert "not audited" in r.stderr and str(home) in r.stderr
    assert out.stat().st_size > 10_000
    assert not home.exists(), "plain masking created a data directory"


def test_keep_enrolled_without_data_dir_fails_before_any_work(data: Path, tmp_path: Path) -> None:
    home = tmp_path / "never-initialised"
    out = tmp_path / "kept.mp4"
    started = time.monotonic()
    r = run(
        home,
        "anonymize",
        str(data / "video/hamilton_clip.mp4"),  # 275 frames: far longer than the refusal
        str(out),
        "--keep-enrolled",
        "--purpose",
        "press",
    )
    assert time.monotonic() - started < 10
    assert r.returncode == 2
    assert r.stderr.startswith("visage: error: --keep-enrolled needs the data directory")
    assert "not audited" not in r.stderr  # refused, not started
    assert not out.exists() and _leftovers(tmp_path) == []
    assert not home.exists()


def test_initialised_run_is_audited(fresh_app: Visage, data: Path, tmp_path: Path) -> None:
    report = anonymize(fresh_app, data / "scenes/two_people.jpg", tmp_path / "a.jpg")
    assert report.audited is True
    with fresh_app.store.session() as session:
        ops = list(session.scalars(select(AuditEntryRow.operation)))
    assert ops.count("anonymize") == 1


def test_failed_runs_leave_nothing_under_the_output_name(
    shared_app: Visage, short_clip: Path, tmp_path: Path
) -> None:
    core = _bare(tmp_path / "home", shared_app)
    out = tmp_path / "out.mp4"
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(short_clip.read_bytes()[: short_clip.stat().st_size // 2])
    with pytest.raises(InputError, match=r"truncated\.mp4"):
        anonymize(core, truncated, out)
    assert not out.exists() and _leftovers(tmp_path) == []

    # Interrupted half-way (Ctrl-C): frames were already encoded to the temporary file.
    def interrupt(done: int, _total: int) -> None:
        if done == FRAMES // 2:
            assert _leftovers(tmp_path), "frames are not written under a temporary name"
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        anonymize(core, short_clip, out, progress=interrupt)
    assert not out.exists() and _leftovers(tmp_path) == []

    # A previous output under that name stays as it was: replaced only by a finished run.
    out.write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt):
        anonymize(core, short_clip, out, progress=interrupt)
    assert out.read_bytes() == b"previous" and _leftovers(tmp_path) == []
    report = anonymize(core, short_clip, out)
    assert report.frames == FRAMES and out.stat().st_size > 10_000 and _leftovers(tmp_path) == []
    assert not (tmp_path / "home").exists()


def test_progress_on_a_terminal_and_none_with_json(short_clip: Path, tmp_path: Path) -> None:
    """Real processes: rich decides at start-up whether stderr is an interactive terminal
    (TTY_COMPATIBLE=1 and a TERM make it one)."""
    home = tmp_path / "home"
    tty = {"TTY_COMPATIBLE": "1", "TERM": "xterm"}
    r = run_process(home, "anonymize", str(short_clip), str(tmp_path / "a.mp4"), **tty)
    assert r.returncode == 0, r.stderr
    assert "anonymising" in r.stderr and "fps" in r.stderr and "ETA" in r.stderr
    assert f"{FRAMES}/{FRAMES}" in r.stderr  # frames done / total
    r = run_process(home, "anonymize", str(short_clip), str(tmp_path / "b.mp4"), "--json", **tty)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["frames"] == FRAMES
    assert "anonymising" not in r.stderr and "ETA" not in r.stderr
    assert "not audited" in r.stderr  # the note stays: it is not progress


def test_not_initialised_error_names_the_flag(
    shared_app: Visage, data: Path, tmp_path: Path
) -> None:
    core = _bare(tmp_path / "home", shared_app)
    with pytest.raises(NotInitialisedError, match="--keep-enrolled"):
        anonymize(
            core,
            data / "scenes/two_people.jpg",
            tmp_path / "x.jpg",
            keep_enrolled=True,
            purpose="press",
        )
    assert not (tmp_path / "x.jpg").exists()
