"""Media commands: anonymise images and videos, watch cameras and streams."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from visage.cli._base import JsonFlag, _core, _emit_json, app, err, guarded, out
from visage.media.blur import BlurMode, MaskShape
from visage.media.redact import RedactOptions
from visage.usecases import anonymize as anonymize_uc


def _frame_progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]} fps"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


@app.command()
@guarded
def anonymize(
    source: Annotated[Path, typer.Argument(help="Image or video file (mp4, mkv, webm, avi).")],
    output: Annotated[Path, typer.Argument(help="Where to write; the type follows the suffix.")],
    mode: Annotated[
        BlurMode, typer.Option("--mode", help="gaussian (default), pixelate or solid.")
    ] = BlurMode.gaussian,
    shape: Annotated[
        MaskShape, typer.Option("--shape", help="ellipse (default) or box.")
    ] = MaskShape.ellipse,
    margin: Annotated[
        float, typer.Option("--margin", help="Grow each face box by this fraction per side.")
    ] = 0.2,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            help="Detector score threshold; lower masks more (and more false positives).",
        ),
    ] = 0.25,
    keep_enrolled: Annotated[
        bool,
        typer.Option(
            "--keep-enrolled",
            help="Leave enrolled people visible whose consent covers --purpose; mask all others.",
        ),
    ] = False,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Purpose for --keep-enrolled.")
    ] = None,
    codec: Annotated[
        str | None,
        typer.Option("--codec", help="Video codec: libx264 (mp4/mkv/avi), libvpx-vp9 (webm)."),
    ] = None,
    crf: Annotated[
        int, typer.Option("--crf", help="Video quality: lower is better and larger (0-51).")
    ] = 23,
    as_json: JsonFlag = False,
) -> None:
    """Mask every face (irreversibly) in an image or a video; audio is kept."""
    options = RedactOptions(threshold=threshold, mode=mode, shape=shape, margin=margin)
    with _frame_progress() as bar:
        task = bar.add_task("anonymising", total=None, fps="-")

        def progress(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            fps = f"{done / elapsed:.1f}" if elapsed else "-"
            bar.update(task, completed=done, total=total or None, fps=fps)

        report = anonymize_uc.anonymize(
            _core(),
            source,
            output,
            options=options,
            keep_enrolled=keep_enrolled,
            purpose=purpose,
            codec=codec,
            crf=crf,
            progress=progress,
        )
    if as_json:
        _emit_json(report)
    else:
        out.print(
            f"wrote {report.output}: {report.frames} frame(s), {report.faces_masked} face "
            f"regions masked, {report.kept_visible} kept visible, {report.fps} fps"
        )
