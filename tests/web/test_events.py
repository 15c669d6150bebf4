"""Events: the timeline, filtered by camera, purpose, subject and date, paginated, and bound
to the viewer's purposes (an operator sees its purposes' events only)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import PURPOSE
from visage.core import Visage
from visage.governance.audit import Actor
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.subjects import add_subject, make_consent
from visage.web.pages import events as events_page

OTHER = "stage"


@pytest.fixture(scope="module")
def subject(console_core: Visage, data: Path) -> str:
    """One subject consenting to two purposes, recognised once for each (two events)."""
    sid = add_subject(console_core, "Colin Powell", make_consent("C-2", [PURPOSE, OTHER])).id
    # 250x250 LFW photos: the timeline is the claim, and a 1-2 megapixel portrait of
    # people/ costs ~5x more to analyse
    photos = sorted((data / "lfw10/Colin_Powell").iterdir())[:2]
    assert enroll(console_core, sid, photos[:1]).enrolled
    for purpose in (PURPOSE, OTHER):
        found = identify(console_core, photos[-1], purpose, Actor("user:olga", "operator"))
        assert found.faces[0].candidates[0].subject_id == sid
    return sid


def rows(html: str) -> list[str]:
    """The purposes of the timeline's rows, in order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<td>(access-control|stage)</td>", body)


def test_an_operator_sees_its_purposes_only(
    subject: str, as_user: Callable[[str], TestClient]
) -> None:
    olga = as_user("olga")
    page = olga.get("/events")
    assert page.status_code == 200
    assert rows(page.text) == [PURPOSE] and subject in page.text
    for label in ("Camera", "Purpose", "Subject", "From", "To"):
        assert f">{label}\n" in page.text or f">{label}<" in page.text, label
    assert ">Filter</button>" in page.text
    refused = olga.get(f"/events?purpose={OTHER}")
    assert refused.status_code == 403 and "not yours to read" in refused.text


def test_filters_for_an_auditor(subject: str, as_user: Callable[[str], TestClient]) -> None:
    aude = as_user("aude")
    assert sorted(rows(aude.get("/events").text)) == [PURPOSE, OTHER]
    assert rows(aude.get(f"/events?purpose={OTHER}").text) == [OTHER]
    assert len(rows(aude.get(f"/events?subject={subject}").text)) == 2
    assert rows(aude.get("/events?subject=0123456789abcdef").text) == []
    assert rows(aude.get("/events?camera=gate").text) == []  # identify events have no camera
    today = datetime.now(UTC).date()
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    assert len(rows(aude.get(f"/events?from={today}&to={today}").text)) == 2
    empty = aude.get(f"/events?from={tomorrow}").text
    assert rows(empty) == [] and "No event matches these filters." in empty
    assert rows(aude.get(f"/events?to={yesterday}").text) == []
    bad = aude.get("/events?from=26/11/2026")
    assert bad.status_code == 422 and "expected a date" in bad.text and "Traceback" not in bad.text


def test_pages_keep_the_filters(
    subject: str, as_user: Callable[[str], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_page, "PER_PAGE", 1)
    ada = as_user("ada")
    first = ada.get(f"/events?subject={subject}").text
    assert len(rows(first)) == 1
    assert f'href="/events?subject={subject}&amp;page=2" rel="next"' in first
    second = ada.get(f"/events?subject={subject}&page=2").text
    assert len(rows(second)) == 1 and rows(second) != rows(first)
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_roles_without_events_are_refused(as_user: Callable[[str], TestClient]) -> None:
    for name in ("enzo", "rita"):
        assert as_user(name).get("/events").status_code == 403


def test_events_in_french(subject: str, as_user: Callable[[str], TestClient]) -> None:
    client = as_user("olga")
    html = client.get("/events", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    assert "<h1>Événements</h1>" in html and ">Filtrer</button>" in html and "Finalité" in html
