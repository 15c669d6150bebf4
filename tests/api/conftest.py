"""An API over a real data dir, with one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_app
from visage.api.app import create_app
from visage.core import Visage
from visage.governance.access import Role
from visage.usecases.keys import create_key

PURPOSE = "access-control"


@pytest.fixture(scope="module")
def api_core(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    core = make_app(tmp_path_factory.mktemp("api-home"), models=shared_app)
    yield core
    core.close()


@pytest.fixture(scope="module")
def keys(api_core: Visage) -> dict[Role, str]:
    return {
        role: create_key(
            api_core,
            role,
            [PURPOSE] if role is Role.operator else [],
            owner=f"{role.value} person",
        ).key
        for role in Role
    }


@pytest.fixture(scope="module")
def client(api_core: Visage) -> Iterator[TestClient]:
    with TestClient(create_app(api_core, identify_per_minute=10_000)) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def image(data: Path, rel: str = "people/joe_biden/1.jpg") -> bytes:
    return (data / rel).read_bytes()
