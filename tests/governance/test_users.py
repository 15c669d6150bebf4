"""Console user accounts: the use-cases the web console calls, and ``visage users``.

Real data dirs (SQLite, master key, audit chain); no model is ever loaded here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select, update

from tests.cli_runner import run
from tests.conftest import make_app
from tests.pg import copy_database, stored_bytes
from visage.core import Visage
from visage.errors import InputError, NotFoundError
from visage.governance import audit_ops
from visage.governance import users as gov_users
from visage.governance.access import (
    AuthError,
    ForbiddenError,
    KeyPurposeRequiredError,
    Principal,
    Role,
    owner_of,
)
from visage.governance.audit import Actor, AuditEntry
from visage.governance.audit_ops import AuditOp, SignInAudit
from visage.governance.review import Candidate, Decision, ReviewConflictError, open_review
from visage.store.schema import AuditEntryRow, ReviewRow, SignInFailureRow, UserRow, WebSessionRow
from visage.usecases import audit_log
from visage.usecases import review as review_uc
from visage.usecases import users as uc
from visage.usecases.keys import authenticate, create_key
from visage.usecases.subjects import add_subject, make_consent

PASSWORD = "correct horse battery"
ADMIN = Actor.local()


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, closed data dir: each test opens a copy of its own (a copy costs a
    third of a new data dir's keys and migrations)."""
    home = tmp_path_factory.mktemp("users") / "home"
    make_app(home, sign_in_attempts=3).close()
    return home


@pytest.fixture()
def core(blank: Path, tmp_path: Path) -> Iterator[Visage]:
    shutil.copytree(blank, tmp_path / "home")
    copy_database(blank, tmp_path / "home")
    c = make_app(tmp_path / "home", sign_in_attempts=3)
    yield c
    c.close()


def _add(
    core: Visage, name: str, role: Role = Role.reviewer, purposes: list[str] | None = None
) -> uc.UserInfo:
    return uc.add_user(
        core, uc.NewUser(name=name, role=role, purposes=purposes or []), PASSWORD, ADMIN
    )


def _entries(core: Visage, op: AuditOp) -> list[AuditEntryRow]:
    with core.store.session() as session:
        stmt = select(AuditEntryRow).where(AuditEntryRow.operation == op.value)
        return list(session.scalars(stmt.order_by(AuditEntryRow.seq)))


# -- accounts -------------------------------------------------------------------------


def test_add_list_get_disable_enable(core: Visage) -> None:
    info = _add(core, "Alice")
    op = _add(core, "olga", Role.operator, ["Access-Control"])
    assert info.role is Role.reviewer and not info.totp and info.disabled_at is None
    assert op.purposes == ["access-control"]
    assert [u.name for u in uc.list_users(core)] == ["Alice", "olga"]
    assert uc.get_user(core, "ALICE").id == info.id  # names match whatever the case
    disabled = uc.disable_user(core, "alice", ADMIN)
    assert disabled.disabled_at is not None
    assert uc.enable_user(core, "alice", ADMIN).disabled_at is None
    created = _entries(core, AuditOp.user_create)
    assert [e.details["user"] for e in created] == ["Alice", "olga"]
    assert created[0].actor == ADMIN.id
    assert _entries(core, AuditOp.user_disable)[0].details == {"user": "Alice"}
    with pytest.raises(NotFoundError):
        uc.get_user(core, "nobody")


def test_names_are_unique_whatever_the_case_and_well_formed(core: Visage) -> None:
    _add(core, "Alice")
    with pytest.raises(uc.UserExistsError):
        _add(core, "alice")
    for bad in ["", "has space", "x" * 65, "semi;colon", "émile"]:
        with pytest.raises(ValueError):
            uc.NewUser(name=bad, role=Role.auditor)


def test_purposes_operator_needs_one_others_none(core: Visage) -> None:
    with pytest.raises(KeyPurposeRequiredError, match="at least one purpose"):
        _add(core, "op", Role.operator)
    with pytest.raises(InputError, match="only an operator"):
        _add(core, "aud", Role.auditor, ["access-control"])


@pytest.mark.parametrize(
    ("password", "why"),
    [("short-pass1", "at least 12"), ("Alice.Smith", "at least 12"), ("alice.smith1", None)],
)
def test_password_rules(core: Visage, password: str, why: str | None) -> None:
    new = uc.NewUser(name="alice.smith1", role=Role.auditor)
    with pytest.raises(uc.PasswordRuleError, match=why or "may not be the user name"):
        uc.add_user(core, new, password, ADMIN)
    assert uc.list_users(core) == []


def test_password_is_stored_as_argon2id_only(core: Visage) -> None:
    """With the product's own parameters (the suite hashes with the cheapest elsewhere)."""
    with gov_users.hashing_parameters(gov_users.PRODUCTION_HASHING):
        _add(core, "Alice")
    with core.store.session() as session:
        stored = session.scalars(select(UserRow.password_hash)).one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored
    assert PASSWORD.encode() not in stored_bytes(core.store)


def test_a_hash_with_other_parameters_is_replaced_at_sign_in(core: Visage) -> None:
    """The suite's cheapest hashes are "older parameters" to the product: the next sign-in
    with the right password stores a hash with the production ones."""
    _add(core, "Alice")
    with gov_users.hashing_parameters(gov_users.PRODUCTION_HASHING):
        uc.sign_in(core, "alice", PASSWORD, None, "10.0.0.1")
    with core.store.session() as session:
        stored = session.scalars(select(UserRow.password_hash)).one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    uc.sign_in(core, "alice", PASSWORD, None, "10.0.0.1")  # and it verifies


def test_last_admin_cannot_be_disabled(core: Visage) -> None:
    _add(core, "root", Role.admin)
    with pytest.raises(uc.LastAdminError):
        uc.disable_user(core, "root", ADMIN)
    _add(core, "root2", Role.admin)
    assert uc.disable_user(core, "root", ADMIN).disabled_at is not None


# -- sign-in and sessions -------------------------------------------------------------


def test_sign_in_resume_sign_out_with_audit(core: Visage) -> None:
    _add(core, "Alice")
    signed = uc.sign_in(core, "alice", PASSWORD, None, "10.0.0.1")
    assert signed.principal == Principal(
        key_id="Alice", role=Role.reviewer, purposes=(), owner="Alice", kind="user"
    )
    assert signed.principal.actor.id == "user:Alice"
    assert len(signed.token) >= 43 and signed.csrf and signed.csrf != signed.token
    web = uc.resume_session(core, signed.token)
    assert web.principal == signed.principal and web.csrf == signed.csrf and not web.totp
    uc.sign_out(core, signed.token)
    with pytest.raises(AuthError):
        uc.resume_session(core, signed.token)
    (entry,) = _entries(core, AuditOp.sign_in)
    assert (entry.actor, entry.role, entry.outcome) == ("user:Alice", "reviewer", "ok")
    (out,) = _entries(core, AuditOp.sign_out)
    assert out.actor == "user:Alice" and out.details == {"user": "Alice"}
    assert audit_log.verify(core).ok


def test_wrong_password_unknown_and_disabled_share_one_message(core: Visage) -> None:
    _add(core, "Alice")
    _add(core, "bob")
    uc.disable_user(core, "bob", ADMIN)
    messages = set()
    for name, password in [("alice", "wrong password!"), ("nobody", PASSWORD), ("bob", PASSWORD)]:
        with pytest.raises(AuthError) as caught:
            uc.sign_in(core, name, password, None, f"client-{name}")
        assert type(caught.value) is AuthError
        messages.add(caught.value.message)
    assert messages == {"unknown user name or wrong password"}
    refused = _entries(core, AuditOp.sign_in)
    reasons = [(e.actor, audit_ops.read(_entry(e), SignInAudit).reason) for e in refused]
    assert reasons == [
        ("user:Alice", "wrong password"),
        ("anonymous", "unknown user name"),  # what was typed is not logged
        ("user:bob", "disabled"),
    ]
    assert all(e.outcome == "refused" for e in refused)
    assert not any("nobody" in str(e.details) for e in refused)
    with core.store.session() as session:
        failures = session.scalars(select(SignInFailureRow.client).order_by(SignInFailureRow.id))
        assert list(failures) == ["client-alice", "client-nobody", "client-bob"]


def _entry(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry.model_validate(row, from_attributes=True)


def test_throttled_by_name_then_by_client(core: Visage) -> None:
    _add(core, "Alice")
    for i in range(3):
        with pytest.raises(AuthError):
            uc.sign_in(core, "Alice", "wrong password!", None, f"10.0.0.{i}")
    # the right password from a fresh client: refused before the password is looked at
    with pytest.raises(uc.ThrottledError) as caught:
        uc.sign_in(core, "alice", PASSWORD, None, "10.0.9.9")
    assert 14 * 60 < caught.value.retry_after <= 15 * 60
    # by client: three names from one address
    _add(core, "bob")
    for name in ["x1", "x2", "x3"]:
        with pytest.raises(AuthError):
            uc.sign_in(core, name, "wrong password!", None, "192.0.2.7")
    with pytest.raises(uc.ThrottledError):
        uc.sign_in(core, "bob", PASSWORD, None, "192.0.2.7")
    assert uc.sign_in(core, "bob", PASSWORD, None, "192.0.2.8").principal.owner == "bob"
    # once the failures are older than the window, sign-in works again (and they are pruned)
    with core.store.session() as session:
        session.execute(
            update(SignInFailureRow).values(at=datetime.now(UTC) - timedelta(minutes=16))
        )
    assert uc.sign_in(core, "alice", PASSWORD, None, "192.0.2.7").principal.owner == "Alice"
    with core.store.session() as session:
        assert session.scalars(select(SignInFailureRow)).all() == []
    throttled = [
        e for e in _entries(core, AuditOp.sign_in) if e.details.get("reason") == "throttled"
    ]
    assert [e.actor for e in throttled] == ["user:Alice", "user:bob"]


def test_every_sign_in_gets_a_new_session_and_only_its_digest_is_stored(core: Visage) -> None:
    _add(core, "Alice")
    first = uc.sign_in(core, "Alice", PASSWORD, None, "c")
    second = uc.sign_in(core, "Alice", PASSWORD, None, "c")
    assert first.token != second.token and first.csrf != second.csrf
    with core.store.session() as session:
        digests = set(session.scalars(select(WebSessionRow.digest)))
    assert len(digests) == 2 and first.token not in digests and second.token not in digests
    # replacing: the token the browser held before ends with the new sign-in
    third = uc.sign_in(core, "Alice", PASSWORD, None, "c", replaces=second.token)
    with pytest.raises(AuthError):
        uc.resume_session(core, second.token)
    assert uc.resume_session(core, third.token).principal.owner == "Alice"


def test_idle_session_ends(core: Visage) -> None:
    _add(core, "Alice")
    signed = uc.sign_in(core, "Alice", PASSWORD, None, "c")
    idle = timedelta(minutes=core.settings.web_idle_minutes)
    with core.store.session() as session:
        session.execute(
            update(WebSessionRow).values(last_seen=datetime.now(UTC) - idle + timedelta(minutes=1))
        )
    uc.resume_session(core, signed.token)  # still in time: and last_seen moves to now
    with core.store.session() as session:
        seen = session.scalars(select(WebSessionRow.last_seen)).one()
        assert datetime.now(UTC) - seen < timedelta(minutes=1)
        session.execute(
            update(WebSessionRow).values(last_seen=datetime.now(UTC) - idle - timedelta(seconds=1))
        )
    with pytest.raises(AuthError):
        uc.resume_session(core, signed.token)
    with core.store.session() as session:
        assert session.scalars(select(WebSessionRow)).all() == []  # deleted, not only refused


def test_disabling_a_user_ends_their_sessions(core: Visage) -> None:
    _add(core, "Alice")
    _add(core, "bob")
    a1 = uc.sign_in(core, "Alice", PASSWORD, None, "c")
    a2 = uc.sign_in(core, "Alice", PASSWORD, None, "d")
    b = uc.sign_in(core, "bob", PASSWORD, None, "c")
    uc.disable_user(core, "alice", ADMIN)
    for token in (a1.token, a2.token):
        with pytest.raises(AuthError):
            uc.resume_session(core, token)
    assert uc.resume_session(core, b.token).principal.owner == "bob"
    with pytest.raises(AuthError):
        uc.sign_in(core, "Alice", PASSWORD, None, "c")


def test_password_changes_end_other_sessions(core: Visage) -> None:
    _add(core, "Alice")
    here = uc.sign_in(core, "Alice", PASSWORD, None, "c")
    there = uc.sign_in(core, "Alice", PASSWORD, None, "d")
    new = "another long passphrase"
    with pytest.raises(AuthError):
        uc.change_own_password(core, here.token, "not the password", new)
    with pytest.raises(uc.PasswordRuleError):
        uc.change_own_password(core, here.token, PASSWORD, "Alice")
    uc.change_own_password(core, here.token, PASSWORD, new)
    assert uc.resume_session(core, here.token).principal.owner == "Alice"
    with pytest.raises(AuthError):
        uc.resume_session(core, there.token)
    with pytest.raises(AuthError):
        uc.sign_in(core, "Alice", PASSWORD, None, "e")
    uc.sign_in(core, "Alice", new, None, "e")
    # an admin resets it: every session ends, and must_change_password is cleared
    uc.set_password(core, "alice", "admin chosen passphrase", ADMIN)
    with pytest.raises(AuthError):
        uc.resume_session(core, here.token)
    changes = [e.details["change"] for e in _entries(core, AuditOp.user_update)]
    assert changes == ["password", "password"]
    assert _entries(core, AuditOp.user_update)[0].actor == "user:Alice"


# -- TOTP -----------------------------------------------------------------------------


def test_totp_required_and_accepted(core: Visage) -> None:
    _add(core, "Alice")
    setup = uc.begin_totp(core, "alice")
    assert setup.uri.startswith("otpauth://totp/Visage:Alice?secret=" + setup.secret)
    assert not uc.get_user(core, "Alice").totp  # not before it is confirmed
    totp = pyotp.TOTP(setup.secret)
    with pytest.raises(uc.TotpCodeError):
        uc.confirm_totp(
            core, "Alice", setup.secret, "000000" if totp.now() != "000000" else "111111", ADMIN
        )
    uc.confirm_totp(core, "Alice", setup.secret, totp.now(), ADMIN)
    assert uc.get_user(core, "Alice").totp
    with core.store.session() as session:
        sealed = session.scalars(select(UserRow.totp_sealed)).one()
    assert sealed is not None and setup.secret.encode() not in sealed
    assert setup.secret.encode() not in stored_bytes(core.store)
    with pytest.raises(uc.TotpRequiredError):
        uc.sign_in(core, "Alice", PASSWORD, None, "c")
    wrong = f"{(int(totp.now()) + 500_000) % 1_000_000:06d}"
    with pytest.raises(uc.TotpRequiredError):
        uc.sign_in(core, "Alice", PASSWORD, wrong, "c")
    with pytest.raises(AuthError) as caught:  # a wrong password says nothing about the code
        uc.sign_in(core, "Alice", "wrong password!", totp.now(), "d")
    assert not isinstance(caught.value, uc.TotpRequiredError)
    # The code that confirmed is spent (tests/security/test_console_accounts.py attacks
    # that): the authenticator's next code, 30 s ahead, signs in.
    following = totp.at(datetime.now(UTC) + timedelta(seconds=totp.interval))
    signed = uc.sign_in(core, "Alice", PASSWORD, following, "c")
    assert uc.resume_session(core, signed.token).totp
    reasons = [e.details.get("reason") for e in _entries(core, AuditOp.sign_in)]
    assert reasons == ["wrong one-time code", "wrong password", ""]


def test_totp_only_for_admins_and_reviewers(core: Visage) -> None:
    _add(core, "aud", Role.auditor)
    with pytest.raises(InputError, match="admin and reviewer"):
        uc.begin_totp(core, "aud")


# -- first admin ----------------------------------------------------------------------


def test_first_admin_once_only(core: Visage) -> None:
    password = uc.first_admin(core)
    assert password is not None and len(password) >= 16
    assert uc.first_admin(core) is None
    (admin,) = uc.list_users(core)
    assert (admin.name, admin.role, admin.must_change_password) == ("admin", Role.admin, True)
    (entry,) = _entries(core, AuditOp.user_create)
    assert entry.actor == Actor.system().id
    signed = uc.sign_in(core, "admin", password, None, "c")
    assert signed.must_change_password
    uc.change_own_password(core, signed.token, password, "my own admin passphrase")
    assert not uc.resume_session(core, signed.token).must_change_password


# -- review: a user and a key of the same person are one person -----------------------


def _review(core: Visage, requested_by: str, requester_owner: str) -> str:
    consent = make_consent("W-1", ["wanted"])
    subject_id = add_subject(core, "Joe", consent).id
    with core.store.session() as session:
        row = open_review(
            session,
            core.keyring,
            Candidate(
                subject_id=subject_id,
                purpose="wanted",
                score=0.9,
                threshold=0.5,
                quality=0.8,
                source="image",
                requested_by=requested_by,
                requester_owner=requester_owner,
            ),
            None,
        )
        return row.id


def test_user_and_key_of_one_owner_cannot_both_confirm(core: Visage) -> None:
    _add(core, "Alice")
    _add(core, "bob")
    _add(core, "carol", Role.operator, ["wanted"])
    carol = uc.sign_in(core, "carol", PASSWORD, None, "c").principal
    rid = _review(core, carol.actor.id, carol.owner)
    with core.store.session() as session:
        assert owner_of(session, "user:Alice") == "Alice"
    alice_user = uc.sign_in(core, "Alice", PASSWORD, None, "c").principal
    alice_key = authenticate(core, create_key(core, Role.reviewer, [], owner="Alice").key)
    assert review_uc.decide(core, rid, alice_user, Decision.confirm).status == "pending"
    with pytest.raises(ReviewConflictError, match="another key"):
        review_uc.decide(core, rid, alice_key, Decision.confirm)
    assert [i.id for i in review_uc.queue(core, alice_key)] == []  # already decided by Alice
    # the operator cannot read the outcome yet; a second person (another user) releases it
    with pytest.raises(ReviewConflictError):
        review_uc.outcome(core, rid, carol.actor)
    bob = uc.sign_in(core, "bob", PASSWORD, None, "c").principal
    assert review_uc.decide(core, rid, bob, Decision.confirm).released
    assert review_uc.outcome(core, rid, carol.actor).name == "Joe"
    other = uc.add_user(
        core, uc.NewUser(name="dave", role=Role.operator, purposes=["wanted"]), PASSWORD, ADMIN
    )
    with pytest.raises(ForbiddenError):
        review_uc.outcome(core, rid, Actor(f"user:{other.name}", "operator"))
    with core.store.session() as session:
        reviewers = [d.reviewer for d in session.get(ReviewRow, rid).decisions]  # type: ignore[union-attr]
    assert sorted(reviewers) == ["user:Alice", "user:bob"]


def test_the_requesting_user_may_not_review_their_own_search(core: Visage) -> None:
    _add(core, "carol")
    rid = _review(core, "key:abc", "carol")  # carol asked with a key of hers
    carol = uc.sign_in(core, "carol", PASSWORD, None, "c").principal
    with pytest.raises(ForbiddenError, match="someone else"):
        review_uc.decide(core, rid, carol, Decision.confirm)


def test_one_person_under_two_spellings_is_still_one_person(core: Visage) -> None:
    """Console user names are case-insensitive, so key owners are compared the same way:
    "ALICE " (a key) after "Alice" (a user) is a second decision by the same person, and
    "Carol" may not review a search made with a key of "carol"."""
    _add(core, "Alice")
    _add(core, "Carol")
    rid = _review(core, "key:abc", "carol")
    carol = uc.sign_in(core, "Carol", PASSWORD, None, "c").principal
    with pytest.raises(ForbiddenError, match="someone else"):
        review_uc.decide(core, rid, carol, Decision.confirm)
    assert rid not in [i.id for i in review_uc.queue(core, carol)]
    alice = uc.sign_in(core, "Alice", PASSWORD, None, "c").principal
    assert review_uc.decide(core, rid, alice, Decision.confirm).status == "pending"
    shouting = authenticate(core, create_key(core, Role.reviewer, [], owner="ALICE ").key)
    assert review_uc.queue(core, shouting) == []
    with pytest.raises(ReviewConflictError, match="another key"):
        review_uc.decide(core, rid, shouting, Decision.confirm)
    # NFKC: "Alice" with a full-width capital A (U+FF21) is the same name too.
    wide = authenticate(core, create_key(core, Role.reviewer, [], owner="\uff21lice").key)
    with pytest.raises(ReviewConflictError, match="another key"):
        review_uc.decide(core, rid, wide, Decision.confirm)


# -- CLI ------------------------------------------------------------------------------


def test_cli_users(core: Visage) -> None:
    home = core.home
    r = run(
        home,
        "users",
        "add",
        "Alice",
        "--role",
        "reviewer",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert r.returncode == 0 and "user Alice added (reviewer" in r.stdout, r.stderr
    assert PASSWORD not in r.stdout
    # no --password-stdin: a one-time password, printed once, to be changed
    r = run(
        home, "users", "add", "olga", "--role", "operator", "--purpose", "access-control", "--json"
    )
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert made["must_change_password"] and made["purposes"] == ["access-control"]
    assert uc.sign_in(core, "olga", made["password"], None, "c").must_change_password
    r = run(home, "users", "list", "--json")
    listed = json.loads(r.stdout)
    assert [u["name"] for u in listed] == ["Alice", "olga"]
    assert not any("password" in u or "hash" in json.dumps(u) for u in listed)
    assert "Alice" in run(home, "users", "list").stdout
    signed = uc.sign_in(core, "Alice", PASSWORD, None, "c")
    assert run(home, "users", "disable", "alice").returncode == 0
    with pytest.raises(AuthError):
        uc.resume_session(core, signed.token)
    assert uc.get_user(core, "Alice").disabled_at is not None
    assert run(home, "users", "enable", "Alice", "--json").returncode == 0
    new = "a new passphrase for alice"
    r = run(home, "users", "passwd", "Alice", "--password-stdin", input=new + "\n")
    assert r.returncode == 0, r.stderr
    uc.sign_in(core, "Alice", new, None, "c")
    actors = {e.actor for e in _entries(core, AuditOp.user_update)}
    assert actors == {Actor.local().id}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "op", "--role", "operator"], None, "at least one purpose"),
        (["add", "bad name", "--role", "auditor"], None, "NAME"),
        (["add", "aud", "--role", "auditor", "--password-stdin"], "short\n", "at least 12"),
        (["add", "aud", "--role", "auditor", "--password-stdin"], "", "holds no password"),
        (["add", "aud", "--role", "wizard"], None, "wizard"),
        (["disable", "nobody"], None, "no user named 'nobody'"),
        (["passwd", "nobody", "--password-stdin"], PASSWORD, "no user named"),
    ],
)
def test_cli_users_bad_input(
    core: Visage, args: list[str], stdin: str | None, message: str
) -> None:
    r = run(core.home, "users", *args, input=stdin)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert uc.list_users(core) == []
