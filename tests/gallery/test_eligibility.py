"""The per-purpose cache of eligible subjects: reused only while nothing changed.

Every change of subjects or consents, by any path or process, re-stamps the consent token
(database triggers); time limits (a consent's last day, a dated withdrawal) end an answer
on their own. A withdrawal must take effect on the very next search.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import text

from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance.consent import ConsentRecord
from visage.store.meta import get_meta
from visage.usecases.enroll import enroll
from visage.usecases.erase import erase
from visage.usecases.identify import identify
from visage.usecases.subjects import (
    add_consent,
    add_subject,
    make_consent,
    rename_subject,
    withdraw_consent,
)


def _token(app: Visage) -> bytes | None:
    with app.store.session() as session:
        return get_meta(session, repo.CONSENT_TOKEN)


def _eligible(app: Visage, purpose: str = "door", now: datetime | None = None) -> set[str]:
    with app.store.session() as session:
        ids = app.eligibility.get(session, purpose, now).ids
        return set(repo.subject_names(session, app.keyring, set(ids)).values())


def test_every_change_of_subjects_or_consents_restamps_the_token(fresh_app: Visage) -> None:
    seen = [_token(fresh_app)]
    sid = add_subject(fresh_app, "Ada", make_consent("a", ["door"])).id
    seen.append(_token(fresh_app))
    rename_subject(fresh_app, sid, "Ada L.")
    seen.append(_token(fresh_app))
    add_consent(fresh_app, sid, make_consent("b", ["payroll"]))
    seen.append(_token(fresh_app))
    withdraw_consent(fresh_app, sid, "b")
    seen.append(_token(fresh_app))
    with fresh_app.store.session() as session:  # a raw statement, as another tool might
        session.execute(text("UPDATE consents SET expires_on = '2099-01-01'"))
    seen.append(_token(fresh_app))
    erase(fresh_app, sid)
    seen.append(_token(fresh_app))
    assert None not in seen and len(set(seen)) == len(seen)


def test_answers_are_reused_until_a_change_then_recomputed(fresh_app: Visage) -> None:
    ada = add_subject(fresh_app, "Ada", make_consent("a", ["door"])).id
    with fresh_app.store.session() as session:
        first = fresh_app.eligibility.get(session, "door")
        assert fresh_app.eligibility.get(session, "Door") is first  # reused, same object
    assert first.ids == {ada}
    withdraw_consent(fresh_app, ada, "a")
    assert _eligible(fresh_app) == set()  # at once, not after a refresh period

    # Another process (say, the CLI while the server runs) adds a subject.
    other = Visage(fresh_app.settings)
    add_subject(other, "Grace", make_consent("g", ["door"]))
    other.close()
    assert _eligible(fresh_app) == {"Grace"}


def test_time_alone_ends_an_answer(fresh_app: Visage) -> None:
    today = datetime.now(UTC).date()
    now = datetime.combine(today, time(12), UTC)  # noon: an hour later is still today
    add_subject(fresh_app, "Last day", make_consent("a", ["door"], expires_on=today))
    withdrawal = now + timedelta(hours=1)
    with fresh_app.store.session() as session:
        repo.create_subject(
            session,
            fresh_app.keyring,
            "Leaving",
            ConsentRecord(reference="b", purposes=("door",), withdrawn_at=withdrawal),
        )
    assert _eligible(fresh_app, now=now) == {"Last day", "Leaving"}
    assert _eligible(fresh_app, now=withdrawal + timedelta(seconds=1)) == {"Last day"}
    midnight = datetime.combine(today + timedelta(days=1), time(), UTC)
    assert _eligible(fresh_app, now=midnight) == set()


def test_a_withdrawal_stops_identification_on_the_next_search(
    fresh_app: Visage, data: Path
) -> None:
    photo = data / "people/rose_leslie/1.jpg"
    rose = add_subject(fresh_app, "Rose", make_consent("r", ["door"])).id
    enroll(fresh_app, rose, [photo])
    assert identify(fresh_app, photo, "door").faces[0].candidates
    withdraw_consent(fresh_app, rose, "r")
    assert not identify(fresh_app, photo, "door").faces[0].candidates
