"""Issue 11, item 9: missing key material is an error, never an erasure.

Attacks (or accidents): the key volume is not mounted, or a backup is restored in the wrong
order, so ``keys/`` (or one key file) is missing. The next command must refuse with exit 3,
name what is missing and delete nothing. Only an erasure whose intent was recorded before the
key was destroyed may be finished, and exactly once.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from tests.cli_runner import run
from tests.conftest import make_app
from tests.pg import store_of
from visage.config import Settings
from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.erasure import KeyMaterialMissingError, record_intent
from visage.usecases import audit_log
from visage.usecases.erase import erase
from visage.usecases.subjects import add_subject, list_subjects, make_consent

PURPOSE = "door"


def _populate(home: Path, people: int = 3, templates: int = 2) -> list[str]:
    """A data dir with subjects and sealed templates (random unit vectors: no model)."""
    core = make_app(home)
    rng = np.random.default_rng(7)
    ids = []
    for i in range(people):
        sid = add_subject(core, f"Person {i}", make_consent(f"F-{i}", [PURPOSE])).id
        with core.store.session() as session:
            subject = repo.get_subject(session, sid)
            for _ in range(templates):
                v = rng.normal(size=128).astype(np.float32)
                repo.add_template(
                    session,
                    core.keyring,
                    subject,
                    v / np.linalg.norm(v),
                    model_id="test-model",
                    quality=0.9,
                )
        ids.append(sid)
    core.close()
    return ids


def _rows(
    home: Path, tables: tuple[str, ...] = ("subjects", "templates", "consents")
) -> dict[str, int]:
    """Row counts read straight from the database (no Visage code involved)."""
    store = store_of(home)
    try:
        with store.engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
    finally:
        store.close()


def _erase_entries(app: Visage) -> list[tuple[str | None, str]]:
    return [(e.subject_id, e.outcome) for e in audit_log.entries(app, operation="erase")]


def test_missing_key_folder_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ids = _populate(home)
    before = _rows(home)
    (home / "keys").rename(tmp_path / "keys-elsewhere")  # the key volume is not mounted

    app = Visage(Settings(home=home))
    for _ in range(2):  # refused every time, not only the first
        with pytest.raises(KeyMaterialMissingError) as err:
            list_subjects(app)
        assert err.value.exit_code == 3
        assert str(home / "keys") in str(err.value) and "nothing was erased" in str(err.value)
    app.close()
    assert _rows(home) == before

    (tmp_path / "keys-elsewhere").rename(home / "keys")  # mounted again: all is there
    app = Visage(Settings(home=home))
    assert sorted(s.id for s in list_subjects(app)) == sorted(ids)
    assert all(s.templates == 2 for s in list_subjects(app))
    assert _erase_entries(app) == []
    assert audit_log.verify(app).ok
    app.close()


def test_one_missing_key_file_is_named_and_nothing_is_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ids = _populate(home)
    before = _rows(home)
    key_file = home / "keys" / f"{ids[1]}.key"
    key_file.rename(tmp_path / "stray.key")

    app = Visage(Settings(home=home))
    with pytest.raises(KeyMaterialMissingError, match=str(key_file)):
        _ = app.store
    app.close()
    assert _rows(home) == before

    (tmp_path / "stray.key").rename(key_file)
    app = Visage(Settings(home=home))
    assert len(list_subjects(app)) == 3 and _erase_entries(app) == []
    app.close()


def test_cli_exits_3_naming_the_missing_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _populate(home, people=2, templates=1)
    before = _rows(home)
    (home / "keys").rename(tmp_path / "keys-elsewhere")
    r = run(home, "subject", "list", "--json")
    assert r.returncode == 3, r.stderr
    assert str(home / "keys") in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1  # one readable line, no traceback
    assert _rows(home) == before


def _interrupt(app: Visage, subject_id: str, *, destroy_key: bool) -> None:
    """A crash after step 0 (intent committed) or step 1 (key destroyed) of an erasure."""
    record_intent(app.store, subject_id, Actor.local())
    if destroy_key:
        assert app.keyring.destroy(subject_id)


def _open_at_once(apps: list[Visage]) -> None:
    barrier = threading.Barrier(len(apps))
    errors: list[BaseException] = []

    def open_store(app: Visage) -> None:
        barrier.wait()
        try:
            _ = app.store
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


@pytest.mark.parametrize("apps", [1, 2], ids=["two-threads-one-app", "two-apps"])
def test_recorded_erasure_is_finished_exactly_once(tmp_path: Path, apps: int) -> None:
    home = tmp_path / "home"
    ids = _populate(home)
    app = Visage(Settings(home=home))
    _interrupt(app, ids[0], destroy_key=True)  # crashed after destroying the key
    _interrupt(app, ids[1], destroy_key=False)  # crashed just before destroying it
    app.close()

    opened = [Visage(Settings(home=home)) for _ in range(apps)]
    targets = opened * 2 if apps == 1 else opened  # two threads on one app, or two apps
    _open_at_once(targets)

    app = opened[0]
    assert sorted(_erase_entries(app)) == sorted([(ids[0], "resumed"), (ids[1], "resumed")])
    assert [s.id for s in list_subjects(app)] == [ids[2]]
    assert not app.keyring.exists(ids[0]) and not app.keyring.exists(ids[1])
    assert _rows(home) == {"subjects": 1, "templates": 2, "consents": 1}
    assert _rows(home, ("erasure_intents",)) == {"erasure_intents": 0}
    assert (home / "certificates" / f"{ids[0]}.json").is_file()
    assert audit_log.verify(app).ok
    for a in opened:
        a.close()


def test_a_key_truly_lost_is_erased_only_when_asked(tmp_path: Path) -> None:
    """The way out when a key file is gone for good: `visage erase ID` records the erasure;
    the other subjects, whose keys are there, are untouched."""
    home = tmp_path / "home"
    ids = _populate(home)
    (home / "keys" / f"{ids[0]}.key").unlink()
    app = Visage(Settings(home=home))
    with pytest.raises(KeyMaterialMissingError):
        list_subjects(app)

    cert = erase(app, ids[0])

    assert cert.verify() and cert.body.subject_id == ids[0]
    assert sorted(s.id for s in list_subjects(app)) == sorted(ids[1:])
    assert _rows(home) == {"subjects": 2, "templates": 4, "consents": 2}
    assert _erase_entries(app) == [(ids[0], "resumed")]
    app.close()
