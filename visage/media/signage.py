"""The first-layer sign at a camera (EDPB Guidelines 3/2019 on video devices, §7): a camera
pictogram, what the camera does and why, who is responsible, and a short URL and QR code to
the full notice. Rendered as a PDF (reportlab, vector: text stays sharp at any print size)
or a PNG (Pillow), from one layout drawn on either surface.

The QR code comes from ``segno`` (a real encoder, error correction level M) and is drawn
module by module as filled squares with the four-module quiet zone the standard asks for.
Heavy libraries are imported inside the functions: the CLI imports this module lazily.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

MM = 72 / 25.4
"""Points per millimetre (the layout is in PDF points, top-left origin)."""

YELLOW = (255, 212, 0)
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
RED = (190, 0, 0)
GREY = (70, 70, 70)


class SignSize(StrEnum):
    A4 = "A4"
    A5 = "A5"

    @property
    def points(self) -> tuple[float, float]:
        return (595.28, 841.89) if self is SignSize.A4 else (419.53, 595.28)


@dataclass(frozen=True)
class SignContent:
    """What the sign says; every string already final (English, then French)."""

    place: str
    purpose: str
    recognition: bool
    watchlist: bool
    controller: str | None
    qr_data: str
    """What the QR code encodes: the notice's absolute URL (or its path on a draft)."""
    short_url: str
    draft: bool


def _font_path(bold: bool) -> str:
    import matplotlib  # DejaVu ships with it: accents and Arabic-free Latin text

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


class Surface(Protocol):
    """Top-left origin, PDF points."""

    def rect(self, x: float, y: float, w: float, h: float, fill: tuple[int, int, int]) -> None: ...
    def circle(self, cx: float, cy: float, r: float, fill: tuple[int, int, int]) -> None: ...
    def text(
        self, x: float, y: float, s: str, size: float, bold: bool, fill: tuple[int, int, int]
    ) -> None: ...
    def width(self, s: str, size: float, bold: bool) -> float: ...


class _PdfSurface:
    def __init__(self, canvas: Any, height: float) -> None:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        for name, bold in (("DejaVu", False), ("DejaVu-Bold", True)):
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, _font_path(bold)))
        self.c, self.h, self._metrics = canvas, height, pdfmetrics

    def _fill(self, rgb: tuple[int, int, int]) -> None:
        self.c.setFillColorRGB(*(v / 255 for v in rgb))

    def rect(self, x: float, y: float, w: float, h: float, fill: tuple[int, int, int]) -> None:
        self._fill(fill)
        self.c.rect(x, self.h - y - h, w, h, stroke=0, fill=1)

    def circle(self, cx: float, cy: float, r: float, fill: tuple[int, int, int]) -> None:
        self._fill(fill)
        self.c.circle(cx, self.h - cy, r, stroke=0, fill=1)

    def text(
        self, x: float, y: float, s: str, size: float, bold: bool, fill: tuple[int, int, int]
    ) -> None:
        self._fill(fill)
        self.c.setFont("DejaVu-Bold" if bold else "DejaVu", size)
        self.c.drawString(x, self.h - y - size * 0.8, s)

    def width(self, s: str, size: float, bold: bool) -> float:
        return float(self._metrics.stringWidth(s, "DejaVu-Bold" if bold else "DejaVu", size))


class _PngSurface:
    def __init__(self, image: Any, scale: float) -> None:
        from PIL import ImageDraw

        self.image, self.draw, self.k = image, ImageDraw.Draw(image), scale
        self._fonts: dict[tuple[int, bool], Any] = {}

    def _font(self, size: float, bold: bool) -> Any:
        from PIL import ImageFont

        key = (max(1, round(size * self.k)), bold)
        if key not in self._fonts:
            self._fonts[key] = ImageFont.truetype(_font_path(bold), key[0])
        return self._fonts[key]

    def rect(self, x: float, y: float, w: float, h: float, fill: tuple[int, int, int]) -> None:
        k = self.k
        box = (round(x * k), round(y * k), round((x + w) * k) - 1, round((y + h) * k) - 1)
        self.draw.rectangle(box, fill=fill)

    def circle(self, cx: float, cy: float, r: float, fill: tuple[int, int, int]) -> None:
        k = self.k
        self.draw.ellipse(((cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k), fill=fill)

    def text(
        self, x: float, y: float, s: str, size: float, bold: bool, fill: tuple[int, int, int]
    ) -> None:
        self.draw.text((x * self.k, y * self.k), s, font=self._font(size, bold), fill=fill)

    def width(self, s: str, size: float, bold: bool) -> float:
        return float(self._font(size, bold).getlength(s)) / self.k


def _wrap(surface: Surface, text: str, size: float, bold: bool, width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and surface.width(candidate, size, bold) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


def _paragraph(
    s: Surface,
    x: float,
    y: float,
    width: float,
    text: str,
    size: float,
    *,
    bold: bool = False,
    fill: tuple[int, int, int] = BLACK,
) -> float:
    """Draw wrapped ``text``; return the y below it."""
    for line in _wrap(s, text, size, bold, width):
        s.text(x, y, line, size, bold, fill)
        y += size * 1.25
    return y


def pictogram(s: Surface, x: float, y: float, size: float) -> None:
    """A surveillance camera as vector shapes (ISO 7001-like): body, lens, hood, wall mount,
    in black on the yellow band."""
    u = size / 10
    s.rect(x + 0.5 * u, y + 6.2 * u, 0.9 * u, 3.3 * u, BLACK)  # wall plate
    s.rect(x + 1.2 * u, y + 6.9 * u, 2.6 * u, 0.8 * u, BLACK)  # arm
    s.rect(x + 3.0 * u, y + 4.8 * u, 0.8 * u, 2.6 * u, BLACK)  # post
    s.rect(x + 1.8 * u, y + 2.2 * u, 6.4 * u, 2.8 * u, BLACK)  # body
    s.rect(x + 1.5 * u, y + 1.7 * u, 7.2 * u, 0.6 * u, BLACK)  # hood
    s.rect(x + 8.2 * u, y + 2.5 * u, 1.3 * u, 2.2 * u, BLACK)  # lens barrel
    s.circle(x + 8.85 * u, y + 3.6 * u, 0.55 * u, YELLOW)  # lens glass
    s.circle(x + 2.7 * u, y + 3.6 * u, 0.35 * u, YELLOW)  # status light


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR code's modules (dark = True), quiet zone included."""
    import segno

    code = segno.make_qr(data, error="m")
    return [[bool(v) for v in row] for row in code.matrix_iter(scale=1, border=4)]


def _qr(s: Surface, x: float, y: float, side: float, data: str) -> None:
    matrix = qr_matrix(data)
    m = side / len(matrix)
    s.rect(x, y, side, side, WHITE)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):  # runs of dark modules as one rectangle (smaller files)
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            s.rect(x + start * m, y + r * m, (c - start) * m, m, BLACK)


def layout(s: Surface, content: SignContent, size: SignSize) -> None:
    """Draw the sign on ``s``: yellow band with the pictogram and the headline, then the
    purpose, the bystander promise, the controller, and the QR code with its short URL."""
    w, h = size.points
    k = w / SignSize.A4.points[0]  # A5 is the A4 layout scaled down
    margin = 14 * MM * k
    s.rect(0, 0, w, h, WHITE)
    band = 62 * MM * k
    s.rect(0, 0, w, band, YELLOW)
    s.rect(0, band, w, 2.5 * MM * k, BLACK)
    pictogram(s, margin, margin * 0.6, band - margin * 1.2)
    tx = margin + band - margin * 1.2 + 6 * MM * k
    tw = w - tx - margin
    if content.recognition:
        head_en, head_fr = "Face recognition in use", "Reconnaissance faciale en service"
    else:
        head_en, head_fr = "Camera — faces blurred", "Caméra — visages floutés"
    y = _paragraph(s, tx, margin * 0.9, tw, head_en, 26 * k, bold=True)
    _paragraph(s, tx, y + 2 * k, tw, head_fr, 17 * k, bold=True, fill=GREY)

    y = band + 12 * MM * k
    x, body = margin, w - 2 * margin
    y = _paragraph(s, x, y, body, content.place, 28 * k, bold=True)
    y += 4 * k
    if content.recognition:
        what_en = (
            f"Purpose: {content.purpose}. Only people who consented to this purpose are recognised."
        )
        what_fr = (
            f"Finalité : {content.purpose}. Seules les personnes qui y ont consenti sont reconnues."
        )
    else:
        what_en = f"Purpose: {content.purpose}. No one is identified; faces are masked."
        what_fr = (
            f"Finalité : {content.purpose}. Personne n'est identifié ; les visages sont masqués."
        )
    y = _paragraph(s, x, y, body, what_en, 17 * k)
    y = _paragraph(s, x, y, body, what_fr, 14 * k, fill=GREY) + 6 * k
    if content.watchlist:
        y = _paragraph(
            s, x, y, body, "A match is acted on only after two people confirm it.", 13 * k
        )
        y = (
            _paragraph(
                s,
                x,
                y,
                body,
                "Une correspondance n'a d'effet qu'après confirmation par deux personnes.",
                11 * k,
                fill=GREY,
            )
            + 6 * k
        )
    y = _paragraph(s, x, y, body, "Bystanders are never stored.", 18 * k, bold=True)
    y = _paragraph(s, x, y, body, "Les passants ne sont jamais enregistrés.", 14 * k, fill=GREY)
    y += 14 * k
    controller = content.controller or "(controller not recorded yet)"
    y = _paragraph(s, x, y, body, f"Controller / Responsable : {controller}", 15 * k)

    side = 62 * MM * k
    qx, qy = w - margin - side, h - margin - side - 14 * k
    _qr(s, qx, qy, side, content.qr_data)
    info_w = qx - x - 8 * MM * k
    iy = qy + 6 * k
    iy = _paragraph(
        s, x, iy, info_w, "Full notice, your rights, who to contact:", 12 * k, bold=True
    )
    iy = _paragraph(
        s, x, iy, info_w, "Information complète, vos droits, qui contacter :", 11 * k, fill=GREY
    )
    _paragraph(s, x, iy + 6 * k, info_w, content.short_url, 12 * k, bold=True)
    s.text(qx, qy + side + 3 * k, "Scan / Scannez", 9 * k, False, GREY)
    if content.draft:
        s.rect(0, h - 11 * MM * k, w, 11 * MM * k, RED)
        s.text(
            margin,
            h - 8.5 * MM * k,
            "DRAFT — VISAGE_PUBLIC_URL is not set: do not put up this sign",
            11 * k,
            True,
            WHITE,
        )


def render_pdf(content: SignContent, size: SignSize = SignSize.A4) -> bytes:
    from reportlab.pdfgen import canvas

    w, h = size.points
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(w, h), invariant=True)
    c.setTitle(f"{'DRAFT ' if content.draft else ''}Camera sign — {content.place}")
    c.setAuthor(content.controller or "Visage")
    c.setCreator("Visage")
    layout(_PdfSurface(c, h), content, size)
    c.showPage()
    c.save()
    return buffer.getvalue()


def render_png(content: SignContent, size: SignSize = SignSize.A4, dpi: int = 150) -> bytes:
    from PIL import Image

    w, h = size.points
    k = dpi / 72
    image = Image.new("RGB", (round(w * k), round(h * k)), WHITE)
    layout(_PngSurface(image, k), content, size)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True, dpi=(dpi, dpi))
    return buffer.getvalue()
