"""The Reports screen: the transparency report framed under its own policy, the Art. 30
record and the DPIA pack, each to read and to download — auditors and admins only."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TEST_DPIA
from visage.web.app import CSP
from visage.web.pages.reports import REPORT_CSP

Login = Callable[[str], TestClient]

PAGES = [
    "/reports",
    "/reports/transparency.html",
    "/reports/transparency.json",
    "/reports/processing-record",
    "/reports/processing-record.json",
    "/reports/dpia-pack",
    "/reports/dpia-pack.json",
]


@pytest.fixture(scope="module")
def auditor(server: TestClient) -> TestClient:
    from tests.web.conftest import sign_in

    client = TestClient(server.app, base_url="http://testserver")
    return sign_in(client, "aude")


def test_reports_page_frames_the_transparency_report(auditor: TestClient) -> None:
    response = auditor.get("/reports")
    assert response.status_code == 200
    html = response.text
    assert "<h1>Reports</h1>" in html
    assert '<iframe class="report-frame" src="/reports/transparency.html"' in html
    assert 'title="Transparency report"' in html
    assert response.headers["content-security-policy"] == CSP
    for link in ("/reports/processing-record", "/reports/dpia-pack"):
        assert f'href="{link}"' in html and f'href="{link}.json"' in html


def test_transparency_document_has_its_own_policy_and_no_script(auditor: TestClient) -> None:
    response = auditor.get("/reports/transparency.html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == REPORT_CSP
    assert "frame-ancestors 'self'" in REPORT_CSP and "script" not in REPORT_CSP
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert "content-disposition" not in response.headers  # to be framed, not saved
    html = response.text
    assert "Visage transparency report" in html
    assert "<script" not in html.lower()
    assert "audit log" in html and "intact" in html


def test_downloads_are_attachments(auditor: TestClient) -> None:
    html = auditor.get("/reports/transparency.html", params={"download": "true"})
    assert html.headers["content-disposition"].startswith("attachment;")
    assert html.headers["content-disposition"].endswith('.html"')
    assert "<script" not in html.text.lower() and len(html.text) > 500
    for path, key in (
        ("/reports/transparency.json", "figures"),
        ("/reports/processing-record.json", "security_measures"),
        ("/reports/dpia-pack.json", "safeguards"),
    ):
        response = auditor.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-disposition"].startswith("attachment;"), path
        assert response.headers["content-type"].startswith("application/json")
        document = json.loads(response.text)
        assert document[key], path


def test_record_and_pack_are_viewable(auditor: TestClient) -> None:
    record = auditor.get("/reports/processing-record")
    assert record.status_code == 200
    assert "<h1>Record of processing activities (GDPR Art. 30)</h1>" in record.text
    assert "third country transfers" in record.text  # keys shown as words
    assert TEST_DPIA in record.text  # the profile's DPIA reference, in the legal framework
    pack = auditor.get("/reports/dpia-pack")
    assert pack.status_code == 200
    assert "<h1>DPIA facts pack (GDPR Art. 35)</h1>" in pack.text
    assert "safeguards" in pack.text and "<script>" not in pack.text
    assert ' style="' not in pack.text


def test_admin_sees_reports(as_user: Login) -> None:
    client = as_user("ada")
    assert client.get("/reports").status_code == 200
    assert client.get("/reports/dpia-pack.json").status_code == 200


@pytest.mark.parametrize("name", ["enzo", "olga", "rita"])
def test_other_roles_are_refused(as_user: Login, name: str) -> None:
    client = as_user(name)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "content-disposition" not in response.headers
    assert 'href="/reports"' not in client.get("/").text  # not in their navigation


def test_signed_out_is_sent_to_sign_in(server: TestClient) -> None:
    client = TestClient(server.app, base_url="http://testserver")
    response = client.get("/reports/dpia-pack.json", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")


def test_french_page(auditor: TestClient) -> None:
    response = auditor.get("/reports", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    html = response.text
    assert '<html lang="fr"' in html
    assert "Rapport de transparence" in html
    assert "Registre des activités de traitement" in html
