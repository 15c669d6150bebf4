"""Issue 11, item 3: events are purpose-bound. An operator key holding one purpose tries to
read who was seen where for another purpose, through every filter of ``GET /v1/events``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_app
from visage.api.app import create_app
from visage.core import Visage
from visage.governance.access import ForbiddenError, Principal, Role
from visage.governance.events import record_event
from visage.usecases.events import events
from visage.usecases.keys import create_key
from visage.usecases.subjects import add_subject, make_consent

MINE, OTHER = "access-control", "payroll"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Visage, dict[str, str]]]:
    """Two subjects, each seen once on the same camera for a different purpose."""
    core = make_app(tmp_path_factory.mktemp("events-purpose"))
    subjects = {}
    for name, purpose in (("Ada", MINE), ("Bob", OTHER)):
        sid = add_subject(core, name, make_consent(f"F-{name}", [purpose])).id
        subjects[purpose] = sid
        with core.store.session() as session:
            record_event(
                session,
                subject_id=sid,
                purpose=purpose,
                source="camera",
                camera="lobby",
                best_score=0.99,
            )
    yield core, subjects
    core.close()


@pytest.fixture(scope="module")
def client(world: tuple[Visage, dict[str, str]]) -> Iterator[TestClient]:
    with TestClient(create_app(world[0], housekeeping=False, watch_cameras=False)) as c:
        yield c


def _key(core: Visage, role: Role, purposes: list[str]) -> dict[str, str]:
    key = create_key(core, role, purposes, owner=f"{role.value} person").key
    return {"Authorization": f"Bearer {key}"}


def test_an_operator_sees_only_the_events_of_its_purposes(
    world: tuple[Visage, dict[str, str]], client: TestClient
) -> None:
    core, subjects = world
    operator = _key(core, Role.operator, [MINE])
    for query in (
        "",
        "?camera=lobby",
        f"?subject_id={subjects[OTHER]}",
        "?since=2000-01-01T00:00:00Z",
        "?limit=10000",
    ):
        r = client.get(f"/v1/events{query}", headers=operator)
        assert r.status_code == 200, r.text
        seen = r.json()
        assert all(e["purpose"] == MINE for e in seen), (query, seen)
        assert subjects[OTHER] not in r.text
    assert [e["subject_id"] for e in client.get("/v1/events", headers=operator).json()] == [
        subjects[MINE]
    ]


def test_auditors_and_admins_see_every_purpose(
    world: tuple[Visage, dict[str, str]], client: TestClient
) -> None:
    core, subjects = world
    for role in (Role.auditor, Role.admin):
        seen = client.get("/v1/events", headers=_key(core, role, [])).json()
        assert {e["subject_id"] for e in seen} == set(subjects.values())


def test_the_rule_is_in_the_core_not_only_the_route(world: tuple[Visage, dict[str, str]]) -> None:
    core, subjects = world
    operator = Principal(key_id="k", role=Role.operator, purposes=(OTHER,))
    assert {e.subject_id for e in events(core, viewer=operator)} == {subjects[OTHER]}
    for role in (Role.enroller, Role.reviewer):
        with pytest.raises(ForbiddenError):
            events(core, viewer=Principal(key_id="k", role=role, purposes=()))
    assert len(events(core)) == 2  # the local user of the CLI
