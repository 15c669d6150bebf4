"""What the public may know: the data of the notice pages under ``/public/`` (GDPR Art.
12-13, EDPB Guidelines 3/2019 second layer), of the transparency page, and of the audit head
anyone may witness.

Only configuration and aggregates are built here, never a name, subject id, consent
reference, image or per-event row, so that one test can scan every answer built from it.
Halt reasons and actors are left out too: an admin types a reason freely, and it might name
someone.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from visage.core import Visage
from visage.errors import InputError, NotFoundError
from visage.governance import audit
from visage.governance.audit import AuditEntry, VerifyReport, checkpoint_message
from visage.governance.profile import DeploymentProfile, Jurisdiction
from visage.governance.reports import TransparencyFigures, transparency_figures
from visage.governance.signing import fingerprint, verify_signature
from visage.store.schema import AuditEntryRow, CameraRow, ConsentRow
from visage.usecases import audit_log
from visage.usecases import halt as halt_uc
from visage.usecases.cameras import CameraState, list_cameras
from visage.usecases.profile import get_profile
from visage.usecases.report import processing_record

AUTHORITIES = {
    Jurisdiction.FR: "CNIL — Commission nationale de l'informatique et des libertés, "
    "3 place de Fontenoy, TSA 80715, 75334 Paris Cedex 07 — https://www.cnil.fr/fr/plaintes",
    Jurisdiction.MA: "CNDP — Commission nationale de contrôle de la protection des données à "
    "caractère personnel, Rabat — https://www.cndp.ma",
    Jurisdiction.EU: "the data protection authority of your EU member state — "
    "https://www.edpb.europa.eu/about-edpb/about-edpb/members_en",
}
"""The supervisory authority named when the profile names none."""


class PurposeNotice(BaseModel):
    purpose: str
    legal_bases: list[str] = Field(description="Art. 9(2) grounds of the consent records")
    watchlist: bool = Field(description="matches need two reviewers before anyone acts")
    cameras: int = Field(description="cameras watching for this purpose")


class StopState(BaseModel):
    """A halt in force: its scope and since when (not its reason nor who pressed Stop)."""

    scope: str
    since: datetime


class PublicNotice(BaseModel):
    """``/public/``: who, why, on what basis, for how long, and how to object."""

    controller: str | None
    dpo_contact: str | None
    rights_contact: str | None
    supervisory_authority: str | None
    jurisdiction: str
    reference: str = Field(description="what to quote in a request: the deployment's key id")
    identification_on: bool = Field(description="1:N identification is allowed by the profile")
    live_identification_on: bool = Field(description="1:N on camera streams is allowed")
    purposes: list[PurposeNotice]
    retention: dict[str, str]
    halts: list[StopState]
    cameras: list[CameraNotice]


class CameraNotice(BaseModel):
    """``/public/cameras/{slug}``: what one camera does, now."""

    slug: str
    place: str
    purpose: str
    recognition: bool = Field(
        description="recognises consenting people for its purpose; else faces are only masked"
    )
    watchlist: bool
    running: bool
    stopped_by: StopState | None = Field(description="the halt that stops it, if any")
    enabled: bool
    retention_events_days: int
    notice_url: str | None = Field(description="absolute, when VISAGE_PUBLIC_URL is set")


PublicNotice.model_rebuild()


class MonthFigures(BaseModel):
    month: str = Field(description="YYYY-MM")
    searches: dict[str, int] = Field(description="1:N searches per purpose")
    matches: int
    confirmations: int
    rejections: int
    erasures: int
    purged: int = Field(description="events, reviews and templates deleted by retention")
    bystander_faces: int = Field(description="counted, never kept")
    camera_bystander_tracks: int


class PublicTransparency(BaseModel):
    months: list[MonthFigures]
    purposes: list[str]
    entries: int


class PublicHead(BaseModel):
    """The latest signed audit head as ``/public/audit-head.json`` serves it; a file of these
    (JSON Lines), saved over time by anyone, is what ``audit verify --witness`` checks."""

    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: str
    key_fingerprint: str
    public_key: str = Field(description="Ed25519 raw public key, hex")


class PublicHeadPage(BaseModel):
    head: PublicHead | None
    key_fingerprint: str
    public_key: str
    entries: int


# -- slugs ----------------------------------------------------------------------------


def slugify(name: str) -> str:
    """``Gate A (north)`` → ``gate-a-north``: ASCII letters and digits joined by ``-``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug or "camera"


def camera_slugs(rows: list[tuple[str, str]]) -> dict[str, str]:
    """``{camera id: slug}`` for (id, name) pairs. Names are unique, slugs need not be (``Gate
    A`` and ``gate-a``): those that collide get the start of the camera id appended, so every
    slug stays stable as long as the name does."""
    by_slug: defaultdict[str, list[str]] = defaultdict(list)
    for camera_id, name in rows:
        by_slug[slugify(name)].append(camera_id)
    out: dict[str, str] = {}
    for slug, ids in by_slug.items():
        for camera_id in ids:
            out[camera_id] = slug if len(ids) == 1 else f"{slug}-{camera_id[:8]}"
    return out


def notice_path(slug: str) -> str:
    return f"/public/cameras/{slug}"


def notice_url(core: Visage, slug: str) -> str | None:
    base = core.settings.public_url
    return None if base is None else base.rstrip("/") + notice_path(slug)


# -- notices --------------------------------------------------------------------------


def _stop(halt: halt_uc.HaltOut | None) -> StopState | None:
    return None if halt is None else StopState(scope=halt.scope, since=halt.at)


def _authority(profile: DeploymentProfile) -> str | None:
    return profile.supervisory_authority or AUTHORITIES.get(profile.jurisdiction)


def _legal_bases(core: Visage) -> dict[str, set[str]]:
    """Per purpose, the legal bases of the consent records in force (not their references)."""
    bases: defaultdict[str, set[str]] = defaultdict(set)
    with core.store.session() as session:
        rows = session.execute(
            select(ConsentRow.purposes, ConsentRow.legal_basis).where(
                ConsentRow.withdrawn_at.is_(None)
            )
        )
        for purposes, basis in rows:
            for purpose in purposes:
                bases[purpose].add(basis)
    return bases


def camera_notices(core: Visage) -> list[CameraNotice]:
    profile = get_profile(core)
    recognition = profile.identification_gate(live=True) is None
    cameras = list_cameras(core)
    slugs = camera_slugs([(c.id, c.name) for c in cameras])
    out = []
    for camera in cameras:
        stop = _stop(halt_uc.blocking(core, camera.purpose, camera.name))
        out.append(
            CameraNotice(
                slug=slugs[camera.id],
                place=camera.name,
                purpose=camera.purpose,
                recognition=recognition,
                watchlist=profile.is_watchlist(camera.purpose),
                running=camera.status.state is CameraState.running and stop is None,
                stopped_by=stop,
                enabled=camera.enabled,
                retention_events_days=core.settings.retention_events_days,
                notice_url=notice_url(core, slugs[camera.id]),
            )
        )
    return out


def camera_notice(core: Visage, slug: str) -> CameraNotice:
    for notice in camera_notices(core):
        if notice.slug == slug:
            return notice
    raise NotFoundError(f"no camera notice {slug!r}")


def find_camera(core: Visage, name_or_slug: str) -> CameraNotice:
    """A camera by its name or its slug (what the sign command takes)."""
    with core.store.session() as session:
        named = session.scalar(select(CameraRow.name).where(CameraRow.name == name_or_slug))
    return camera_notice(core, slugify(named) if named else name_or_slug)


def notice(core: Visage) -> PublicNotice:
    profile = get_profile(core)
    record = processing_record(core)
    cameras = camera_notices(core)
    bases = _legal_bases(core)
    purposes = sorted(
        set(record["purposes"]["consented"])
        | set(profile.watchlist_purposes)
        | {c.purpose for c in cameras}
    )
    return PublicNotice(
        controller=profile.controller,
        dpo_contact=profile.dpo_contact,
        rights_contact=profile.rights_contact or profile.dpo_contact,
        supervisory_authority=_authority(profile),
        jurisdiction=profile.jurisdiction.value,
        reference=f"Visage {core.signer.key_id}",
        identification_on=profile.identification_gate() is None,
        live_identification_on=profile.identification_gate(live=True) is None,
        purposes=[
            PurposeNotice(
                purpose=p,
                legal_bases=sorted(bases.get(p, set())),
                watchlist=profile.is_watchlist(p),
                cameras=sum(c.purpose == p for c in cameras),
            )
            for p in purposes
        ],
        retention=record["retention"],
        halts=[StopState(scope=h.scope, since=h.at) for h in halt_uc.list_halts(core)],
        cameras=cameras,
    )


# -- transparency ---------------------------------------------------------------------


def _month(figures: TransparencyFigures, month: str) -> MonthFigures:
    return MonthFigures(
        month=month,
        searches={p.purpose: p.searches for p in figures.purposes if p.searches},
        matches=sum(p.matches for p in figures.purposes),
        confirmations=sum(p.review_confirmations for p in figures.purposes),
        rejections=sum(p.review_rejections for p in figures.purposes),
        erasures=figures.erasures,
        purged=sum(v for k, v in figures.purged.items() if k != "audit_entries_dropped"),
        bystander_faces=figures.bystander_faces,
        camera_bystander_tracks=figures.camera_bystander_tracks,
    )


def transparency(core: Visage) -> PublicTransparency:
    """The transparency report's figures per calendar month (UTC), oldest first."""
    per_month: defaultdict[str, list[AuditEntry]] = defaultdict(list)
    n = 0
    with core.store.session() as session:
        for entry in audit.entries(session):
            per_month[entry.at.strftime("%Y-%m")].append(entry)
            n += 1
    months = [_month(transparency_figures(es), m) for m, es in sorted(per_month.items())]
    purposes = sorted({p for m in months for p in m.searches})
    return PublicTransparency(months=months, purposes=purposes, entries=n)


# -- the audit head, for anyone to witness ----------------------------------------------


def audit_head(core: Visage) -> PublicHeadPage:
    state = audit_log.chain_state(core)
    signer = core.signer
    head = state.newest_checkpoint
    return PublicHeadPage(
        head=None
        if head is None
        else PublicHead(
            **head.model_dump(),
            key_fingerprint=signer.fingerprint,
            public_key=signer.public_raw.hex(),
        ),
        key_fingerprint=signer.fingerprint,
        public_key=signer.public_raw.hex(),
        entries=state.entries,
    )


class WitnessCheck(BaseModel):
    """The chain checked against heads someone else saved from ``/public/audit-head.json``."""

    ok: bool
    heads: int = Field(description="saved heads read")
    matched: int = Field(description="heads whose entry is in the chain with the same hash")
    purged: int = Field(description="heads before the purged part: signature checked only")
    problem: str | None = None


def read_saved_heads(path: Path) -> list[PublicHead]:
    """JSON Lines of ``/public/audit-head.json`` answers (the whole answer, or its ``head``);
    blank lines are skipped. Anything else is an :class:`InputError` naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"witness file {path} cannot be read: {exc}") from exc
    heads = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if isinstance(data, dict) and "head" in data:
                if data["head"] is None:
                    continue  # saved before the first checkpoint: nothing to check
                data = data["head"]
            heads.append(PublicHead.model_validate(data))
        except (ValueError, ValidationError) as exc:
            raise InputError(
                f"witness file {path}, line {number}: not an audit head saved from "
                "/public/audit-head.json"
            ) from exc
    if not heads:
        raise InputError(f"witness file {path} holds no audit head")
    return heads


def check_saved_heads(
    core: Visage, heads: list[PublicHead], report: VerifyReport | None = None
) -> WitnessCheck:
    """Every saved head must be signed by the pinned key, and the chain must still hold it:
    an entry at its seq with its hash (unless that part was purged under a signed marker),
    and reach at least as far. Run after :func:`visage.usecases.audit_log.verify`, which
    checks the chain itself (pass its ``report`` to not walk the chain twice)."""
    report = report or audit_log.verify(core)
    result = WitnessCheck(ok=False, heads=len(heads), matched=0, purged=0)
    if not report.ok:
        result.problem = f"the chain itself is broken: {report.problem}"
        return result
    pinned = report.key_fingerprint
    first = report.first_seq or 1
    last = report.last_seq or 0
    with core.store.session() as session:
        for head in sorted(heads, key=lambda h: h.seq):
            when = head.at.isoformat(timespec="seconds")
            raw = bytes.fromhex(head.public_key) if _hex(head.public_key) else b""
            if head.key_fingerprint != pinned or fingerprint(raw) != pinned:
                result.problem = (
                    f"head {head.seq} (saved {when}) names another signing key "
                    f"({head.key_fingerprint[:16]}, pinned {(pinned or '')[:16]})"
                )
                return result
            signature = bytes.fromhex(head.signature) if _hex(head.signature) else b""
            message = checkpoint_message(head.seq, head.hash, head.at)
            if not verify_signature(raw, signature, message):
                result.problem = f"head {head.seq} (saved {when}) is not signed by the pinned key"
                return result
            if head.seq > last:
                result.problem = (
                    f"entries after {last} were deleted: head {head.seq} was published at {when}"
                )
                return result
            if head.seq < first:
                result.purged += 1
                continue
            found = session.scalar(select(AuditEntryRow.hash).where(AuditEntryRow.seq == head.seq))
            if found != head.hash:
                result.problem = (
                    f"entry {head.seq} differs from the head published at {when} "
                    "(the chain was rewritten)"
                )
                return result
            result.matched += 1
    result.ok = True
    return result


def _hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True
