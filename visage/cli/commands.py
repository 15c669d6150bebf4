"""Recognition, subjects, enrolment, keys, profile, demo and bench commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import (
    AuthorisationRef,
    ImageArg,
    JsonFlag,
    _core,
    _emit_json,
    _Exit,
    _print_metrics,
    _progress,
    app,
    bench_app,
    err,
    guarded,
    keys_app,
    out,
    profile_app,
    subject_app,
)
from visage.cli._ids import full_id, short
from visage.cli._input import build
from visage.cli._lazy import lazy, lazy_call
from visage.errors import VisageError
from visage.governance.roles import Role

if TYPE_CHECKING:  # use-cases are imported when a command runs (see visage.cli._lazy)
    from rich.table import Table

    from visage.core import Visage
    from visage.governance.profile import DeploymentProfile
    from visage.usecases import bench_search as bench_uc
    from visage.usecases import demo as demo_uc
    from visage.usecases import enroll as enroll_uc
    from visage.usecases import evaluate as eval_uc
    from visage.usecases import faces as faces_uc
    from visage.usecases import identify as identify_uc
    from visage.usecases import keys as keys_uc
    from visage.usecases import profile as profile_uc
    from visage.usecases import setup as setup_uc
    from visage.usecases import subjects as subjects_uc
    from visage.usecases import verify as verify_uc
else:
    Table = lazy_call("rich.table", "Table")
    bench_uc = lazy("visage.usecases.bench_search")
    demo_uc = lazy("visage.usecases.demo")
    enroll_uc = lazy("visage.usecases.enroll")
    eval_uc = lazy("visage.usecases.evaluate")
    faces_uc = lazy("visage.usecases.faces")
    identify_uc = lazy("visage.usecases.identify")
    keys_uc = lazy("visage.usecases.keys")
    profile_uc = lazy("visage.usecases.profile")
    setup_uc = lazy("visage.usecases.setup")
    subjects_uc = lazy("visage.usecases.subjects")
    verify_uc = lazy("visage.usecases.verify")


@app.command()
@guarded
def init(as_json: JsonFlag = False) -> None:
    """Create the data directory, master key and database (safe to run again)."""
    report = setup_uc.init(_core())
    if as_json:
        _emit_json(report)
        return
    state = "created" if report.created else "already initialised"
    out.print(f"Visage data directory {report.home} ({state})")
    out.print(f"  database   {report.database}")
    out.print(f"  master key {report.key_source}")
    out.print(f"  audit signing key pinned: sha256 {report.signing_key_fingerprint}")
    out.print(f"  audit witness {report.witness}")


NOT_AUDITED = "visage: no data directory: this run is not audited (run visage init to audit)"


def _unaudited_notice(core: Visage) -> Visage:
    """Say on stderr, before any work, that a command which needs no data dir (detect,
    verify) will not be audited because there is none; see Visage.audit_if_initialised."""
    if not core.initialised:
        print(NOT_AUDITED, file=sys.stderr)
    return core


@app.command()
@guarded
def detect(image: ImageArg, as_json: JsonFlag = False) -> None:
    """Find faces: box, 5 landmarks, detection score and quality. Works before `visage
    init` (then unaudited, as it says on stderr)."""
    result = faces_uc.detect(_unaudited_notice(_core()), image)
    if as_json:
        _emit_json(result)
        return
    table = Table(
        title=f"{result.image} ({result.width}x{result.height}): {len(result.faces)} face(s)"
    )
    for col in ("#", "box", "score", "quality", "face px", "sharpness", "yaw"):
        table.add_column(col)
    for i, f in enumerate(result.faces, 1):
        q = f.quality
        table.add_row(
            str(i),
            str(f.box),
            f"{f.score:.2f}",
            f"{q.score:.2f}",
            f"{q.face_px:.0f}",
            f"{q.sharpness:.0f}",
            f"{q.yaw:+.2f}",
        )
    out.print(table)


@app.command()
@guarded
def verify(image_a: ImageArg, image_b: ImageArg, as_json: JsonFlag = False) -> None:
    """1:1: is the main face of IMAGE_A the same person as that of IMAGE_B? Exit 1 if not.
    Works before `visage init` (then unaudited, as it says on stderr)."""
    result = verify_uc.verify(_unaudited_notice(_core()), image_a, image_b)
    if as_json:
        _emit_json(result)
    else:
        verdict = "[green]same person[/]" if result.same else "[red]different people[/]"
        out.print(f"{verdict} (score {result.score:.4f}, threshold {result.threshold})")
    if not result.same:
        raise _Exit(1)


@subject_app.command("add")
@guarded
def subject_add(
    name: Annotated[str, typer.Argument(help="The person's name as they gave it.")],
    consent_ref: Annotated[
        str,
        typer.Option(
            "--consent-ref",
            help="Reference of the signed consent (form id, document path). Required.",
        ),
    ],
    purpose: Annotated[
        list[str],
        typer.Option(
            "--purpose", help="Purpose consented to, e.g. access-control. Repeat for several."
        ),
    ],
    legal_basis: Annotated[
        str,
        typer.Option(
            "--legal-basis",
            help="explicit-consent, employment, vital-interests, substantial-public-interest or "
            "research.",
        ),
    ] = "explicit-consent",
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires", help="Last day the consent is valid, YYYY-MM-DD. Default: no expiry."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a consenting person with their consent record; prints the new id."""
    new = build(
        subjects_uc.NewSubject,
        {"reference": "--consent-ref", "purposes": "--purpose", "expires_on": "--expires"},
        name=name,
        consent={
            "reference": consent_ref,
            "purposes": purpose,
            "legal_basis": legal_basis,
            "expires_on": expires,
        },
    )
    created = subjects_uc.add_subject(_core(), new.name, new.consent.record())
    if as_json:
        _emit_json(created)
    else:
        out.print(created.id)


@subject_app.command("list")
@guarded
def subject_list(
    name: Annotated[
        str | None, typer.Option("--name", help="Only subjects with exactly this name.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """All subjects, their template counts and consent purposes."""
    subjects = subjects_uc.list_subjects(_core(), name)
    if as_json:
        _emit_json(subjects)
        return
    table = Table(title=f"{len(subjects)} subject(s)")
    for col in ("id", "name", "templates", "purposes", "consent valid"):
        table.add_column(col)
    for s in subjects:
        purposes = sorted({p for c in s.consents if c.valid for p in c.purposes})
        table.add_row(
            short(s.id),
            s.name,
            str(s.templates),
            ", ".join(purposes) or "-",
            "yes" if any(c.valid for c in s.consents) else "no",
        )
    out.print(table)


@subject_app.command("show")
@guarded
def subject_show(
    subject_id: Annotated[str, typer.Argument(help="Subject id.")], as_json: JsonFlag = False
) -> None:
    """One subject: consent records and template metadata (never the templates)."""
    core = _core()
    s = subjects_uc.show_subject(core, full_id(core, "subject", subject_id))
    if as_json:
        _emit_json(s)
        return
    out.print(f"[bold]{s.name}[/] ({s.id}), created {s.created_at:%Y-%m-%d %H:%M} UTC")
    consents = Table(title="consent records")
    for col in ("reference", "purposes", "legal basis", "granted", "expires", "valid"):
        consents.add_column(col)
    for c in s.consents:
        consents.add_row(
            c.reference,
            ", ".join(c.purposes),
            c.legal_basis,
            f"{c.granted_at:%Y-%m-%d}",
            str(c.expires_on or "-"),
            "yes" if c.valid else "no",
        )
    out.print(consents)
    templates = Table(title=f"{s.templates} template(s)")
    for col in ("id", "model", "quality", "created"):
        templates.add_column(col)
    for t in s.template_list:
        templates.add_row(
            short(t.id), t.model, f"{t.quality:.2f}", f"{t.created_at:%Y-%m-%d %H:%M}"
        )
    out.print(templates)


@app.command()
@guarded
def enroll(
    subject_id: Annotated[str, typer.Argument(help="Subject id from `visage subject add`.")],
    images: Annotated[
        list[Path],
        typer.Argument(help="Photos, one face each, or folders of them (their image files)."),
    ],
    as_json: JsonFlag = False,
) -> None:
    """One template per image; a folder stands for its image files (top level). Rejects,
    with the reason, an image with no face, several faces, or too low quality (exit 2 if
    any is rejected). SUBJECT_ID may be a unique prefix of the id."""
    core = _core()
    subject_id = full_id(core, "subject", subject_id)
    files = enroll_uc.images_in(images)
    if as_json:  # no progress bar: stdout is one JSON document, stderr stays quiet
        report = enroll_uc.enroll(core, subject_id, files)
        _emit_json(report)
    else:
        with _progress() as bar:
            task = bar.add_task("enrolling", total=len(files))
            report = enroll_uc.enroll(
                core, subject_id, files, progress=lambda n: bar.update(task, completed=n)
            )
        _print_verdicts(report, [str(f) for f in files])
    if report.rejected:
        raise _Exit(2)


def _print_verdicts(report: enroll_uc.EnrollReport, order: list[str]) -> None:
    """One row per file, in the order given: enrolled (template, quality) or rejected
    (reason code, reason)."""
    rows = [
        (e.image, "[green]enrolled[/]", short(e.template_id), f"{e.quality:.2f}")
        for e in report.enrolled
    ] + [(r.image, "[red]rejected[/]", r.code.value, r.reason) for r in report.rejected]
    rank = {name: i for i, name in enumerate(order)}
    table = Table(title=f"{len(report.enrolled)} enrolled, {len(report.rejected)} rejected")
    for col in ("file", "verdict", "template/code", "quality/reason"):
        table.add_column(col, overflow="fold")
    for row in sorted(rows, key=lambda r: rank.get(r[0], len(rank))):
        table.add_row(*row)
    out.print(table)


@app.command()
@guarded
def identify(
    image: ImageArg,
    purpose: Annotated[
        str,
        typer.Option(
            "--purpose",
            help="Why you search. Only subjects whose valid consent covers it can match.",
        ),
    ],
    authorisation_ref: AuthorisationRef = None,
    as_json: JsonFlag = False,
) -> None:
    """1:N: every face in IMAGE against consenting subjects. Exit 1 if nobody matched."""
    result = identify_uc.identify(_core(), image, purpose, authorisation_ref=authorisation_ref)
    if as_json:
        _emit_json(result)
    else:
        table = Table(
            title=f"{len(result.faces)} face(s), purpose {result.purpose}, "
            f"threshold {result.threshold}"
        )
        for col in ("box", "subject", "name", "score", "status"):
            table.add_column(col)
        for f in result.faces:
            if f.review_id:  # blind until two reviewers confirm: `visage review outcome`
                pending = f"pending_review {short(f.review_id)}"
                table.add_row(str(f.box), "-", "[dim]withheld[/]", "-", pending)
            elif not f.candidates:
                table.add_row(str(f.box), "-", "[dim]no match (bystander)[/]", "-", "")
            for rank, c in enumerate(f.candidates):
                status = ""
                if rank == 0 and f.status is not None:
                    status = f.status.value + (f" {short(f.review_id)}" if f.review_id else "")
                table.add_row(str(f.box), short(c.subject_id), c.name, f"{c.score:.4f}", status)
        out.print(table)
    if not any(f.status is not None for f in result.faces):
        raise _Exit(1)


@app.command("eval")
@guarded
def evaluate(
    pairs: Annotated[Path, typer.Option("--pairs", help="CSV with image_a,image_b,same.")],
    root: Annotated[Path, typer.Option("--root", help="Folder the CSV's paths are relative to.")],
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a DET curve (PNG/SVG).")
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option("--calibrate", help="Fit and store the active model's calibration."),
    ] = False,
    groups: Annotated[
        Path | None,
        typer.Option("--groups", help="CSV image,group (your labels): error rates per group."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verification accuracy, FMR, FNMR and failures to acquire on labelled pairs."""
    core = _core()
    with _progress(hidden=as_json) as bar:
        task = bar.add_task("embedding images", total=None)
        report = eval_uc.evaluate(
            core,
            pairs,
            root,
            plot,
            progress=lambda n, t: bar.update(task, completed=n, total=t),
            calibrate=calibrate,
            groups_csv=groups,
        )
    if as_json:
        _emit_json(report)
        return
    rows = [
        ("pairs", f"{report.pairs} ({report.genuine} genuine, {report.impostor} impostor)"),
        ("accuracy", f"{report.accuracy:.4f}"),
        ("fmr", f"{report.fmr:.4f}"),
        ("fnmr", f"{report.fnmr:.4f}"),
        ("threshold", f"{report.threshold}"),
        ("failures_to_acquire", str(report.failures_to_acquire)),
    ]
    rows += [
        (f"threshold @ FMR {p.target_fmr:g}", f"{p.threshold:.4f} (FNMR {p.fnmr:.4f})")
        for p in report.operating_points
    ]
    rows.append(("time", f"{report.seconds:.1f} s for {report.images} images"))
    if report.plot:
        rows.append(("DET curve", report.plot))
    if report.calibrated:
        rows.append(("calibration", f"fitted and stored for {report.model}"))
    for g in report.groups.groups if report.groups else []:
        rows.append(
            (
                f"group {g.group}",
                f"FMR {g.fmr:.4f} (x{g.fmr_ratio}) FNMR {g.fnmr:.4f} (x{g.fnmr_ratio})",
            )
        )
    _print_metrics(str(pairs), rows)


@app.command()
@guarded
def demo(
    data: Annotated[
        Path, typer.Option("--data", help="Test-data folder with people/ and scenes/.")
    ] = Path("../shared/faces"),
    as_json: JsonFlag = False,
) -> None:
    """Initialise, enrol everyone in DATA/people with a consent record, identify DATA/scenes."""
    core = _core()
    setup_uc.init(core)
    with err.status("working") as status:
        report = demo_uc.demo(core, data, step=lambda s: status.update(s))
    if as_json:
        _emit_json(report)
        return
    out.print(
        f"data directory {core.home}: {report.subjects} subjects, "
        f"{report.templates} templates (purpose '{demo_uc.DEMO_PURPOSE}')"
    )
    for r in report.rejected:
        out.print(f"[yellow]not enrolled[/] {r}")
    table = Table(title="identification in scenes/")
    for col in ("scene", "face box", "identified as", "score"):
        table.add_column(col)
    for m in report.matches:
        table.add_row(
            m.scene,
            str(m.box),
            m.name or "[dim]bystander (not stored)[/]",
            f"{m.score:.4f}" if m.score is not None else "-",
        )
    out.print(table)
    if report.anonymized_video:
        out.print(f"anonymised video (every face masked): {report.anonymized_video}")
    out.print(f"transparency report: {report.transparency_report}")
    state = "intact" if report.audit_intact else "BROKEN"
    out.print(f"audit log: {report.audit_entries} entries, {state} (visage audit verify)")


@app.command()
@guarded
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    identify_per_minute: Annotated[
        int | None,
        typer.Option(
            "--identify-per-minute",
            min=1,
            help="Rate limit of identify per API key (default: VISAGE_RATE_LIMIT_PER_MINUTE).",
        ),
    ] = None,
) -> None:
    """Run the web console and the REST API. Creates the data dir if needed; on the first
    start, prints a one-time password for the console's first admin user and a first admin
    API key, each shown once."""
    import logging

    from visage.cli._serve import cli_command, run_server
    from visage.cli.hints import hint_for
    from visage.usecases import users as users_uc
    from visage.web.app import create_server

    core = _core()
    report = setup_uc.init(core)
    admin = keys_uc.bootstrap_admin(core)
    first_password = users_uc.first_admin(core)
    out.print(f"Visage {report.home}: console on http://{host}:{port}/  (API docs: /docs)")
    if first_password is not None:
        out.print(
            "first console user: [bold]admin[/], one-time password, shown once: "
            f"[bold]{first_password}[/] (you choose your own at first sign-in)"
        )
    if admin is not None:
        out.print(f"first admin API key, shown once: [bold]{admin.key}[/]")
    cli = cli_command()  # what reaches this server's data (make run: VISAGE_HOME=.visage)
    out.print(f"the CLI on this data: {cli} --help", soft_wrap=True, markup=False)
    gate = profile_uc.get_profile(core).identification_gate()
    if gate is not None:
        hint = hint_for(gate) or ""
        fix = f" (hint: {cli} {hint.removeprefix('visage ')})" if hint.startswith("visage ") else ""
        out.print(f"note: {gate.message}{fix}", soft_wrap=True, markup=False)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_server(create_server(core, identify_per_minute=identify_per_minute), host, port)


@keys_app.command("create")
@guarded
def keys_create(
    role: Annotated[
        Role, typer.Option("--role", help="admin, enroller, operator, reviewer or auditor.")
    ],
    purpose: Annotated[
        list[str] | None,
        typer.Option(
            "--purpose", help="Purpose the key may use (operators need one). Repeat for several."
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
    owner: Annotated[
        str,
        typer.Option(
            "--owner",
            help="The person the key belongs to (required for reviewer keys: two "
            "confirmations must come from two different owners).",
        ),
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an API key. The key is printed once and cannot be shown again."""
    new = build(
        keys_uc.NewKey,
        {"purposes": "--purpose"},
        role=role,
        purposes=purpose or [],
        name=name,
        owner=owner,
    )
    created = keys_uc.create_key(_core(), new.role, new.purposes, new.name, owner=new.owner)
    if as_json:
        _emit_json(created)
    else:
        out.print(
            f"key {created.id} ({created.role}, purposes: {', '.join(created.purposes) or '-'})"
        )
        out.print(f"[bold]{created.key}[/]  <- shown once; store it now")


@keys_app.command("list")
@guarded
def keys_list(as_json: JsonFlag = False) -> None:
    """All keys (never the keys themselves): id, role, purposes, state."""
    keys = keys_uc.list_keys(_core())
    if as_json:
        _emit_json(keys)
        return
    table = Table(title=f"{len(keys)} key(s)")
    for col in ("id", "name", "owner", "role", "purposes", "created", "state"):
        table.add_column(col)
    for k in keys:
        table.add_row(
            short(k.id),
            k.name,
            k.owner,
            k.role.value,
            ", ".join(k.purposes) or "-",
            f"{k.created_at:%Y-%m-%d}",
            "revoked" if k.revoked_at else "active",
        )
    out.print(table)


@keys_app.command("revoke")
@guarded
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id from `visage keys list`.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key: it stops working at once."""
    core = _core()
    info = keys_uc.revoke_key(core, full_id(core, "key", key_id))
    if as_json:
        _emit_json(info)
    else:
        out.print(f"key {info.id} revoked")


def _yes_no(value: str | None, option: str) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("yes", "no"):
        raise VisageError(f"{option} takes yes or no, not {value!r}")
    return value.lower() == "yes"


def _print_profile(profile: DeploymentProfile) -> None:
    rows = [
        (name, str(value) if value is not None else "-")
        for name, value in profile.model_dump(mode="json").items()
    ]
    refusal = profile.identification_refusal()
    rows.append(("1:N identification", "allowed" if refusal is None else f"off: {refusal}"))
    _print_metrics("deployment profile", rows)


@profile_app.command("show")
@guarded
def profile_show(as_json: JsonFlag = False) -> None:
    """The deployment profile and whether 1:N identification is allowed."""
    profile = profile_uc.get_profile(_core())
    if as_json:
        _emit_json(profile)
    else:
        _print_profile(profile)


@profile_app.command("set")
@guarded
def profile_set(
    jurisdiction: Annotated[
        str | None,
        typer.Option(
            "--jurisdiction", help="EU, FR, MA or other. Default: unchanged (EU when new)."
        ),
    ] = None,
    dpia_ref: Annotated[
        str | None,
        typer.Option("--dpia-ref", help="DPIA reference; 1:N stays off without one. '' clears it."),
    ] = None,
    cndp_ref: Annotated[
        str | None,
        typer.Option("--cndp-ref", help="CNDP authorisation reference, required for 1:N in MA."),
    ] = None,
    public_space: Annotated[
        str | None,
        typer.Option("--public-space", help="yes if cameras see a publicly accessible space."),
    ] = None,
    law_enforcement: Annotated[
        str | None,
        typer.Option(
            "--law-enforcement", help="yes if the operator is a law-enforcement authority."
        ),
    ] = None,
    watchlist: Annotated[
        list[str] | None,
        typer.Option(
            "--watchlist",
            help="A purpose whose 1:N matches need two reviewers' confirmation (repeat for "
            "several; replaces the list; '' empties it).",
        ),
    ] = None,
    controller: Annotated[
        str | None, typer.Option("--controller", help="Data controller, for the Art. 30 record.")
    ] = None,
    dpo_contact: Annotated[
        str | None, typer.Option("--dpo-contact", help="Data protection officer's contact.")
    ] = None,
    rights_contact: Annotated[
        str | None,
        typer.Option("--rights-contact", help="Where people exercise their rights (notices)."),
    ] = None,
    supervisory_authority: Annotated[
        str | None,
        typer.Option(
            "--supervisory-authority", help="Supervisory authority, name and contact (notices)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the deployment profile; options not given stay as they are."""
    changes = build(
        profile_uc.ProfileChanges,
        {"watchlist_purposes": "--watchlist"},
        jurisdiction=jurisdiction,
        dpia_ref=dpia_ref,
        cndp_ref=cndp_ref,
        public_space=_yes_no(public_space, "--public-space"),
        law_enforcement=_yes_no(law_enforcement, "--law-enforcement"),
        watchlist_purposes=None if watchlist is None else [w for w in watchlist if w],
        controller=controller,
        dpo_contact=dpo_contact,
        rights_contact=rights_contact,
        supervisory_authority=supervisory_authority,
    )
    profile = profile_uc.set_profile(_core(), changes)
    if as_json:
        _emit_json(profile)
    else:
        _print_profile(profile)


@bench_app.command("search")
@guarded
def bench_search(
    gallery: Annotated[
        int, typer.Option("--gallery", min=1, help="Synthetic templates in the gallery.")
    ] = 100_000,
    queries: Annotated[
        int, typer.Option("--queries", min=1, help="Single-vector queries to time.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the synthetic data.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """1:N search latency and recall@1 (against exact search) on a synthetic gallery shaped
    like real embeddings (see visage.gallery.synthetic)."""
    with err.status("working") as status:
        result = bench_uc.bench_search(gallery, queries, seed, step=lambda s: status.update(s))
    if as_json:
        _emit_json(result)
        return
    title = f"1:N search, {result.gallery:,} templates, {result.queries} queries"
    rows = [
        ("index", f"{result.index} {result.params or ''}"),
        ("build", f"{result.build_s:.2f} s"),
        ("p50", f"{result.p50_ms:.3f} ms"),
        ("p99", f"{result.p99_ms:.3f} ms"),
        ("recall@1", f"{result.recall_at_1:.4f}"),
        ("exact p50", f"{result.exact_p50_ms:.3f} ms"),
        ("speed-up vs exact (p50)", f"{result.exact_p50_ms / result.p50_ms:.1f}x"),
        ("index memory", f"{result.memory_mb:.0f} MB"),
    ]
    _print_metrics(title, rows)
