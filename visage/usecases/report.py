"""Reports for the public, the controller and the supervisory authority.

A report is built as data (:class:`TransparencyReport`); :func:`render_transparency` turns
it into JSON or HTML, so that every door returns the same document without a file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from visage import __version__
from visage.core import Visage
from visage.governance import audit
from visage.governance.reports import TransparencyFigures, render_html, transparency_figures
from visage.store.schema import ApiKeyRow, ConsentRow
from visage.usecases import audit_log
from visage.usecases.evaluate import last_evaluation, last_group_evaluation
from visage.usecases.profile import get_profile

TRANSPARENCY_TITLE = "Visage transparency report"


class ReportFormat(StrEnum):
    json = "json"
    html = "html"


class TransparencyReport(BaseModel):
    """The transparency report as data: the figures counted from the audit log and the
    facts printed at its head (who publishes it, under which law, for which period)."""

    generated_at: datetime
    since: datetime | None
    audit_intact: bool
    audit_problem: str | None
    facts: dict[str, str]
    figures: TransparencyFigures


def transparency(core: Visage, since: datetime | None = None) -> TransparencyReport:
    with core.store.session() as session:
        figures = transparency_figures(audit.entries(session, since=since))
    check = audit_log.verify(core)  # pinned key and witnessed head, as `audit verify`
    profile = get_profile(core)
    generated_at = datetime.now(UTC)
    facts = {
        "period": f"{since.date() if since else 'start of log'} to {generated_at.date()}",
        "controller": profile.controller or "not set (to be recorded in the deployment profile)",
        "jurisdiction": profile.jurisdiction.value,
        "DPIA reference": profile.dpia_ref or "none (1:N is off)",
        "audit log": "intact" if check.ok else f"BROKEN: {check.problem}",
        "audit signing key": core.signer.key_id,
        "generated": generated_at.isoformat(timespec="seconds"),
    }
    return TransparencyReport(
        generated_at=generated_at,
        since=since,
        audit_intact=check.ok,
        audit_problem=check.problem,
        facts=facts,
        figures=figures,
    )


def render_transparency(report: TransparencyReport, fmt: ReportFormat) -> str:
    """The report as a JSON document or a self-contained HTML page (charts inline)."""
    if fmt is ReportFormat.html:
        return render_html(TRANSPARENCY_TITLE, report.figures, report.facts)
    return report.model_dump_json(indent=2) + "\n"


def _purposes(core: Visage) -> dict[str, list[str]]:
    with core.store.session() as session:
        consented = sorted({p for c in session.scalars(select(ConsentRow)) for p in c.purposes})
        keyed = sorted(
            {
                p
                for k in session.scalars(select(ApiKeyRow))
                if k.revoked_at is None
                for p in k.purposes
            }
        )
    return {"consented": consented, "authorised_for_api_keys": keyed}


def _retention(core: Visage) -> dict[str, str]:
    s = core.settings
    return {
        "match events": f"{s.retention_events_days} days",
        "review items and probe crops": f"{s.retention_reviews_days} days",
        "audit log": f"{s.retention_audit_days} days (up to a signed checkpoint)",
        "templates": "until every consent record of the subject has expired or is withdrawn",
        "bystanders": "nothing kept: embeddings live for one frame, faces are masked in output",
        "uploaded images": "not kept (only a SHA-256 in the audit log)",
    }


SAFEGUARDS = [
    "1:N only against subjects whose unexpired consent covers the stated purpose",
    "bystanders' embeddings are never stored or logged; their faces are masked in outputs",
    "templates encrypted (AES-256-GCM) under per-subject keys kept outside the database",
    "erasure destroys the subject's key (crypto-shredding) and issues a signed certificate",
    "hash-chained audit log with Ed25519-signed checkpoints, verifiable with the public key",
    "API keys bound to one role and to purposes; identify is rate-limited per key",
    "two reviewers must confirm a watchlist match before it is acted on",
    "1:N disabled until a DPIA reference (and in Morocco a CNDP authorisation) is recorded",
    "never infers race, ethnicity, religion, gender, age or emotion",
    "runs offline; models ship in packages; nothing is sent to a third party",
]


def processing_record(core: Visage) -> dict[str, Any]:
    """The record of processing activities (GDPR Art. 30(1)), filled from the settings and
    the deployment profile; fields the system cannot know are marked for the controller."""
    profile = get_profile(core)
    todo = "(to be completed by the controller)"
    return {
        "title": "Record of processing activities — face recognition (Visage)",
        "controller": profile.controller or todo,
        "data_protection_officer": profile.dpo_contact or todo,
        "purposes": _purposes(core),
        "watchlist_purposes": profile.watchlist_purposes,
        "categories_of_data_subjects": [
            "enrolled subjects who gave a consent record (or another Art. 9(2) basis)",
            "bystanders: persons in images or video who are not enrolled (processed "
            "transiently, nothing retained)",
        ],
        "categories_of_personal_data": [
            "biometric templates (128-d face embeddings, encrypted), Art. 9 special category",
            "name, consent references and purposes",
            "match events (time, purpose, score, camera)",
            "probe face crops for two-person review (watchlist purposes only)",
        ],
        "recipients": "none outside the controller; webhooks receive subject ids only"
        + (
            f" ({len(core.settings.webhook_urls)} configured)" if core.settings.webhook_urls else ""
        ),
        "third_country_transfers": "none: processing is local, models are bundled",
        "retention": _retention(core),
        "security_measures": SAFEGUARDS,
        "legal_framework": {
            "jurisdiction": profile.jurisdiction.value,
            "dpia_reference": profile.dpia_ref,
            "cndp_authorisation": profile.cndp_ref,
            "public_space": profile.public_space,
            "law_enforcement": profile.law_enforcement,
        },
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": f"visage {__version__}",
    }


def dpia_pack(core: Visage) -> dict[str, Any]:
    """The facts a DPIA (GDPR Art. 35) needs, as measured on this installation."""
    profile = get_profile(core)
    evaluation = last_evaluation(core)
    accuracy: dict[str, Any]
    if evaluation is None:
        accuracy = {
            "measured": False,
            "how": "evaluate verification on labelled pairs of representative data",
        }
    else:
        r = evaluation.report
        accuracy = {
            "measured": True,
            "measured_at": evaluation.measured_at.isoformat(timespec="seconds"),
            "dataset": evaluation.dataset,
            "model": evaluation.model,
            "pairs": r.pairs,
            "threshold": r.threshold,
            "fmr": r.fmr,
            "fnmr": r.fnmr,
            "failures_to_acquire": r.failures_to_acquire,
            "operating_points": [p.model_dump() for p in r.operating_points],
        }
    check = audit_log.verify(core)
    return {
        "title": "DPIA facts pack — face recognition (Visage)",
        "purposes": _purposes(core),
        "watchlist_purposes": profile.watchlist_purposes,
        "profile": profile.model_dump(mode="json"),
        "gates": {
            "identification_refusal": profile.identification_refusal(),
            "live_identification_refusal": profile.identification_refusal(live=True),
        },
        "threshold": {
            "value": core.threshold,
            "calibrated_default": core.settings.match_threshold is None,
            "model_id": core.model_id,
            "target_fmr": core.settings.target_fmr,
            "calibrated_on": core.calibration.fitted_on or None,
        },
        "accuracy": accuracy,
        "group_error_rates": _group_rates(core),
        "retention": _retention(core),
        "safeguards": SAFEGUARDS,
        "audit": check.model_dump(),
        "model": core.analyzer.model_fingerprint(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _group_rates(core: Visage) -> dict[str, Any]:
    """The latest per-group evaluation (``visage eval --groups``): FMR and FNMR per group
    the user labelled, at the operating threshold, and each one's ratio to the best group."""
    evaluation = last_group_evaluation(core)
    if evaluation is None or evaluation.report.groups is None:
        return {
            "measured": False,
            "how": "visage eval --pairs P --root R --groups groups.csv (labels of your choice)",
        }
    groups = evaluation.report.groups
    return {
        "measured": True,
        "measured_at": evaluation.measured_at.isoformat(timespec="seconds"),
        "dataset": evaluation.dataset,
        "model": evaluation.model,
        "threshold": groups.threshold,
        "groups": [g.model_dump(exclude={"plot"}) for g in groups.groups],
        "cross_group_pairs": groups.cross_group_pairs,
        "unlabelled_pairs": groups.unlabelled_pairs,
    }
