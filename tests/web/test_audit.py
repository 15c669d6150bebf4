"""The Audit screen: the chain's state and "Verify now", filters, JSONL export, the key's
fingerprint — for auditors and admins only."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_app
from tests.web.conftest import add_users, page_csrf, sign_in
from visage.core import Visage
from visage.store.db import DB_FILE
from visage.usecases import audit_log as audit_uc
from visage.web.app import create_server

Login = Callable[[str], TestClient]


@pytest.mark.parametrize("name", ["aude", "ada"])
def test_auditor_and_admin_see_the_chain_and_the_key(as_user: Login, name: str) -> None:
    client = as_user(name)
    response = client.get("/audit")
    assert response.status_code == 200
    html = response.text
    assert "<h1>Audit</h1>" in html
    assert ">Verify now</button>" in html
    assert ">Export JSONL</a>" in html
    for label in ("Operation", "Actor", "Purpose", "From", "To"):
        assert re.search(rf'<label for="f-[a-z]+">{label}\b', html), label
    assert ">Filter</button>" in html
    assert 'href="/audit"' in html and 'aria-current="page"' in html


def test_the_fingerprint_is_the_signing_keys(as_user: Login, console_core: Visage) -> None:
    html = as_user("aude").get("/audit").text
    assert console_core.signer.fingerprint in html
    assert len(console_core.signer.fingerprint) == 64
    pem = as_user("aude").get("/audit/public-key.pem")
    assert pem.headers["content-disposition"].startswith("attachment")
    assert pem.text == audit_uc.public_key_pem(console_core)


@pytest.mark.parametrize("name", ["enzo", "olga", "rita"])
def test_other_roles_are_refused(as_user: Login, name: str) -> None:
    client = as_user(name)
    for path in ("/audit", "/audit/export.jsonl", "/audit/public-key.pem"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "<h1" in response.text and "Traceback" not in response.text
    token = page_csrf(client)
    refused = client.post("/audit/verify", data={"csrf": token})
    assert refused.status_code == 403


def test_verify_now_reports_the_chain_intact(as_user: Login, console_core: Visage) -> None:
    client = as_user("aude")
    response = client.post("/audit/verify", data={"csrf": page_csrf(client, "/audit")})
    assert response.status_code == 200
    assert "The audit chain is intact" in response.text
    assert 'role="status" id="verify-result"' in response.text
    assert audit_uc.verify(console_core).ok


def test_verify_now_without_the_csrf_token_is_refused(as_user: Login) -> None:
    client = as_user("aude")
    response = client.post("/audit/verify", data={})
    assert response.status_code == 403
    assert "The audit chain is intact" not in response.text


def test_filter_by_operation_and_actor(as_user: Login, console_core: Visage) -> None:
    client = as_user("ada")
    expected = audit_uc.search(console_core, audit_uc.AuditQuery(operation="user.create"))
    assert expected.total == 6  # the six console users of the fixture
    html = client.get("/audit", params={"operation": "user.create"}).text
    assert "6 matching entries" in html
    assert '<option value="user.create" selected>' in html
    rows = re.findall(r"<td>user\.create</td>", html)
    assert len(rows) == 6
    # sign-ins by ada, by name or by actor id
    by_name = client.get("/audit", params={"operation": "sign_in", "actor": "ada"}).text
    by_id = client.get("/audit", params={"operation": "sign_in", "actor": "user:ada"}).text
    count = re.search(r"(\d+) matching entries", by_name)
    assert count and int(count.group(1)) >= 1
    assert count.group(0) in by_id
    assert "<td>user:aude" not in by_name


def test_filter_by_date_and_purpose(as_user: Login) -> None:
    client = as_user("aude")
    future = client.get("/audit", params={"from": "2999-01-01"}).text
    assert "0 matching entries" in future
    past = client.get("/audit", params={"to": "2000-01-01"}).text
    assert "0 matching entries" in past
    none = client.get("/audit", params={"purpose": "no-such-purpose"}).text
    assert "0 matching entries" in none


def test_a_bad_date_is_a_clear_message(as_user: Login) -> None:
    client = as_user("aude")
    response = client.get("/audit", params={"from": "yesterday"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "From: a date is expected" in response.text
    client.cookies.set("visage_lang", "fr")
    french = client.get("/audit", params={"from": "yesterday"})
    assert french.status_code == 422 and "Du: une date est attendue (AAAA-MM-JJ)" in french.text
    client.cookies.delete("visage_lang")
    reversed_ = client.get("/audit", params={"from": "2026-11-26", "to": "2026-11-01"})
    assert reversed_.status_code == 422
    assert "the end date is before the start date" in reversed_.text


def test_pages(console_core: Visage, as_user: Login) -> None:
    client = as_user("aude")
    total = audit_uc.chain_state(console_core).entries
    assert total > 0
    first = client.get("/audit").text
    pages = -(-audit_uc.search(console_core, audit_uc.AuditQuery()).total // 50)
    assert f"Page 1 of {max(1, pages)}" in first
    # the console's own page size is 50; ask for a page past the end: the last one is shown
    last = client.get("/audit", params={"page": 99999}).text
    assert f"Page {max(1, pages)} of" in last


def test_export_is_the_cli_export(as_user: Login, console_core: Visage) -> None:
    response = as_user("aude").get("/audit/export.jsonl")
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and ".jsonl" in disposition
    lines = response.text.splitlines()
    records = [json.loads(line) for line in lines]
    entries = [r for r in records if not r.get("checkpoint") and not r.get("purge")]
    assert entries and all("hash" in e and "seq" in e for e in entries)
    # everything up to the export's own moment is there, as `visage audit export` writes it
    expected = list(audit_uc.export_lines(console_core))
    assert lines == expected[: len(lines)]
    assert len(entries) <= audit_uc.chain_state(console_core).entries


def test_french_page(as_user: Login) -> None:
    client = as_user("aude")
    client.cookies.set("visage_lang", "fr")
    html = client.get("/audit").text
    assert '<html lang="fr"' in html
    assert "Vérifier maintenant" in html
    assert "Exporter en JSONL" in html
    assert "Filtrer" in html


def test_a_tampered_chain_is_reported_broken(tmp_path: Path, shared_app: Visage) -> None:
    """On a data dir of its own: one audit row altered behind Visage's back."""
    core = make_app(tmp_path / "home", models=shared_app)
    try:
        add_users(core)
        db = core.home / DB_FILE
        app = create_server(core, housekeeping=False, watch_cameras=False)
        with TestClient(app, base_url="http://testserver") as client:
            sign_in(client, "aude")
            intact = client.post("/audit/verify", data={"csrf": page_csrf(client, "/audit")})
            assert "The audit chain is intact" in intact.text
            with sqlite3.connect(db) as conn:
                changed = conn.execute(
                    "UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = "
                    "(SELECT MIN(seq) FROM audit_entries WHERE operation = 'user.create')"
                ).rowcount
            assert changed == 1
            response = client.post("/audit/verify", data={"csrf": page_csrf(client, "/audit")})
            assert response.status_code == 200
            assert "The audit chain is broken." in response.text
            assert 'role="alert" id="verify-result"' in response.text
            assert "First bad entry" in response.text
    finally:
        core.close()
