"""Overview: profile and gates, counts that match the data, the audit chain, and the Stop
switch (admins halt and resume; the identify use-case obeys; other roles see, not touch)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.web.conftest import PURPOSE, page_csrf
from visage.core import Visage
from visage.governance.audit import Actor
from visage.store.schema import AuditEntryRow, EventRow, TemplateRow
from visage.usecases import audit_log
from visage.usecases.enroll import enroll
from visage.usecases.halt import HaltedError, list_halts
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, make_consent

OPERATOR = Actor("user:olga", "operator")


@pytest.fixture(scope="module")
def enrolled(console_core: Visage, data: Path) -> str:
    """Barack Obama enrolled for the operator's purpose, and one identify event."""
    sid = add_subject(console_core, "Barack Obama", make_consent("C-1", [PURPOSE])).id
    photos = sorted((data / "people/barack_obama").iterdir())[:2]
    assert enroll(console_core, sid, photos).enrolled
    found = identify(console_core, photos[0], PURPOSE, OPERATOR)
    assert found.faces[0].candidates[0].subject_id == sid
    return sid


def figure(html: str, name: str) -> int:
    found = re.search(rf'id="count-{name}">(\d+)<', html)
    assert found, f"no {name} count in the page"
    return int(found.group(1))


def test_counts_and_chain_match_the_data(
    console_core: Visage, enrolled: str, as_user: Callable[[str], TestClient]
) -> None:
    html = as_user("ada").get("/").text
    with console_core.store.session() as session:
        templates = session.scalar(select(func.count()).select_from(TemplateRow))
        events = session.scalar(select(func.count()).select_from(EventRow))
        head = session.scalar(select(func.max(AuditEntryRow.seq)))
    assert figure(html, "subjects") == 1
    assert figure(html, "templates") == templates == 2
    assert figure(html, "events") == events == 1
    assert figure(html, "reviews") == 0
    assert figure(html, "cameras-up") == figure(html, "cameras-down") == 0
    assert f"Head: entry {head}," in html
    assert "DPIA-TEST-2026-01" in html  # the profile's DPIA reference
    assert "1:N identification on images is allowed by the profile." in html
    audit_log.checkpoint(console_core)
    assert "Last signed checkpoint: entry" in as_user("aude").get("/").text


def test_admin_stops_all_then_resumes(
    console_core: Visage, enrolled: str, as_user: Callable[[str], TestClient], data: Path
) -> None:
    ada = as_user("ada")
    page = ada.get("/")
    assert (
        ">Stop all 1:N processing</button>" in page.text
        and '<label for="halt-reason">' in page.text
    )
    response = ada.post(
        "/halts",
        data={"csrf": page_csrf(ada), "reason": "camera misplaced", "all": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    photo = data / "people/barack_obama/3.jpg"
    with pytest.raises(HaltedError):
        identify(console_core, photo, PURPOSE, OPERATOR)
    shown = ada.get(response.headers["location"]).text
    assert 'role="status"' in shown and "stopped for all" in shown
    assert "camera misplaced" in shown and "user:ada" in shown and ">Resume" in shown
    # Another role sees the halt but no button.
    olga = as_user("olga").get("/").text
    assert "camera misplaced" in olga and ">Resume" not in olga and "Stop all" not in olga
    [entry] = audit_log.entries(console_core, operation="halt")
    assert entry.actor == "user:ada" and entry.details["scope"] == "all"

    response = ada.post(
        "/halts/resume", data={"csrf": page_csrf(ada), "scope": "all"}, follow_redirects=False
    )
    assert response.status_code == 303 and list_halts(console_core) == []
    assert identify(console_core, photo, PURPOSE, OPERATOR).faces[0].candidates
    [resumed] = audit_log.entries(console_core, operation="resume")
    assert resumed.actor == "user:ada"
    assert "Nothing is halted." in ada.get("/").text


def test_admin_stops_one_purpose_with_a_reason_only(
    console_core: Visage, enrolled: str, as_user: Callable[[str], TestClient], data: Path
) -> None:
    ada = as_user("ada")
    token = page_csrf(ada)
    assert f'value="purpose:{PURPOSE}"' in ada.get("/").text
    refused = ada.post(
        "/halts", data={"csrf": token, "target": f"purpose:{PURPOSE}", "reason": " "}
    )
    assert refused.status_code == 422 and "a halt needs a reason" in refused.text
    assert list_halts(console_core) == []
    ada.post("/halts", data={"csrf": token, "target": f"purpose:{PURPOSE}", "reason": "audit"})
    assert [h.scope for h in list_halts(console_core)] == [f"purpose:{PURPOSE}"]
    with pytest.raises(HaltedError):
        identify(console_core, data / "people/barack_obama/3.jpg", PURPOSE, OPERATOR)
    ada.post("/halts/resume", data={"csrf": token, "scope": f"purpose:{PURPOSE}"})
    assert list_halts(console_core) == []
    missing = ada.post("/halts/resume", data={"csrf": token, "scope": "camera:nowhere"})
    assert missing.status_code == 422 and "is not halted" in missing.text


def test_only_admins_may_stop(console_core: Visage, as_user: Callable[[str], TestClient]) -> None:
    for name in ("olga", "enzo", "rita", "aude"):
        client = as_user(name)
        page = client.get("/")
        assert page.status_code == 200 and "Stop all 1:N processing" not in page.text
        token = page_csrf(client)
        for path, form in (
            ("/halts", {"all": "1", "reason": "x"}),
            ("/halts/resume", {"scope": "all"}),
        ):
            response = client.post(path, data={"csrf": token, **form})
            assert response.status_code == 403, (name, path)
    assert list_halts(console_core) == []


def test_stop_without_the_csrf_token_is_refused(
    console_core: Visage, as_user: Callable[[str], TestClient]
) -> None:
    response = as_user("ada").post("/halts", data={"all": "1", "reason": "forged"})
    assert response.status_code == 403 and list_halts(console_core) == []


def test_overview_in_french(as_user: Callable[[str], TestClient]) -> None:
    client = as_user("ada")
    client.cookies.set("visage_lang", "fr")
    html = client.get("/").text
    assert '<html lang="fr"' in html
    assert "<h1>Vue d\u2019ensemble</h1>" in html
    assert "Arrêter tout traitement 1:N" in html and "Profil de déploiement" in html
    assert "Stop all 1:N processing" not in html
