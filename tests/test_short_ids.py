"""Short ids at the command line (issue 14 §4) and ``visage enroll ID DIR`` (§5): a unique
prefix stands for an id, as git takes short hashes; tables show 8 characters in 80 columns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.cli_runner import run
from visage.cli import _ids
from visage.config import Settings
from visage.core import Visage
from visage.errors import InputError
from visage.store.schema import ApiKeyRow
from visage.usecases import ids


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("short-ids")
    assert run(home, "init").returncode == 0
    return home


def _add(home: Path, name: str) -> str:
    r = run(home, "subject", "add", name, "--consent-ref", f"F-{name}", "--purpose", "door")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_cli_shows_as_many_characters_as_the_use_case() -> None:
    assert _ids.SHORT == ids.SHORT == 8
    assert _ids.short("0123456789abcdef" * 2) == "01234567"


def test_a_unique_prefix_stands_for_the_subject(home: Path) -> None:
    sid = _add(home, "Ada")
    assert len(sid) == 32
    r = run(home, "subject", "show", sid[:6], "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == sid
    r = run(home, "subject", "show", sid[:6].upper(), "--json")  # as typed from a table
    assert json.loads(r.stdout)["id"] == sid
    r = run(home, "subject", "show", sid[:3])
    assert r.returncode == 2
    assert "too short" in r.stderr and "at least 4" in r.stderr
    r = run(home, "subject", "show", "ffff0000")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_an_ambiguous_prefix_is_refused_with_the_count(home: Path) -> None:
    made = [run(home, "keys", "create", "--role", "auditor", "--json") for _ in range(2)]
    key_ids = [json.loads(r.stdout)["id"] for r in made]
    core = Visage(Settings(home=home))
    try:
        with core.store.session() as session:  # two ids that share their first 4 characters
            for n, key_id in enumerate(key_ids):
                session.execute(
                    text("UPDATE api_keys SET id = :new WHERE id = :old"),
                    {"new": f"abcd{n}" + key_id[5:], "old": key_id},
                )
        with core.store.session() as session, pytest.raises(ids.AmbiguousIdError) as caught:
            ids.resolve_prefix(session, ApiKeyRow, "ABCD", "key")
        assert "matches 2 keys" in caught.value.message
        with core.store.session() as session, pytest.raises(InputError):
            ids.resolve_prefix(session, ApiKeyRow, "ab", "key")
    finally:
        core.close()
    r = run(home, "keys", "revoke", "abcd")
    assert r.returncode == 2
    assert "ambiguous" in r.stderr and "matches 2 keys" in r.stderr
    r = run(home, "keys", "revoke", "abcd1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == "abcd1" + key_ids[1][5:]
    listed = {
        k["id"]: k["revoked_at"] for k in json.loads(run(home, "keys", "list", "--json").stdout)
    }
    assert listed["abcd0" + key_ids[0][5:]] is None  # the other key still works


def test_tables_show_short_ids_within_80_columns(home: Path) -> None:
    sid = _add(home, "Grace Brewster Murray Hopper")
    r = run(home, "subject", "list", COLUMNS="80")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(sid[:8] in line for line in lines)
    assert sid not in r.stdout  # never the full id in the table
    r = run(home, "keys", "list", COLUMNS="80")
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_enroll_a_folder_gives_a_verdict_per_file(home: Path, data: Path, tmp_path: Path) -> None:
    sid = _add(home, "Ariel")
    folder = tmp_path / "ariel"
    folder.mkdir()
    # Small photos (250x250 of one person, 501x700 of two): every file is detected twice,
    # and the verdicts do not depend on the size.
    shutil.copy(data / "lfw10/Ariel_Sharon/Ariel_Sharon_0001.jpg", folder / "a.jpg")
    shutil.copy(data / "lfw10/Ariel_Sharon/Ariel_Sharon_0003.jpg", folder / "b.JPG")
    shutil.copy(data / "scenes/kit_with_rose.jpg", folder / "c.jpg")
    (folder / "notes.txt").write_text("not a photo")  # not an image file: not taken
    (folder / "sub").mkdir()  # not entered
    shutil.copy(data / "lfw10/Ariel_Sharon/Ariel_Sharon_0001.jpg", folder / "sub" / "d.jpg")
    r = run(home, "enroll", sid[:8], str(folder), COLUMNS="250")
    assert r.returncode == 2  # one file rejected
    rows = [line for line in r.stdout.splitlines() if "enrolled" in line or "rejected" in line]
    verdicts = {
        name: ("enrolled" if " enrolled " in line else "rejected")
        for line in rows
        for name in ("a.jpg", "b.JPG", "c.jpg", "notes.txt", "d.jpg")
        if name in line
    }
    assert verdicts == {"a.jpg": "enrolled", "b.JPG": "enrolled", "c.jpg": "rejected"}
    assert "several_faces" in r.stdout
    assert "2 enrolled, 1 rejected" in r.stdout

    r = run(home, "enroll", sid, str(folder), "--json")
    report = json.loads(r.stdout)  # one JSON document, no progress bar mixed in
    assert [Path(e["image"]).name for e in report["enrolled"]] == ["a.jpg", "b.JPG"]
    assert [x["code"] for x in report["rejected"]] == ["several_faces"]

    empty = tmp_path / "empty"
    empty.mkdir()
    r = run(home, "enroll", sid, str(empty))
    assert r.returncode == 2 and "no image file in this folder" in r.stderr
