"""Issue 11, item 12: the subject access export holds only confirmed material.

A review item that two people have not confirmed is only a candidate: its probe crop may
show somebody else. An enroller who asks for a subject's export over the API must get the
crops of confirmed matches only, never those of pending or rejected items.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from visage.api.app import create_app
from visage.core import Visage
from visage.governance import review as review_gov
from visage.governance.access import Role
from visage.store.schema import ReviewRow
from visage.usecases.keys import create_key
from visage.usecases.subjects import add_subject, make_consent

PURPOSE = "watchlist-test"


def _queue(app: Visage, subject_id: str, probe: bytes, status: review_gov.Status) -> str:
    """A review item with a probe crop, set to ``status`` (decisions have their own tests)."""
    with app.store.session() as session:
        row = review_gov.open_review(
            session,
            app.keyring,
            review_gov.Candidate(
                subject_id=subject_id,
                purpose=PURPOSE,
                score=0.97,
                threshold=app.threshold,
                quality=0.9,
                source="identify",
            ),
            probe,
        )
        session.execute(update(ReviewRow).where(ReviewRow.id == row.id).values(status=status.value))
        return row.id


def test_export_holds_no_probe_of_a_pending_or_rejected_review(
    fresh_app: Visage, data: Path
) -> None:
    sid = add_subject(fresh_app, "Joe", make_consent("F-9", [PURPOSE])).id
    own_face = (data / "people/joe_biden/1.jpg").read_bytes()
    someone_else = (data / "people/barack_obama/1.jpg").read_bytes()
    confirmed = _queue(fresh_app, sid, own_face, review_gov.Status.confirmed)
    pending = _queue(fresh_app, sid, someone_else, review_gov.Status.pending)
    rejected = _queue(fresh_app, sid, someone_else, review_gov.Status.rejected)
    key = create_key(fresh_app, Role.enroller, []).key
    with TestClient(create_app(fresh_app)) as client:
        got = client.get(f"/v1/subjects/{sid}/export", headers={"X-API-Key": key})
    assert got.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(got.content))
    files = {name: archive.read(name) for name in archive.namelist()}
    assert f"snapshots/{confirmed}.jpg" in files
    assert files[f"snapshots/{confirmed}.jpg"] == own_face
    assert [f for f in files if f.startswith("snapshots/")] == [f"snapshots/{confirmed}.jpg"]
    assert all(someone_else not in content for content in files.values())
    assert [r["id"] for r in json.loads(files["reviews.json"])] == [confirmed]
    for unconfirmed in (pending, rejected):
        assert all(unconfirmed.encode() not in content for content in files.values())
