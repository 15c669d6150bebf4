"""Two-person confirmation of watchlist matches, through the API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth
from tests.conftest import Receiver, make_app, open_copy
from visage.api.app import create_app
from visage.core import Visage
from visage.governance.access import Role
from visage.usecases.keys import create_key
from visage.usecases.profile import ProfileChanges, set_profile

WATCH = "wanted"
SECRET = "s3cret-for-tests"


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path
) -> tuple[Path, dict[str, dict[str, str]]]:
    """A closed data dir with the watchlist profile, the keys and Joe Biden enrolled for the
    watchlist over the API, built once (an enrolment is a face analysis); each test opens
    its own copy. Returns the home and the keys' headers."""
    home = tmp_path_factory.mktemp("review") / "home"
    core = make_app(home, models=shared_app)
    set_profile(core, ProfileChanges(watchlist_purposes=[WATCH]))
    keys = {
        "enroller": auth(create_key(core, Role.enroller, []).key),
        "operator": auth(create_key(core, Role.operator, [WATCH], owner="olga").key),
        "alice": auth(create_key(core, Role.reviewer, [], name="alice", owner="Alice").key),
        "bob": auth(create_key(core, Role.reviewer, [], name="bob", owner="Bob").key),
        "auditor": auth(create_key(core, Role.auditor, []).key),
    }
    with TestClient(create_app(core, identify_per_minute=10_000)) as client:
        body = {"name": "Joe Biden", "consent": {"reference": "W-1", "purposes": [WATCH]}}
        sid = client.post("/v1/subjects", json=body, headers=keys["enroller"]).json()["id"]
        r = client.post(
            f"/v1/subjects/{sid}/templates",
            headers=keys["enroller"],
            content=(data / "people/joe_biden/1.jpg").read_bytes(),
        )
        assert r.json()["enrolled"]
    core.close()
    return home, keys


@pytest.fixture()
def setup(
    pristine: tuple[Path, dict[str, dict[str, str]]], tmp_path: Path, shared_app: Visage
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Receiver, Visage]]:
    home, keys = pristine
    receiver = Receiver()
    core = open_copy(
        home,
        tmp_path / "home",
        models=shared_app,
        webhook_urls=[receiver.url],
        webhook_secret=SECRET,
    )
    with TestClient(create_app(core, identify_per_minute=10_000)) as client:
        yield client, keys, receiver, core
    receiver.server.shutdown()
    core.close()


def _candidate(client: TestClient, keys: dict[str, dict[str, str]], data: Path) -> str:
    r = client.post(
        f"/v1/identify?purpose={WATCH}",
        headers=keys["operator"],
        content=(data / "scenes/two_people.jpg").read_bytes(),
    )
    assert r.status_code == 200, r.text
    flagged = [f for f in r.json()["faces"] if f["status"]]
    assert len(flagged) == 1 and flagged[0]["status"] == "pending_review"
    assert flagged[0]["candidates"] == []  # blind until released
    return str(flagged[0]["review_id"])


def test_two_different_reviewers_release_a_match(setup, data: Path) -> None:  # type: ignore[no-untyped-def]
    client, keys, receiver, core = setup
    rid = _candidate(client, keys, data)
    # The item shows the candidate, the score against the threshold and the probe face.
    item = client.get(f"/v1/reviews/{rid}", headers=keys["alice"]).json()
    assert item["subject_name"] == "Joe Biden" and item["score"] >= item["threshold"]
    assert 0 < item["quality"] <= 1 and item["has_probe"]
    jpeg = client.get(f"/v1/reviews/{rid}/probe", headers=keys["alice"])
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"
    # No event exists before the release: a candidate is not a fact.
    assert core.store and not _events(core)

    r = client.post(f"/v1/reviews/{rid}/confirm", headers=keys["alice"]).json()
    assert r == {"id": rid, "status": "pending", "released": False}
    again = client.post(f"/v1/reviews/{rid}/confirm", headers=keys["alice"])
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    # Alice's queue no longer has it; Bob's has it, and shows no decision of Alice's.
    assert rid not in [i["id"] for i in client.get("/v1/reviews", headers=keys["alice"]).json()]
    bob_view = [i for i in client.get("/v1/reviews", headers=keys["bob"]).json() if i["id"] == rid]
    assert bob_view and "decisions" not in bob_view[0] and "status" not in bob_view[0]
    assert not _matches(receiver)

    r = client.post(f"/v1/reviews/{rid}/confirm", headers=keys["bob"]).json()
    assert r == {"id": rid, "status": "confirmed", "released": True}
    core.notifier.flush()
    assert len(_matches(receiver)) == 1
    headers, body = _matches(receiver)[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Visage-Signature"] == expected
    payload = json.loads(body)
    assert payload["type"] == "match.confirmed" and payload["review_id"] == rid
    assert "Biden" not in body.decode()  # ids only
    assert len(_events(core)) == 1
    history = client.get("/v1/reviews/history", headers=keys["auditor"]).json()
    assert [d["decision"] for d in history[0]["decisions"]] == ["confirm", "confirm"]
    closed = client.post(f"/v1/reviews/{rid}/reject", headers=keys["bob"])
    assert closed.status_code == 409


def test_one_rejection_discards_the_candidate(setup, data: Path) -> None:  # type: ignore[no-untyped-def]
    client, keys, receiver, core = setup
    rid = _candidate(client, keys, data)
    assert client.post(f"/v1/reviews/{rid}/confirm", headers=keys["alice"]).status_code == 200
    r = client.post(f"/v1/reviews/{rid}/reject", headers=keys["bob"]).json()
    assert r == {"id": rid, "status": "rejected", "released": False}
    assert client.get(f"/v1/reviews/{rid}/probe", headers=keys["alice"]).status_code == 404
    assert rid not in [i["id"] for i in client.get("/v1/reviews", headers=keys["bob"]).json()]
    core.notifier.flush()
    assert not _matches(receiver) and not _events(core)


def test_only_reviewers_decide(setup, data: Path) -> None:  # type: ignore[no-untyped-def]
    client, keys, _, _ = setup
    rid = _candidate(client, keys, data)
    for who in ("operator", "enroller", "auditor"):
        r = client.post(f"/v1/reviews/{rid}/confirm", headers=keys[who])
        assert r.status_code == 403


def test_cli_review_needs_a_reviewer_key(setup, data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.cli_runner import run

    client, keys, _, core = setup
    rid = _candidate(client, keys, data)
    alice = keys["alice"]["Authorization"].removeprefix("Bearer ")
    bob = keys["bob"]["Authorization"].removeprefix("Bearer ")
    op = keys["operator"]["Authorization"].removeprefix("Bearer ")
    alice_file = tmp_path / "alice.key"
    alice_file.write_text(alice + "\n")
    r = run(core.home, "review", "list", "--json", "--key-file", str(alice_file))
    assert r.returncode == 0, r.stderr
    assert rid in [i["id"] for i in json.loads(r.stdout)]
    assert run(core.home, "review", "confirm", rid, VISAGE_API_KEY=op).returncode == 2
    assert run(core.home, "review", "confirm", rid, VISAGE_API_KEY=alice).returncode == 0
    r = run(core.home, "review", "confirm", rid, "--key-file", str(alice_file))
    assert r.returncode == 2 and "already decided" in r.stderr
    r = run(core.home, "review", "confirm", rid, "--json", VISAGE_API_KEY=bob)
    assert json.loads(r.stdout)["released"] is True


def _matches(receiver: Receiver) -> list[tuple[dict[str, str], bytes]]:
    """What the webhooks received about matches (signed audit heads go there too)."""
    return [m for m in receiver.received if json.loads(m[1]).get("type") == "match.confirmed"]


def _events(core: Visage) -> list[object]:
    from visage.governance.events import list_events

    with core.store.session() as session:
        return list(list_events(session))
