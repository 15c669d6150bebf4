"""Transparency figures computed from the audit log, and their HTML rendering.

Everything here is counted from audit entries, so a report can be re-derived by anyone who
holds the exported log. Bystanders appear as a number only.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel

from visage.governance.audit import AuditEntry
from visage.governance.audit_ops import (
    AnonymizeAudit,
    AuditOp,
    AuditOutcome,
    IdentifyAudit,
    RetentionPurgeAudit,
    ReviewConfirmAudit,
    WatchAudit,
    read,
)
from visage.governance.review import Status as ReviewStatus


class PurposeFigures(BaseModel):
    purpose: str
    searches: int = 0
    refused: int = 0
    faces: int = 0
    matches: int = 0
    bystander_faces: int = 0
    review_confirmations: int = 0
    review_rejections: int = 0


class TransparencyFigures(BaseModel):
    since: datetime | None
    until: datetime | None
    entries: int
    purposes: list[PurposeFigures]
    searches_per_day: dict[str, int]
    verifications: int
    detections: int
    enrolments: int
    subjects_registered: int
    consents_withdrawn: int
    subject_access_exports: int
    erasures: int
    retention_runs: int
    purged: dict[str, int]
    bystander_faces: int
    matches_confirmed: int
    camera_runs: int = 0
    camera_frames: int = 0
    camera_events: int = 0
    camera_bystander_tracks: int = 0
    anonymizations: int = 0
    faces_masked: int = 0


def transparency_figures(entries: Iterable[AuditEntry]) -> TransparencyFigures:
    """Count the figures. Every figure is read from a typed payload
    (:func:`visage.governance.audit_ops.read`): an entry that lacks one raises
    :class:`~visage.governance.audit_ops.AuditRecordError` naming it, rather than being
    published as 0."""
    per: dict[str, PurposeFigures] = {}
    per_day: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    purged: defaultdict[str, int] = defaultdict(int)
    first: datetime | None = None
    last: datetime | None = None
    confirmed = 0
    n = 0
    camera: Counter[str] = Counter()
    for e in entries:
        n += 1
        first = first or e.at
        last = e.at
        ops[e.operation] += 1
        fig = per.setdefault(e.purpose or "-", PurposeFigures(purpose=e.purpose or "-"))
        if e.operation == AuditOp.identify:
            if e.outcome == AuditOutcome.refused:
                fig.refused += 1
                continue
            search = read(e, IdentifyAudit)
            fig.searches += 1
            fig.faces += search.faces
            fig.matches += search.matches
            fig.bystander_faces += search.bystanders
            per_day[e.at.date().isoformat()] += 1
        elif e.operation == AuditOp.review_confirm:
            fig.review_confirmations += 1
            confirmed += read(e, ReviewConfirmAudit).status is ReviewStatus.confirmed
        elif e.operation == AuditOp.review_reject:
            fig.review_rejections += 1
        elif e.operation == AuditOp.watch and e.outcome == AuditOutcome.ok:
            run = read(e, WatchAudit)
            camera["frames"] += run.frames
            camera["events"] += run.events
            camera["bystander_tracks"] += run.bystander_tracks
        elif e.operation == AuditOp.anonymize and e.outcome == AuditOutcome.ok:
            camera["faces_masked"] += read(e, AnonymizeAudit).faces_masked
        elif e.operation == AuditOp.retention_purge:
            purge = read(e, RetentionPurgeAudit)
            purged["events_deleted"] += purge.events_deleted
            purged["reviews_deleted"] += purge.reviews_deleted
            purged["templates_deleted"] += purge.templates_deleted
            purged["audit_entries_dropped"] += purge.audit_entries_dropped
    purposes = [
        f
        for f in per.values()
        if f.searches or f.refused or f.review_confirmations or f.review_rejections
    ]
    return TransparencyFigures(
        since=first,
        until=last,
        entries=n,
        purposes=sorted(purposes, key=lambda f: f.purpose),
        searches_per_day=dict(sorted(per_day.items())),
        verifications=ops[AuditOp.verify],
        detections=ops[AuditOp.detect],
        enrolments=ops[AuditOp.enroll],
        subjects_registered=ops[AuditOp.subject_create],
        consents_withdrawn=ops[AuditOp.consent_withdraw],
        subject_access_exports=ops[AuditOp.export],
        erasures=ops[AuditOp.erase],
        retention_runs=ops[AuditOp.retention_purge],
        purged=dict(purged),
        bystander_faces=sum(f.bystander_faces for f in per.values()),
        matches_confirmed=confirmed,
        camera_runs=ops[AuditOp.watch],
        camera_frames=camera["frames"],
        camera_events=camera["events"],
        camera_bystander_tracks=camera["bystander_tracks"],
        anonymizations=ops[AuditOp.anonymize],
        faces_masked=camera["faces_masked"],
    )


def _png(fig: object) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode()


def charts(figures: TransparencyFigures) -> list[tuple[str, str]]:
    """(title, base64 PNG) pairs: searches and outcomes per purpose, searches per day."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out: list[tuple[str, str]] = []
    if figures.purposes:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        names = [p.purpose for p in figures.purposes]
        xs = range(len(names))
        width = 0.2
        series = [
            ("searches", [p.searches for p in figures.purposes]),
            ("matches", [p.matches for p in figures.purposes]),
            ("bystander faces", [p.bystander_faces for p in figures.purposes]),
            ("refused", [p.refused for p in figures.purposes]),
        ]
        for i, (label, values) in enumerate(series):
            ax.bar([x + (i - 1.5) * width for x in xs], values, width, label=label)
        ax.set_xticks(list(xs), names)
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
        out.append(("Searches, matches and bystander faces per purpose", _png(fig)))
        plt.close(fig)
    if figures.searches_per_day:
        fig, ax = plt.subplots(figsize=(7, 2.6))
        days = list(figures.searches_per_day)
        ax.bar(days, list(figures.searches_per_day.values()), color="#4a6fa5")
        ax.set_ylabel("1:N searches")
        fig.autofmt_xdate()
        out.append(("1:N searches per day", _png(fig)))
        plt.close(fig)
    return out


def render_html(title: str, figures: TransparencyFigures, facts: dict[str, str]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(p.purpose)}</td><td>{p.searches}</td><td>{p.refused}</td>"
        f"<td>{p.matches}</td><td>{p.review_confirmations}</td><td>{p.review_rejections}</td>"
        f"<td>{p.bystander_faces}</td></tr>"
        for p in figures.purposes
    )
    totals = {
        "1:1 verifications": figures.verifications,
        "face detections": figures.detections,
        "subjects registered": figures.subjects_registered,
        "templates enrolled": figures.enrolments,
        "consents withdrawn": figures.consents_withdrawn,
        "subject access exports": figures.subject_access_exports,
        "erasures": figures.erasures,
        "matches confirmed by two reviewers": figures.matches_confirmed,
        "retention runs": figures.retention_runs,
        **{f"purged: {k.replace('_', ' ')}": v for k, v in figures.purged.items()},
        "bystander faces processed (count only, nothing kept)": figures.bystander_faces,
        "camera / video watch runs": figures.camera_runs,
        "camera frames processed": figures.camera_frames,
        "camera events (enrolled subjects only)": figures.camera_events,
        "bystander face tracks on cameras (count only, nothing kept)": (
            figures.camera_bystander_tracks
        ),
        "anonymisations": figures.anonymizations,
        "face regions masked in anonymised outputs": figures.faces_masked,
    }
    total_rows = "".join(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in totals.items())
    fact_rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in facts.items())
    images = "".join(
        f'<figure><img alt="{e(t)}" src="data:image/png;base64,{b}"><figcaption>{e(t)}'
        "</figcaption></figure>"
        for t, b in charts(figures)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .6rem}}
th{{background:#f0f0f0}}figure{{margin:1rem 0}}</style></head><body>
<h1>{e(title)}</h1>
<table>{fact_rows}</table>
<h2>1:N searches per purpose</h2>
<table><tr><th>purpose</th><th>searches</th><th>refused</th><th>matches</th>
<th>confirmed</th><th>rejected</th><th>bystander faces</th></tr>{rows}</table>
{images}
<h2>Other operations</h2>
<table>{total_rows}</table>
<p>All figures are counted from the hash-chained audit log; no biometric data, image or name
is in this report.</p>
</body></html>
"""
