"""Batch anonymisation (``visage anonymize IN_DIR OUT_DIR``, issue 15): every video and image
under a folder into the same relative paths, a corrupt file reported and the rest done, a
re-run skips what is finished, a changed input or a damaged output is done again, local
worker processes give byte-identical outputs, and the run is audited per file where a data
directory exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.batch_folder import CLIP_FRAMES, CORRUPT, GOOD, digests, leftovers, make_folder
from tests.cli_runner import run
from tests.conftest import clip_head
from visage.config import Settings
from visage.core import Visage
from visage.errors import InputError
from visage.media.redact import RedactOptions
from visage.store.schema import AuditEntryRow
from visage.usecases.anonymize import mask_file
from visage.usecases.batch import ENCODER_THREADS, MANIFEST, anonymize_folder, batch_settings


@pytest.fixture(scope="module")
def folder(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(data, tmp_path_factory.mktemp("batch") / "in")


def _bare(home: Path, models: Visage) -> Visage:
    """A core over ``home``, never initialised, with the session's loaded models."""
    core = Visage(Settings(home=home))
    core._analyzer = models.analyzer
    return core


@pytest.fixture(scope="module")
def first_run(
    folder: Path, shared_app: Visage, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """The folder anonymised once, in this process, without a data directory."""
    out = tmp_path_factory.mktemp("batch-out") / "out"
    core = _bare(tmp_path_factory.mktemp("none") / "home", shared_app)
    seen: list[tuple[int, int]] = []
    report = anonymize_folder(core, folder, out, files=lambda d, t: seen.append((d, t)))
    by_path = {i.path: i for i in report.items}
    assert sorted(by_path) == sorted([*GOOD, CORRUPT])  # notes.txt is not media
    assert by_path[CORRUPT].status == "failed"
    assert "cannot open as video" in (by_path[CORRUPT].reason or "")
    for rel in GOOD:
        item = by_path[rel]
        assert item.status == "anonymised", item.reason
        assert item.faces_masked >= 2 and not item.audited
    assert by_path["a.mp4"].frames == CLIP_FRAMES
    assert (report.anonymised, report.skipped, report.failed) == (4, 0, 1)
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert not (out / CORRUPT).exists() and leftovers(out) == []
    return out, digests(out)


def test_outputs_mirror_the_folder_and_match_the_single_file_path(
    first_run: tuple[Path, dict[str, str]], folder: Path, shared_app: Visage, tmp_path: Path
) -> None:
    out, made = first_run
    assert sorted(made) == sorted(GOOD)
    # Each output is exactly what the one-file path makes with the same settings.
    core = _bare(tmp_path / "home", shared_app)
    for rel in ("scenes/two_people.jpg", "sub/b.mp4"):
        single = tmp_path / Path(rel).name
        mask_file(
            core,
            folder / rel,
            single,
            options=batch_settings(core, RedactOptions(), None, 23).options(),
            encoder_threads=ENCODER_THREADS,
        )
        assert (out / rel).read_bytes() == single.read_bytes(), rel
        assert (out / rel).read_bytes() != (folder / rel).read_bytes()


def test_rerun_skips_finished_and_redoes_changed_or_damaged(
    first_run: tuple[Path, dict[str, str]],
    folder: Path,
    shared_app: Visage,
    data: Path,
    tmp_path: Path,
) -> None:
    out, made = first_run
    core = _bare(tmp_path / "home", shared_app)
    again = anonymize_folder(core, folder, out)
    assert (again.anonymised, again.skipped, again.failed) == (0, 4, 1)
    assert digests(out) == made

    # A damaged output (a copy cut short) and a changed input are done again; the rest not.
    # On copies of the finished run (copied with their times: the manifest still matches).
    work, partial = tmp_path / "in", tmp_path / "out"
    shutil.copytree(folder, work)
    shutil.copytree(out, partial)
    assert anonymize_folder(core, work, partial).skipped == 4
    damaged = partial / "scenes/two_people.jpg"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    clip_head(data / "video/hamilton_clip.mp4", work / "a.mp4", 0.2)  # 6 frames, not 11
    third = anonymize_folder(core, work, partial)
    done = {i.path for i in third.items if i.status == "anonymised"}
    assert done == {"a.mp4", "scenes/two_people.jpg"}
    assert (
        third.skipped == 2
        and digests(partial)["scenes/two_people.jpg"] == made["scenes/two_people.jpg"]
    )
    manifest = json.loads((partial / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(GOOD)


def test_cli_workers_give_the_same_bytes_and_exit_1_on_a_failure(
    first_run: tuple[Path, dict[str, str]], folder: Path, tmp_path: Path
) -> None:
    _, made = first_run
    parallel = tmp_path / "parallel"
    r = run(tmp_path / "none", "anonymize", str(folder), str(parallel), "--workers", "2", "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert (report["anonymised"], report["failed"], report["workers"]) == (4, 1, 2)
    assert digests(parallel) == made  # byte for byte what one process made
    assert leftovers(parallel) == []

    table = run(tmp_path / "none", "anonymize", str(folder), str(parallel))
    assert table.returncode == 1
    assert "0 anonymised, 4 skipped, 1 failed" in table.stdout
    assert CORRUPT in table.stdout and "Traceback" not in table.stderr


def test_audited_per_file_with_a_data_directory(
    fresh_app: Visage, data: Path, tmp_path: Path
) -> None:
    stills = tmp_path / "stills"
    stills.mkdir()
    for name in ("two_people.jpg", "kit_with_rose.jpg"):
        (stills / name).write_bytes((data / "scenes" / name).read_bytes())
    report = anonymize_folder(fresh_app, stills, tmp_path / "out")
    assert report.anonymised == 2 and all(i.audited for i in report.items)
    with fresh_app.store.session() as session:
        ops = list(session.scalars(select(AuditEntryRow.operation)))
    assert ops.count("anonymize") == 2


def test_refusals_before_any_work(folder: Path, shared_app: Visage, tmp_path: Path) -> None:
    core = _bare(tmp_path / "home", shared_app)
    with pytest.raises(InputError, match="outside the input folder"):
        anonymize_folder(core, folder, folder / "out")
    with pytest.raises(InputError, match="in this process only"):
        anonymize_folder(
            core, folder, tmp_path / "o", keep_enrolled=True, purpose="press", workers=2
        )
    with pytest.raises(InputError, match="not a folder"):
        anonymize_folder(core, tmp_path / "missing", tmp_path / "o")
    assert not (folder / "out").exists() and not (tmp_path / "o").exists()
