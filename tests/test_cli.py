"""Black-box tests of the `visage` command: the public contract (JSON, exit codes, errors).

Most run the command in this process (:func:`tests.cli_runner.run`, seconds faster per call);
``test_the_real_executable_keeps_the_contract`` holds the same contract for a real process.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli_runner import run, run_process
from tests.conftest import clip_head
from tests.media.test_image import huge_png


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-home")
    r = run(home, "init", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["created"] is True
    r = run(home, "profile", "set", "--dpia-ref", "DPIA-CLI-1", "--json")
    assert r.returncode == 0, r.stderr
    return home


def test_init_is_idempotent(home: Path) -> None:
    r = run(home, "init", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["created"] is False
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600


def test_enrol_then_identify_flow(home: Path, data: Path) -> None:
    r = run(
        home,
        "subject",
        "add",
        "Joe Biden",
        "--consent-ref",
        "form-42",
        "--purpose",
        "access-control",
        "--expires",
        "2099-12-31",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout)["id"]

    r = run(
        home,
        "enroll",
        sid,
        str(data / "people/joe_biden/1.jpg"),
        str(data / "people/joe_biden/2.jpg"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["enrolled"]) == 2

    r = run(
        home,
        "identify",
        str(data / "scenes/two_people.jpg"),
        "--purpose",
        "access-control",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    faces = json.loads(r.stdout)["faces"]
    assert len(faces) == 2
    named = [c for f in faces for c in f["candidates"]]
    assert [(c["subject_id"], c["name"]) for c in named] == [(sid, "Joe Biden")]
    assert set(faces[0]) == {"box", "candidates", "status", "review_id"}
    assert set(named[0]) == {"subject_id", "name", "score"}

    r = run(home, "identify", str(data / "scenes/two_people.jpg"), "--purpose", "other")
    assert r.returncode == 1  # nobody consented to that purpose

    r = run(home, "subject", "show", sid, "--json")
    shown = json.loads(r.stdout)
    assert shown["templates"] == 2 and shown["consents"][0]["reference"] == "form-42"
    r = run(home, "subject", "list")
    assert r.returncode == 0 and "Joe Biden" in r.stdout


def test_subject_without_consent_is_refused(home: Path) -> None:
    r = run(home, "subject", "add", "Nobody", "--purpose", "door")
    assert r.returncode == 2
    assert "--consent-ref" in r.stderr
    r = run(
        home,
        "subject",
        "add",
        "Nobody",
        "--consent-ref",
        "f",
        "--purpose",
        "door",
        "--expires",
        "someday",
    )
    assert r.returncode == 2
    assert r.stderr.strip().startswith("visage: error:")


def test_enrol_rejection_exit_code(home: Path, data: Path) -> None:
    sid = json.loads(
        run(home, "subject", "add", "X", "--consent-ref", "f", "--purpose", "p", "--json").stdout
    )["id"]
    r = run(home, "enroll", sid, str(data / "scenes/two_people.jpg"), "--json")
    assert r.returncode == 2
    assert "faces found" in json.loads(r.stdout)["rejected"][0]["reason"]


def test_verify_contract(home: Path, data: Path) -> None:
    r = run(
        home,
        "verify",
        str(data / "people/kit_harington/1.jpg"),
        str(data / "people/kit_harington/2.jpg"),
        "--json",
    )
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert set(out) == {"same", "score", "threshold"} and out["same"] is True
    r = run(
        home,
        "verify",
        str(data / "people/kit_harington/1.jpg"),
        str(data / "people/rose_leslie/1.jpg"),
        "--json",
    )
    assert r.returncode == 1 and json.loads(r.stdout)["same"] is False


def test_detect_json(home: Path, data: Path) -> None:
    r = run(home, "detect", str(data / "scenes/kit_with_rose.jpg"), "--json")
    faces = json.loads(r.stdout)["faces"]
    assert len(faces) == 2
    assert set(faces[0]) == {"box", "score", "landmarks", "quality"}


def test_the_real_executable_keeps_the_contract(
    home: Path, data: Path, bad_files: dict[str, Path]
) -> None:
    """``python -m visage`` as a process: one JSON document on stdout and nothing on stderr
    (no library noise), exit 1 for a negative answer, one line on stderr and exit 2 for bad
    input."""
    r = run_process(  # two people's 250x250 photos: the process's work is small beside it
        home,
        "verify",
        str(data / "lfw10/Ariel_Sharon/Ariel_Sharon_0001.jpg"),
        str(data / "lfw10/Tony_Blair/Tony_Blair_0001.jpg"),
        "--json",
    )
    assert r.returncode == 1 and r.stderr == "", r.stderr
    assert json.loads(r.stdout)["same"] is False
    r = run_process(home, "identify", str(bad_files["truncated"]), "--purpose", "access-control")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("visage: error:"), r.stderr


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, data: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    raw = (data / "people/barack_obama/1.jpg").read_bytes()
    files = {
        "empty": d / "empty.jpg",
        "truncated": d / "truncated.jpg",
        "text": d / "text.jpg",
        "huge": d / "huge.png",
        "missing": d / "missing.jpg",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(raw[: len(raw) * 2 // 3])
    files["text"].write_text("GIF89a? no, just text\n")
    huge_png(files["huge"])
    return files


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "huge", "missing"])
@pytest.mark.parametrize("command", ["detect", "identify", "verify"])
def test_bad_input_is_one_line_and_exit_2(
    home: Path, data: Path, bad_files: dict[str, Path], kind: str, command: str
) -> None:
    path = str(bad_files[kind])
    args = {
        "detect": ["detect", path],
        "identify": ["identify", path, "--purpose", "access-control"],
        # The first image is analysed in full before the second is read: a 250x250 one
        # keeps that cheap (the claim is about the second).
        "verify": ["verify", str(data / "lfw10/Ariel_Sharon/Ariel_Sharon_0001.jpg"), path],
    }[command]
    r = run(home, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("visage: error:") and Path(path).name in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_rgba_grayscale_and_sixteen_bit_are_handled(home: Path, data: Path, tmp_path: Path) -> None:
    gray = tmp_path / "gray.jpg"  # from a 250x250 photo: the claim is about the pixel format
    Image.open(data / "lfw10/Ariel_Sharon/Ariel_Sharon_0001.jpg").convert("L").save(gray)
    deep = tmp_path / "deep.png"
    g16 = (np.asarray(Image.open(gray), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(g16).save(deep)
    for image in (data / "hard/rgba_32bit.png", gray, deep):
        r = run(home, "detect", str(image), "--json")
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        assert len(json.loads(r.stdout)["faces"]) == 1


def test_uninitialised_home_is_a_clear_error(tmp_path: Path, data: Path) -> None:
    r = run(
        tmp_path / "nothing-here", "identify", str(data / "scenes/two_people.jpg"), "--purpose", "x"
    )
    assert r.returncode == 2
    assert "visage init" in r.stderr and "Traceback" not in r.stderr


def test_eval_json(home: Path, data: Path, tmp_path: Path) -> None:
    root = tmp_path / "lfw"
    root.mkdir()
    lines = ["image_a,image_b,same"]
    for a, b, same in [
        ("Tony_Blair/Tony_Blair_0001.jpg", "Tony_Blair/Tony_Blair_0002.jpg", 1),
        ("Tony_Blair/Tony_Blair_0001.jpg", "Hugo_Chavez/Hugo_Chavez_0001.jpg", 0),
    ]:
        lines.append(f"{a},{b},{same}")
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    r = run(
        home,
        "eval",
        "--pairs",
        str(root / "pairs.csv"),
        "--root",
        str(data / "lfw10"),
        "--plot",
        str(tmp_path / "det.svg"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("pairs", "accuracy", "fmr", "fnmr", "threshold", "failures_to_acquire"):
        assert key in out
    assert out["pairs"] == 2 and out["accuracy"] == 1.0
    assert (tmp_path / "det.svg").read_text().lstrip().startswith("<?xml")


def test_profile_gate_from_the_cli(tmp_path: Path, data: Path) -> None:
    home = tmp_path / "gated"
    assert run(home, "init").returncode == 0
    r = run(home, "identify", str(data / "scenes/two_people.jpg"), "--purpose", "door")
    assert r.returncode == 2 and "DPIA" in r.stderr and "Traceback" not in r.stderr
    r = run(
        home,
        "profile",
        "set",
        "--jurisdiction",
        "MA",
        "--dpia-ref",
        "D-1",
        "--public-space",
        "yes",
        "--json",
    )
    assert r.returncode == 0 and json.loads(r.stdout)["public_space"] is True
    r = run(home, "profile", "show")
    assert "CNDP" in r.stdout
    r = run(home, "profile", "set", "--public-space", "maybe")
    assert r.returncode == 2 and "yes or no" in r.stderr


def test_profile_set_takes_every_field_of_the_profile(tmp_path: Path) -> None:
    """The CLI door offers every field the use-case takes (``ProfileChanges``), as the API
    and the console do: a new field without its option fails here."""
    from typer.main import get_command

    from visage.cli import app as cli_app
    from visage.usecases.profile import ProfileChanges

    group = get_command(cli_app)
    profile_group = group.commands["profile"]  # type: ignore[attr-defined]
    options = {p.name for p in profile_group.commands["set"].params}
    offered = {"watchlist_purposes" if o == "watchlist" else o for o in options}
    assert set(ProfileChanges.model_fields) <= offered
    home = tmp_path / "home"
    assert run(home, "init").returncode == 0
    r = run(
        home,
        "profile",
        "set",
        "--rights-contact",
        "rights@example.org",
        "--supervisory-authority",
        "CNIL, 3 place de Fontenoy, Paris",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["rights_contact"] == "rights@example.org"
    assert shown["supervisory_authority"].startswith("CNIL")


def test_demo_job_end_to_end(tmp_path: Path, data: Path) -> None:
    """The main job behind `make demo`: enrol, identify, anonymise, report. The folder has
    the layout of shared/faces with each person's first photo and the first third of a
    second of its clip: the job does the same for one photo as for four, and for 11 frames
    as for 275 (the full clip is anonymised and judged in tests/media/test_video.py); each
    photo and frame costs a detection."""
    folder = tmp_path / "faces"
    (folder / "video").mkdir(parents=True)
    (folder / "scenes").symlink_to(data / "scenes", target_is_directory=True)
    for person in sorted(p for p in (data / "people").iterdir() if p.is_dir()):
        (folder / "people" / person.name).mkdir(parents=True)
        first = sorted(person.iterdir())[0]
        (folder / "people" / person.name / first.name).symlink_to(first)
    clip_head(data / "video/hamilton_clip.mp4", folder / "video/hamilton_clip.mp4", 0.34)
    home = tmp_path / "demo"
    r = run(home, "init")
    assert r.returncode == 0, r.stderr
    r = run(home, "demo", "--data", str(folder), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["subjects"] >= 10 and report["audit_intact"] is True
    assert report["templates"] == report["subjects"] and report["rejected"] == []
    assert any(m["name"] for m in report["matches"])
    assert Path(report["anonymized_video"]).stat().st_size > 10_000
    assert "data:image/png;base64," in Path(report["transparency_report"]).read_text()
