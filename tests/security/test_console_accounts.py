"""Attacks on the console's accounts and sessions (issue 13, "People, not only keys").

Each test is an attack: guessing a password (from one address, or many), guessing a
one-time code, replaying a one-time code seen over a shoulder, replaying a token after
sign-out, using a session digest read from a stolen database, planting a session token
before the victim signs in (fixation), coming back to an abandoned session, telling
existing names from the answer's timing, and reading passwords from the data directory.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select, update

from tests.conftest import make_app
from tests.pg import copy_database, stored_bytes
from visage.core import Visage
from visage.governance import users as gov_users
from visage.governance.access import AuthError, Role
from visage.governance.audit import Actor
from visage.store.schema import AuditEntryRow, WebSessionRow
from visage.usecases import users as uc

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def victim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed data dir with the victim's admin account: each test attacks a copy of its
    own (a copy costs a third of a new data dir's keys and migrations)."""
    home = tmp_path_factory.mktemp("accounts") / "home"
    c = make_app(home)
    uc.add_user(c, uc.NewUser(name="victim", role=Role.admin), PASSWORD, Actor.local())
    c.close()
    return home


@pytest.fixture()
def core(victim_home: Path, tmp_path: Path) -> Iterator[Visage]:
    shutil.copytree(victim_home, tmp_path / "home")
    copy_database(victim_home, tmp_path / "home")
    c = make_app(tmp_path / "home")  # default limits: 5 failures in 15 minutes
    yield c
    c.close()


def _data_bytes(core: Visage) -> bytes:
    """Everything the data directory's database holds (on SQLite, on disk, write-ahead log
    included)."""
    return stored_bytes(core.store)


def test_brute_force_is_throttled_even_with_the_right_password(core: Visage) -> None:
    attempts = core.settings.sign_in_attempts
    for i in range(attempts):
        with pytest.raises(AuthError):
            uc.sign_in(core, "victim", f"guess number {i:04d}", None, "203.0.113.5")
    # the attacker's sixth guess is the right one: refused without being checked
    with pytest.raises(uc.ThrottledError) as caught:
        uc.sign_in(core, "victim", PASSWORD, None, "203.0.113.5")
    assert 0 < caught.value.retry_after <= 15 * 60
    # spreading the guesses over many addresses does not help: the name is throttled too
    with pytest.raises(uc.ThrottledError):
        uc.sign_in(core, "VICTIM", PASSWORD, None, "198.51.100.77")
    # nor does trying many names from one address
    for i in range(attempts):
        with pytest.raises(AuthError):
            uc.sign_in(core, f"user{i}", "whatever password", None, "192.0.2.1")
    uc.add_user(core, uc.NewUser(name="other", role=Role.auditor), PASSWORD, Actor.local())
    with pytest.raises(uc.ThrottledError):
        uc.sign_in(core, "other", PASSWORD, None, "192.0.2.1")
    with core.store.session() as session:
        outcomes = list(
            session.scalars(
                select(AuditEntryRow.outcome).where(AuditEntryRow.operation == "sign_in")
            )
        )
    assert outcomes and set(outcomes) == {"refused"}


def test_one_time_codes_cannot_be_guessed_past_the_limit(core: Visage) -> None:
    setup = uc.begin_totp(core, "victim")
    totp = pyotp.TOTP(setup.secret)
    uc.confirm_totp(core, "victim", setup.secret, totp.now(), Actor.local())
    # the attacker has the password and guesses codes
    for i in range(core.settings.sign_in_attempts):
        code = f"{(int(totp.now()) + 1000 * (i + 1)) % 1_000_000:06d}"
        with pytest.raises(uc.TotpRequiredError):
            uc.sign_in(core, "victim", PASSWORD, code, "203.0.113.9")
    with pytest.raises(uc.ThrottledError):
        uc.sign_in(core, "victim", PASSWORD, totp.now(), "203.0.113.9")


def _next_code(totp: pyotp.TOTP) -> str:
    """The authenticator's code 30 s from now: still accepted now (clock drift)."""
    return totp.at(datetime.now(UTC) + timedelta(seconds=totp.interval))


def test_a_one_time_code_signs_in_once(core: Visage) -> None:
    """RFC 6238 §5.2: a code seen over the victim's shoulder (or the code that confirmed the
    authenticator) is refused while it is still valid, and the attempt counts as a failure."""
    setup = uc.begin_totp(core, "victim")
    totp = pyotp.TOTP(setup.secret)
    confirming = totp.now()
    uc.confirm_totp(core, "victim", setup.secret, confirming, Actor.local())
    with pytest.raises(uc.TotpRequiredError, match="already used"):
        uc.sign_in(core, "victim", PASSWORD, confirming, "198.51.100.7")
    code = _next_code(totp)
    signed = uc.sign_in(core, "victim", PASSWORD, code, "192.0.2.1")
    uc.sign_out(core, signed.token)
    with pytest.raises(uc.TotpRequiredError, match="already used"):
        uc.sign_in(core, "victim", PASSWORD, code, "198.51.100.7")
    with pytest.raises(uc.TotpRequiredError, match="already used"):  # nor an earlier one
        uc.sign_in(core, "victim", PASSWORD, confirming, "198.51.100.7")
    with core.store.session() as session:
        reasons = list(
            session.scalars(
                select(AuditEntryRow.details).where(AuditEntryRow.operation == "sign_in")
            )
        )
    assert [r.get("reason", "") for r in reasons] == [
        "one-time code already used",
        "",
        "one-time code already used",
        "one-time code already used",
    ]
    # Turning TOTP off and on again starts from the new secret's own codes.
    uc.disable_totp(core, "victim", Actor.local())
    again = uc.begin_totp(core, "victim")
    fresh = pyotp.TOTP(again.secret)
    uc.confirm_totp(core, "victim", again.secret, fresh.now(), Actor.local())
    assert uc.sign_in(core, "victim", PASSWORD, _next_code(fresh), "192.0.2.1").token


def test_two_sign_ins_racing_with_one_code_give_one_session(core: Visage) -> None:
    """An attacker relaying the victim's code as the victim types it: of two sign-ins with
    the same code at the same moment, exactly one gets a session."""
    setup = uc.begin_totp(core, "victim")
    totp = pyotp.TOTP(setup.secret)
    uc.confirm_totp(core, "victim", setup.secret, totp.now(), Actor.local())
    code = _next_code(totp)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(client: str) -> None:
        start.wait()
        try:
            uc.sign_in(core, "victim", PASSWORD, code, client)
            outcomes.append("signed in")
        except uc.TotpRequiredError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(c,)) for c in ("192.0.2.1", "192.0.2.2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == [
        "signed in",
        "that one-time code was already used: enter the next one",
    ]
    with core.store.session() as session:
        live = session.scalars(select(WebSessionRow)).all()
    assert len(live) == 1


def test_a_token_from_before_sign_out_is_refused(core: Visage) -> None:
    signed = uc.sign_in(core, "victim", PASSWORD, None, "c")
    uc.resume_session(core, signed.token)
    uc.sign_out(core, signed.token)
    with pytest.raises(AuthError):
        uc.resume_session(core, signed.token)
    with pytest.raises(AuthError):
        uc.change_own_password(core, signed.token, PASSWORD, "taken over passphrase")


def test_a_digest_stolen_from_the_database_is_no_token(core: Visage) -> None:
    signed = uc.sign_in(core, "victim", PASSWORD, None, "c")
    with core.store.session() as session:
        (digest,) = session.scalars(select(WebSessionRow.digest)).all()
    assert signed.token.encode() not in _data_bytes(core)
    for stolen in (digest, digest.upper(), signed.csrf):
        with pytest.raises(AuthError):
            uc.resume_session(core, stolen)
    assert uc.resume_session(core, signed.token).principal.owner == "victim"


def test_a_planted_token_never_becomes_a_session(core: Visage) -> None:
    planted = "attacker-chosen-token-0123456789abcdef0123456789"
    with pytest.raises(AuthError):
        uc.resume_session(core, planted)
    signed = uc.sign_in(core, "victim", PASSWORD, None, "c", replaces=planted)
    assert signed.token != planted
    with pytest.raises(AuthError):
        uc.resume_session(core, planted)
    # the attacker's own earlier session (same account, e.g. a shared browser) ends when
    # the victim signs in with it still in the cookie
    old = uc.sign_in(core, "victim", PASSWORD, None, "c")
    new = uc.sign_in(core, "victim", PASSWORD, None, "c", replaces=old.token)
    with pytest.raises(AuthError):
        uc.resume_session(core, old.token)
    assert new.token != old.token and uc.resume_session(core, new.token)


def test_an_idle_session_is_refused(core: Visage) -> None:
    signed = uc.sign_in(core, "victim", PASSWORD, None, "c")
    abandoned = datetime.now(UTC) - timedelta(minutes=core.settings.web_idle_minutes, seconds=5)
    with core.store.session() as session:
        session.execute(update(WebSessionRow).values(last_seen=abandoned))
    with pytest.raises(AuthError):
        uc.resume_session(core, signed.token)
    with pytest.raises(AuthError):  # and refusing it did not bring it back
        uc.resume_session(core, signed.token)


def test_a_disabled_account_loses_its_open_sessions(core: Visage) -> None:
    uc.add_user(core, uc.NewUser(name="second", role=Role.admin), PASSWORD, Actor.local())
    signed = uc.sign_in(core, "victim", PASSWORD, None, "c")
    uc.disable_user(core, "victim", Actor.local())
    with pytest.raises(AuthError):
        uc.resume_session(core, signed.token)


@pytest.fixture()
def production_core(tmp_path: Path) -> Iterator[Visage]:
    """As ``core``, with the product's own argon2 parameters for the whole test (the suite
    hashes with the cheapest elsewhere)."""
    with gov_users.hashing_parameters(gov_users.PRODUCTION_HASHING):
        c = make_app(tmp_path / "home")
        uc.add_user(c, uc.NewUser(name="victim", role=Role.admin), PASSWORD, Actor.local())
        yield c
        c.close()


def test_unknown_names_take_as_long_as_wrong_passwords(production_core: Visage) -> None:
    """No timing oracle: a name that is no account still costs one argon2 hash."""
    core = production_core

    def timed(name: str, client: str) -> float:
        start = time.perf_counter()
        with pytest.raises(AuthError):
            uc.sign_in(core, name, "not the password", None, client)
        return time.perf_counter() - start

    known = [timed("victim", f"k{i}") for i in range(3)]
    unknown = [timed(f"ghost{i}", f"u{i}") for i in range(3)]
    # without the dummy hash an unknown name answers >10x faster; allow for a busy machine
    assert statistics.median(unknown) > 0.4 * statistics.median(known)


def test_no_password_reaches_the_data_directory(core: Visage) -> None:
    typed_as_name = "MyS3cret-Typed-In-The-Name-Field"
    with pytest.raises(AuthError):
        uc.sign_in(core, typed_as_name, "anything at all", None, "c")
    with pytest.raises(AuthError):
        uc.sign_in(core, "victim", "a wrong guess here", None, "c")
    uc.sign_in(core, "victim", PASSWORD, None, "c")
    stored = _data_bytes(core).lower()
    for secret in (PASSWORD, typed_as_name, "anything at all", "a wrong guess here"):
        assert secret.lower().encode() not in stored, secret
