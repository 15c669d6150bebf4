"""Subject access (GDPR Art. 15): everything held about one person, in one zip.

The zip holds ``subject.json`` (identity, consent records, template metadata — never the
templates, which are meaningless outside this installation), ``events.json``,
``reviews.json``, ``audit.json`` (entries that name this subject's id) and
``snapshots/<review id>.jpg``: the probe face crops of confirmed matches, in which every other
face was masked when they were taken, and ``references/<template id>.jpg``: the reference face
crop kept with each template (the aligned face the template was computed from; the template
ids are those of ``subject.json``). Files in the zip rather than base64 in the JSON: a person
can open them as they are.

Only confirmed material goes in. A pending or rejected review item is a candidate that two
people have not (or not yet) confirmed: its probe crop may show someone else, whom the
requester has no right to see, so neither the item nor its crop is exported.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance import audit
from visage.governance.audit import Actor
from visage.governance.audit_ops import ExportAudit
from visage.governance.events import list_events
from visage.governance.review import Status, probe_of
from visage.store.schema import ReviewRow
from visage.usecases.subjects import show_subject

README = """This archive answers a subject access request (GDPR Art. 15; law 09-08 Art. 7).
subject.json  - the person as registered, consent records, template metadata
events.json   - each time they were recognised (purpose, time, score, camera)
reviews.json  - 1:N matches confirmed by two-person review, with the decisions
audit.json    - audit log entries that refer to this subject (by id only)
snapshots/    - probe face crops of confirmed matches; all other faces were masked
references/   - the reference face crop kept with each template (named by template id),
                which reviewers compare a match with; the enrolment photos were not kept
Templates are not included: they are encrypted numbers usable only inside this system.
"""


class ExportSummary(BaseModel):
    subject_id: str
    path: str | None
    files: list[str]
    events: int
    reviews: int
    audit_entries: int


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _redact(value: Any, own: set[str]) -> Any:
    """Other people's ids in shared audit entries (a search that matched two people)."""
    if isinstance(value, dict):
        return {k: _redact(v, own) for k, v in value.items()}
    if isinstance(value, list):
        return [
            _redact(v, own) for v in value if not (isinstance(v, str) and _is_id(v)) or v in own
        ]
    if isinstance(value, str) and _is_id(value) and value not in own:
        return "(another person)"
    return value


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def build_export(
    core: Visage, subject_id: str, actor: Actor | None = None
) -> tuple[bytes, ExportSummary]:
    detail = show_subject(core, subject_id)  # NotFoundError for an unknown id
    keys = core.keyring
    with core.store.session() as session:
        events = [
            {
                "id": e.id,
                "purpose": e.purpose,
                "source": e.source,
                "camera": e.camera,
                "started_at": e.started_at,
                "ended_at": e.ended_at,
                "best_score": e.best_score,
                "frames": e.frames,
                "review_id": e.review_id,
            }
            for e in list_events(session, subject_id=subject_id, limit=1_000_000)
        ]
        reviews, snapshots = [], {}
        stmt = select(ReviewRow).where(
            ReviewRow.subject_id == subject_id, ReviewRow.status == Status.confirmed.value
        )
        for r in session.scalars(stmt.order_by(ReviewRow.created_at)):
            reviews.append(
                {
                    "id": r.id,
                    "purpose": r.purpose,
                    "created_at": r.created_at,
                    "score": r.score,
                    "threshold": r.threshold,
                    "status": r.status,
                    "decided_at": r.decided_at,
                    "decisions": [{"decision": d.decision, "at": d.at} for d in r.decisions],
                }
            )
            probe = probe_of(keys, r)
            if probe:
                snapshots[f"snapshots/{r.id}.jpg"] = probe
        references = {
            f"references/{t.id}.jpg": crop
            for t in repo.templates_of(session, subject_id)
            if (crop := repo.reference_of(keys, t))
        }
        own: set[str] = {subject_id, *(str(r["id"]) for r in reviews)}
        own |= {str(e["id"]) for e in events}
        unconfirmed = set(
            session.scalars(
                select(ReviewRow.id).where(
                    ReviewRow.subject_id == subject_id,
                    ReviewRow.status != Status.confirmed.value,
                )
            )
        )
        entries = [
            {**e.model_dump(mode="json"), "details": _redact(e.details, own)}
            for e in audit.entries(session)
            if (e.subject_id == subject_id or subject_id in json.dumps(e.details))
            and e.details.get("review_id") not in unconfirmed
        ]
    files: dict[str, bytes] = {
        "README.txt": README.encode(),
        "subject.json": detail.model_dump_json(indent=2).encode(),
        "events.json": _dump(events).encode(),
        "reviews.json": _dump(reviews).encode(),
        "audit.json": _dump(entries).encode(),
        **snapshots,
        **references,
    }
    buffer = io.BytesIO()
    stamp = datetime.now(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=stamp), content)
    with core.store.session() as session:
        core.audit(
            session,
            actor or Actor.local(),
            ExportAudit(
                subject_id=subject_id,
                files=len(files),
                zip_sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
            ),
        )
    summary = ExportSummary(
        subject_id=subject_id,
        path=None,
        files=sorted(files),
        events=len(events),
        reviews=len(reviews),
        audit_entries=len(entries),
    )
    return buffer.getvalue(), summary


def export_to(
    core: Visage, subject_id: str, out: Path, actor: Actor | None = None
) -> ExportSummary:
    data, summary = build_export(core, subject_id, actor)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return summary.model_copy(update={"path": str(out)})
