"""``visage models migrate --to MODEL [--confirm]``: move the gallery to another embedder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from visage.cli._base import JsonFlag, _core, _emit_json, _progress, app, guarded, out
from visage.cli._lazy import lazy

if TYPE_CHECKING:  # imported when the command runs (see visage.cli._lazy)
    from visage.usecases import models as models_uc
else:
    models_uc = lazy("visage.usecases.models")

models_app = typer.Typer(
    help="Embedding models: move the gallery to another one without new photos.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(models_app, name="models")


@models_app.command("migrate")
@guarded
def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="dlib-resnet, sface, onnx:/path/model.onnx, or two fused: "
            "dlib-resnet+sface (A+B, or A+B@weight).",
            show_default=False,
        ),
    ],
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Switch the active model to it and delete the old model's templates.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Re-embed every subject from the reference crops kept at enrolment (resumable: the
    templates already made are skipped); the old templates stay, and searches use the
    active model, until --confirm."""
    core = _core()
    if confirm:
        report = models_uc.confirm(core, to)
    else:
        with _progress(hidden=as_json) as bar:
            task = bar.add_task(f"re-embedding for {to}", total=None)
            report = models_uc.migrate(
                core, to, progress=lambda n, t: bar.update(task, completed=n, total=t)
            )
    if as_json:
        _emit_json(report)
        return
    if report.confirmed:
        out.print(
            f"active model: {report.target} ({report.target_model}); "
            f"{report.templates_deleted} templates of other models deleted"
        )
        if report.subjects_without_template:
            out.print(
                f"[yellow]{len(report.subjects_without_template)} subjects have no template "
                "now: enrol them again[/]"
            )
        return
    out.print(
        f"{report.target_model}: {report.templates_made} templates made, "
        f"{report.templates_skipped} already made, {report.without_reference} without a "
        f"reference crop, {len(report.no_face)} with no face found, {report.no_consent} "
        "without consent in force"
    )
    out.print(f"next: visage models migrate --to {report.target} --confirm")
