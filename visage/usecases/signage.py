"""Signs for the cameras: the content comes from the camera's public notice
(:mod:`visage.usecases.public_info`), the drawing from :mod:`visage.media.signage`. Every door
(the CLI's ``visage signage``, the console's Sign button) calls :func:`sign`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from visage.core import Visage
from visage.media.signage import SignContent, SignSize, render_pdf, render_png
from visage.usecases.profile import get_profile
from visage.usecases.public_info import CameraNotice, find_camera, notice_path, notice_url

__all__ = ["Sign", "SignFormat", "SignSize", "sign", "sign_content"]


class SignFormat(StrEnum):
    pdf = "pdf"
    png = "png"

    @property
    def media_type(self) -> str:
        return "application/pdf" if self is SignFormat.pdf else "image/png"


class Sign(BaseModel):
    camera: str
    slug: str
    url: str
    """What the QR code holds: the notice's URL (its path alone on a draft)."""
    draft: bool
    format: SignFormat
    size: SignSize
    data: bytes

    @property
    def filename(self) -> str:
        draft = "-draft" if self.draft else ""
        return f"sign-{self.slug}-{self.size.value.lower()}{draft}.{self.format.value}"


def sign_content(core: Visage, camera: CameraNotice) -> SignContent:
    url = notice_url(core, camera.slug)
    path = notice_path(camera.slug)
    return SignContent(
        place=camera.place,
        purpose=camera.purpose,
        recognition=camera.recognition,
        watchlist=camera.watchlist,
        controller=get_profile(core).controller,
        qr_data=url or path,
        short_url=(url or path).split("://", 1)[-1],
        draft=url is None,
    )


def sign(
    core: Visage,
    camera: str,
    fmt: SignFormat = SignFormat.pdf,
    size: SignSize = SignSize.A4,
) -> Sign:
    """The sign of ``camera`` (its name or its slug): a draft while ``VISAGE_PUBLIC_URL`` is
    unset, since its QR code cannot point anywhere yet."""
    notice = find_camera(core, camera)
    content = sign_content(core, notice)
    render = render_pdf if fmt is SignFormat.pdf else render_png
    return Sign(
        camera=notice.place,
        slug=notice.slug,
        url=content.qr_data,
        draft=content.draft,
        format=fmt,
        size=size,
        data=render(content, size),
    )
