"""The data directory's search index: encrypted cache, versioning, immediate updates."""

from __future__ import annotations

from pathlib import Path

from visage.app import Visage
from visage.gallery import repository as repo
from visage.gallery.live import CACHE_FILE
from visage.store.schema import SubjectRow
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, make_consent


def test_cache_is_encrypted_and_reused(fresh_app: Visage, data: Path) -> None:
    sid = add_subject(fresh_app, "Rose", make_consent("f", ["door"])).id
    enroll(fresh_app, sid, [data / "people/rose_leslie/1.jpg"])
    assert identify(fresh_app, data / "scenes/kit_with_rose.jpg", "door").faces
    cache = fresh_app.home / CACHE_FILE
    assert cache.is_file()
    embedding = fresh_app.analyzer.analyze(
        fresh_app.load_image(data / "people/rose_leslie/1.jpg").pixels
    )[0].embedding
    assert embedding is not None
    assert embedding.astype("<f4").tobytes()[:64] not in cache.read_bytes()

    # A second process (a new app on the same data dir) loads the cache and finds Rose.
    other = Visage(fresh_app.settings)
    other._analyzer = fresh_app.analyzer
    found = identify(other, data / "scenes/kit_with_rose.jpg", "door")
    assert [c.name for f in found.faces for c in f.candidates] == ["Rose"]
    other.close()


def test_changes_from_another_process_are_seen(fresh_app: Visage, data: Path) -> None:
    scene = data / "scenes/kit_with_rose.jpg"
    kit = add_subject(fresh_app, "Kit", make_consent("f", ["door"])).id
    enroll(fresh_app, kit, [data / "people/kit_harington/1.jpg"])
    assert len(identify(fresh_app, scene, "door").faces) == 2

    other = Visage(fresh_app.settings)  # e.g. a CLI call while a server runs
    other._analyzer = fresh_app.analyzer
    rose = add_subject(other, "Rose", make_consent("f", ["door"])).id
    enroll(other, rose, [data / "people/rose_leslie/1.jpg"])
    other.close()

    names = {c.name for f in identify(fresh_app, scene, "door").faces for c in f.candidates}
    assert names == {"Kit", "Rose"}


def test_removed_subject_vanishes_at_once(fresh_app: Visage, data: Path) -> None:
    photo = data / "people/joe_biden/1.jpg"
    sid = add_subject(fresh_app, "Joe", make_consent("f", ["door"])).id
    enroll(fresh_app, sid, [photo])
    assert identify(fresh_app, photo, "door").faces[0].candidates
    with fresh_app.store.session() as session:
        session.delete(session.get(SubjectRow, sid))
        repo.bump_gallery_version(session, f"-{sid}")
    assert not identify(fresh_app, photo, "door").faces[0].candidates
    assert sid.encode() not in (fresh_app.home / CACHE_FILE).read_bytes()
