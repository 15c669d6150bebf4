"""The data directory's search index: encrypted cache, versioning, immediate updates."""

from __future__ import annotations

from pathlib import Path

from visage.core import Visage
from visage.gallery import repository as repo
from visage.gallery.live import CACHE_FILE, JOURNAL_FILE
from visage.store.schema import SubjectRow
from visage.usecases.enroll import enroll
from visage.usecases.erase import erase
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


def _embedding(app: Visage, photo: Path) -> bytes:
    face = app.analyzer.analyze(app.load_image(photo).pixels)[0]
    assert face.embedding is not None
    return face.embedding.astype("<f4").tobytes()


def _kit_then_rose(app: Visage, data: Path) -> tuple[str, str]:
    """Kit enrolled and the index snapshotted (by a search); then Rose enrolled, journalled."""
    kit = add_subject(app, "Kit", make_consent("f", ["door"])).id
    enroll(app, kit, [data / "people/kit_harington/1.jpg"])
    identify(app, data / "scenes/kit_with_rose.jpg", "door")
    rose = add_subject(app, "Rose", make_consent("f", ["door"])).id
    enroll(app, rose, [data / "people/rose_leslie/1.jpg"])
    return kit, rose


def _names_seen(app: Visage, data: Path) -> set[str]:
    found = identify(app, data / "scenes/kit_with_rose.jpg", "door")
    return {c.name for f in found.faces for c in f.candidates}


def _other_process(app: Visage) -> Visage:
    other = Visage(app.settings)
    other._analyzer = app.analyzer
    return other


def test_enrolments_are_journalled_not_rewritten(fresh_app: Visage, data: Path) -> None:
    """After the first snapshot, each enrolment appends one sealed journal record; another
    process replays snapshot + journal and sees every subject."""
    kit = add_subject(fresh_app, "Kit", make_consent("f", ["door"])).id
    enroll(fresh_app, kit, [data / "people/kit_harington/1.jpg"])
    identify(fresh_app, data / "scenes/kit_with_rose.jpg", "door")  # first snapshot
    snapshot = (fresh_app.home / CACHE_FILE).read_bytes()
    rose = add_subject(fresh_app, "Rose", make_consent("f", ["door"])).id
    enroll(fresh_app, rose, [data / "people/rose_leslie/1.jpg", data / "people/rose_leslie/2.jpg"])

    assert (fresh_app.home / CACHE_FILE).read_bytes() == snapshot  # not rewritten
    journal = (fresh_app.home / JOURNAL_FILE).read_bytes()
    assert len(journal) > 2 * 512  # two records of a 128-float vector each, sealed
    for photo in ("people/rose_leslie/1.jpg", "people/rose_leslie/2.jpg"):
        assert _embedding(fresh_app, data / photo)[:64] not in journal
    assert rose.encode() not in journal

    other = _other_process(fresh_app)
    assert _names_seen(other, data) == {"Kit", "Rose"}
    assert other.gallery._load_cache(other.gallery._current_version()) is not None  # replayed
    other.close()


def test_a_torn_or_tampered_journal_means_a_rebuild(fresh_app: Visage, data: Path) -> None:
    _kit_then_rose(fresh_app, data)
    journal, cache = fresh_app.home / JOURNAL_FILE, fresh_app.home / CACHE_FILE
    whole, snapshot = journal.read_bytes(), cache.read_bytes()
    for damaged in (whole[:-10], whole[:20] + bytes([whole[20] ^ 1]) + whole[21:]):
        journal.write_bytes(damaged)
        cache.write_bytes(snapshot)  # the rebuild of the previous round replaced it
        other = _other_process(fresh_app)
        assert other.gallery._load_cache(other.gallery._current_version()) is None
        assert _names_seen(other, data) == {"Kit", "Rose"}  # rebuilt from the store
        other.close()


def test_erasure_drops_the_journal_and_the_subject(fresh_app: Visage, data: Path) -> None:
    _, rose = _kit_then_rose(fresh_app, data)
    old_journal = (fresh_app.home / JOURNAL_FILE).read_bytes()
    erase(fresh_app, rose)
    assert not (fresh_app.home / JOURNAL_FILE).exists()
    assert _names_seen(fresh_app, data) == {"Kit"}
    # A copy of the old journal put back can't be opened: the index key was replaced.
    (fresh_app.home / JOURNAL_FILE).write_bytes(old_journal)
    other = _other_process(fresh_app)
    assert _names_seen(other, data) == {"Kit"}
    other.close()
