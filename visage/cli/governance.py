"""Governance commands: erase, export, withdraw, audit, retention, review, report."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import JsonFlag, _core, _emit_json, _Exit, app, err, guarded, out, subject_app
from visage.cli._ids import full_id, short
from visage.cli._lazy import lazy, lazy_call
from visage.errors import VisageError

if TYPE_CHECKING:  # imported when a command runs (see visage.cli._lazy)
    from rich.table import Table

    from visage.core import Visage
    from visage.governance import access, audit, review, signing
    from visage.governance.access import Principal
    from visage.governance.review import Decision
    from visage.usecases import audit_log as audit_uc
    from visage.usecases import erase as erase_uc
    from visage.usecases import export as export_uc
    from visage.usecases import keys as keys_uc
    from visage.usecases import report as report_uc
    from visage.usecases import retention as retention_uc
    from visage.usecases import review as review_uc
    from visage.usecases import subjects as subjects_uc
else:
    Table = lazy_call("rich.table", "Table")
    access = lazy("visage.governance.access")
    audit = lazy("visage.governance.audit")
    review = lazy("visage.governance.review")
    signing = lazy("visage.governance.signing")
    audit_uc = lazy("visage.usecases.audit_log")
    erase_uc = lazy("visage.usecases.erase")
    export_uc = lazy("visage.usecases.export")
    keys_uc = lazy("visage.usecases.keys")
    report_uc = lazy("visage.usecases.report")
    retention_uc = lazy("visage.usecases.retention")
    review_uc = lazy("visage.usecases.review")
    subjects_uc = lazy("visage.usecases.subjects")

audit_app = typer.Typer(
    help="The tamper-evident audit log.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(audit_app, name="audit")
retention_app = typer.Typer(
    help="Delete what is past its retention period.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(retention_app, name="retention")
review_app = typer.Typer(
    help="Two-person review of watchlist matches (needs a reviewer API key).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(review_app, name="review")
report_app = typer.Typer(
    help="Transparency, Art. 30 and DPIA reports.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(report_app, name="report")

SubjectId = Annotated[
    str, typer.Argument(help="Subject id, or a unique prefix of it (see `visage subject list`).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Start date YYYY-MM-DD. Default: the whole log.")
]


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    except ValueError as exc:
        raise VisageError(f"--since {value!r}: expected a date as YYYY-MM-DD") from exc


@app.command()
@guarded
def erase(
    subject_id: SubjectId,
    cert_out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the signed certificate (JSON) to this file."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Erase a subject: destroy their key, delete everything, print a signed certificate."""
    core = _core()
    certificate = erase_uc.erase(core, full_id(core, "subject", subject_id))
    if cert_out is not None:
        cert_out.write_text(certificate.model_dump_json(indent=2))
    if as_json:
        _emit_json(certificate)
        return
    body = certificate.body
    out.print(
        f"erased {body.subject_id}: {body.deleted.templates} templates, "
        f"{body.deleted.events} events, {body.deleted.reviews} review items; data key "
        f"destroyed; audit entry {body.audit_seq}"
    )
    out.print(
        f"certificate signed by key {body.signing_key_id}"
        + (f", written to {cert_out}" if cert_out else "")
    )


@app.command("export")
@guarded
def export_subject(
    subject_id: SubjectId,
    zip_out: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    as_json: JsonFlag = False,
) -> None:
    """Subject access: everything held about one person, as JSON in a zip."""
    core = _core()
    summary = export_uc.export_to(core, full_id(core, "subject", subject_id), zip_out)
    if as_json:
        _emit_json(summary)
    else:
        out.print(f"wrote {summary.path}: {', '.join(summary.files)}")


@subject_app.command("withdraw")
@guarded
def subject_withdraw(
    subject_id: SubjectId,
    reference: Annotated[str, typer.Argument(help="Reference of the consent record.")],
    as_json: JsonFlag = False,
) -> None:
    """Withdraw a consent record; the templates go when no valid consent remains."""
    core = _core()
    result = subjects_uc.withdraw_consent(core, full_id(core, "subject", subject_id), reference)
    if as_json:
        _emit_json(result)
    else:
        out.print(f"withdrawn; {result.templates_deleted} templates deleted")


@audit_app.command("verify")
@guarded
def audit_verify(
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="Check against this Ed25519 public key (PEM/hex/base64, or a file holding "
            "one) instead of the fingerprint pinned at init.",
        ),
    ] = None,
    witness: Annotated[
        Path | None,
        typer.Option(
            "--witness",
            help="Also check heads saved by someone else from /public/audit-head.json (a file "
            "of JSON lines): each must be signed by the pinned key and held by the chain.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the chain, checkpoints, purge markers and witnessed head against the pinned key;
    exit 1 naming the first problem."""
    pinned = signing.parse_public_key(public_key) if public_key is not None else None
    core = _core()
    report = audit_uc.verify(core, pinned)
    if witness is not None and report.ok:
        from visage.cli.signage import check_witness_file

        check_witness_file(core, witness, report)
    if as_json:
        _emit_json(report)
    elif report.ok:
        out.print(
            f"audit log intact: {report.entries} entries "
            f"({report.first_seq}..{report.last_seq}), {report.checkpoints} checkpoints"
            + (f", witnessed head {report.witnessed_seq}" if report.witnessed_seq else "")
            + (f", entries before {report.purged_before} purged" if report.purged_before else "")
        )
        out.print(f"signing key {(report.key_fingerprint or '')[:16]}")
    else:
        where = f" at entry {report.first_bad_seq}" if report.first_bad_seq else ""
        print(f"visage: audit log BROKEN{where}: {report.problem}", file=sys.stderr)
    if report.pinned_now:
        print(
            f"visage: no signing key was pinned in this data dir; pinned "
            f"{(report.key_fingerprint or '')[:16]} now",
            file=sys.stderr,
        )
    if not report.ok:
        raise _Exit(1)


@audit_app.command("export")
@guarded
def audit_export(
    since: SinceOpt = None,
    file_out: Annotated[
        Path | None, typer.Option("--out", help="Write JSON Lines here instead of stdout.")
    ] = None,
) -> None:
    """Every entry, then every signed checkpoint, as JSON Lines."""
    lines = audit_uc.export_lines(_core(), _since(since))
    if file_out is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    n = 0
    with file_out.open("w") as fh:
        for line in lines:
            fh.write(line + "\n")
            n += 1
    err.print(f"wrote {n} lines to {file_out}")


@audit_app.command("list")
@guarded
def audit_list(
    since: SinceOpt = None,
    operation: Annotated[str | None, typer.Option("--operation", help="Only this one.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The latest entries, as a table."""
    entries = audit_uc.entries(_core(), since=_since(since), operation=operation)[-limit:]
    if as_json:
        _emit_json(entries)
        return
    table = Table(title="audit log")
    for col in ("seq", "time (UTC)", "actor", "operation", "purpose", "subject", "outcome"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            str(e.seq),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.operation,
            e.purpose or "",
            (e.subject_id or "")[:12],
            e.outcome,
        )
    out.print(table)


@audit_app.command("checkpoint")
@guarded
def audit_checkpoint(as_json: JsonFlag = False) -> None:
    """Sign the head of the chain now."""
    cp = audit_uc.checkpoint(_core())
    if as_json:
        _emit_json(cp.model_dump(mode="json") if cp else {"signed": None})
    else:
        out.print(f"signed entry {cp.seq}" if cp else "head already signed (or log empty)")


@audit_app.command("pubkey")
@guarded
def audit_pubkey() -> None:
    """Print the Ed25519 public key (PEM) that signs checkpoints and certificates."""
    sys.stdout.write(audit_uc.public_key_pem(_core()))


@retention_app.command("run")
@guarded
def retention_run(as_json: JsonFlag = False) -> None:
    """Purge events, review items, audit entries and templates past their time."""
    report = retention_uc.run(_core())
    if as_json:
        _emit_json(report)
        return
    out.print(
        f"events {report.events_deleted}, review items {report.reviews_deleted}, "
        f"templates {report.templates_deleted}, audit entries "
        f"{report.audit_entries_dropped}, orphan keys {report.orphan_keys_destroyed}"
    )


KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="File holding a reviewer API key (default: the VISAGE_API_KEY variable). Never "
        "on the command line, where `ps` would show it.",
        show_default=False,
    ),
]


def _key_from(key_file: Path | None) -> str | None:
    if key_file is not None:
        try:
            return key_file.read_text().strip() or None
        except OSError as exc:
            raise VisageError(f"--key-file {key_file}: {exc.strerror or exc}") from exc
    return os.environ.get("VISAGE_API_KEY") or None


def _reviewer(key_file: Path | None) -> tuple[Principal, Visage]:
    """The reviewer behind the key, checked by the same policy as the API's."""
    core = _core()
    who = access.authorize(keys_uc.authenticate(core, _key_from(key_file)), access.UseCase.review)
    return who, core


@review_app.command("list")
@guarded
def review_list(key_file: KeyFileOpt = None, as_json: JsonFlag = False) -> None:
    """Items waiting for your decision."""
    who, core = _reviewer(key_file)
    items = review_uc.queue(core, who)
    if as_json:
        _emit_json(items)
        return
    table = Table(title="review queue")
    for col in ("id", "purpose", "candidate", "score", "threshold", "quality", "at"):
        table.add_column(col)
    for i in items:
        table.add_row(
            short(i.id),
            i.purpose,
            f"{i.subject_name} ({short(i.subject_id)})",
            f"{i.score:.3f}",
            f"{i.threshold:.3f}",
            f"{i.quality:.2f}",
            i.created_at.strftime("%H:%M:%S"),
        )
    out.print(table)


def _decide(review_id: str, key_file: Path | None, decision: Decision, as_json: bool) -> None:
    who, core = _reviewer(key_file)
    review_id = full_id(core, "review", review_id)
    result = review_uc.decide(core, review_id, who, decision)
    if as_json:
        _emit_json(result)
    else:
        out.print(f"{review_id}: {result.status}" + (" (released)" if result.released else ""))


@review_app.command("confirm")
@guarded
def review_confirm(
    review_id: Annotated[str, typer.Argument(help="Review item id.")],
    key_file: KeyFileOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Confirm a candidate (released once a second reviewer confirms)."""
    _decide(review_id, key_file, review.Decision.confirm, as_json)


@review_app.command("reject")
@guarded
def review_reject(
    review_id: Annotated[str, typer.Argument(help="Review item id.")],
    key_file: KeyFileOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Reject a candidate: it is discarded with its probe face."""
    _decide(review_id, key_file, review.Decision.reject, as_json)


@review_app.command("outcome")
@guarded
def review_outcome(
    review_id: Annotated[str, typer.Argument(help="Review item id (from identify or watch).")],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="File holding the API key that asked (default: VISAGE_API_KEY; without "
            "either, the local user).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The identity behind a review item, once two reviewers confirmed it."""
    core = _core()
    key = _key_from(key_file)
    actor = (
        access.authorize(keys_uc.authenticate(core, key), access.UseCase.review_outcome).actor
        if key
        else audit.Actor.local()
    )
    review_id = full_id(core, "review", review_id)
    result = review_uc.outcome(core, review_id, actor)
    if as_json:
        _emit_json(result)
    else:
        out.print(
            f"{review_id}: {result.status}: {result.name} ({result.subject_id}), "
            f"score {result.score:.4f}"
        )


@report_app.command("transparency")
@guarded
def report_transparency(
    since: SinceOpt = None,
    html_out: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML report (with charts) here.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Searches per purpose, matches, reviews, erasures, purges, bystander count."""
    report = report_uc.transparency(_core(), _since(since))
    if html_out is not None:
        html_out.write_text(report_uc.render_transparency(report, report_uc.ReportFormat.html))
    if as_json:
        sys.stdout.write(report_uc.render_transparency(report, report_uc.ReportFormat.json))
        return
    f = report.figures
    out.print(
        f"{f.entries} audit entries; {sum(p.searches for p in f.purposes)} searches; "
        f"{f.erasures} erasures; {f.bystander_faces} bystander faces (count only)"
    )
    if html_out is not None:
        out.print(f"wrote {html_out}")


def _write_doc(doc: dict[str, object], file_out: Path | None) -> None:
    text = json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
    if file_out is None:
        sys.stdout.write(text)
    else:
        file_out.write_text(text)
        err.print(f"wrote {file_out}")


DocOut = Annotated[Path | None, typer.Option("--out", help="Write JSON here, not stdout.")]


@report_app.command("processing-record")
@guarded
def report_processing_record(file_out: DocOut = None, as_json: JsonFlag = True) -> None:
    """The GDPR Art. 30 record of processing, filled from settings and the profile (JSON)."""
    _write_doc(report_uc.processing_record(_core()), file_out)


@report_app.command("dpia-pack")
@guarded
def report_dpia_pack(file_out: DocOut = None, as_json: JsonFlag = True) -> None:
    """Facts for the DPIA: purposes, retention, thresholds with measured FMR/FNMR (JSON)."""
    _write_doc(report_uc.dpia_pack(_core()), file_out)
