"""Camera signs (issue 17): the QR code on the PNG and on the rasterised PDF decodes, with
OpenCV's QR detector, back to the camera's notice URL; A4 and A5; a draft without
``VISAGE_PUBLIC_URL``; the CLI writes the file and refuses a bad name; the console's Sign
button downloads it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import make_app
from tests.web.conftest import add_users, sign_in
from visage.cli import app as cli_app
from visage.core import Visage
from visage.usecases import cameras
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.signage import SignFormat, SignSize, sign
from visage.web.app import create_server

PUBLIC_URL = "https://notice.example.org"
NOTICE = f"{PUBLIC_URL}/public/cameras/hall-east"


def _core(home: Path, shared_app: Visage, **settings: object) -> Visage:
    core = make_app(home, models=shared_app, **settings)
    set_profile(core, ProfileChanges(controller="Mairie de Rabat"))
    cameras.add_camera(core, "Hall_East", "rtsp://cam.local/hall", "access-control", True, None)
    return core


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Iterator[Visage]:
    made = _core(tmp_path_factory.mktemp("signs"), shared_app, public_url=PUBLIC_URL)
    yield made
    made.close()


def decode(image: np.ndarray) -> str:
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert points is not None, "no QR code found"
    return str(text)


def png_pixels(data: bytes) -> np.ndarray:
    return cv2.cvtColor(np.array(Image.open(io.BytesIO(data)).convert("RGB")), cv2.COLOR_RGB2BGR)


def pdf_pixels(data: bytes, scale: float = 2.0) -> tuple[np.ndarray, tuple[float, float]]:
    pdf = pdfium.PdfDocument(data)
    assert len(pdf) == 1
    page = pdf[0]
    size = page.get_size()
    bitmap = page.render(scale=scale).to_pil().convert("RGB")
    return cv2.cvtColor(np.array(bitmap), cv2.COLOR_RGB2BGR), size


def test_png_qr_decodes_to_the_notice_url(core: Visage) -> None:
    made = sign(core, "Hall_East", SignFormat.png)
    assert made.url == NOTICE and not made.draft
    assert decode(png_pixels(made.data)) == NOTICE


@pytest.mark.parametrize(("size", "points"), [(SignSize.A4, (595, 842)), (SignSize.A5, (420, 595))])
def test_pdf_page_size_and_qr_round_trip(
    core: Visage, size: SignSize, points: tuple[int, int]
) -> None:
    made = sign(core, "hall-east", SignFormat.pdf, size)  # the slug works as well as the name
    assert made.data.startswith(b"%PDF")
    pixels, (w, h) = pdf_pixels(made.data)
    assert (round(w), round(h)) == points
    assert decode(pixels) == NOTICE
    text = pdfium.PdfDocument(made.data)[0].get_textpage().get_text_range()
    assert "Face recognition in use" in text
    assert "Mairie de Rabat" in text and "access-control" in text
    assert "notice.example.org/public/cameras/hall-east" in text
    assert "DRAFT" not in text


def test_without_public_url_the_sign_is_a_draft(tmp_path: Path, shared_app: Visage) -> None:
    core = _core(tmp_path, shared_app)
    try:
        made = sign(core, "Hall_East", SignFormat.pdf)
        assert made.draft and made.url == "/public/cameras/hall-east"
        text = pdfium.PdfDocument(made.data)[0].get_textpage().get_text_range()
        assert "DRAFT" in text and "VISAGE_PUBLIC_URL" in text
        assert made.filename.endswith("-draft.pdf")
    finally:
        core.close()


def test_faces_blurred_when_live_recognition_is_not_allowed(
    tmp_path: Path, shared_app: Visage
) -> None:
    core = _core(tmp_path, shared_app, public_url=PUBLIC_URL)
    try:
        set_profile(core, ProfileChanges(public_space=True, law_enforcement=True))
        made = sign(core, "Hall_East", SignFormat.pdf)
        text = pdfium.PdfDocument(made.data)[0].get_textpage().get_text_range()
        assert "faces blurred" in text and "Face recognition in use" not in text
    finally:
        core.close()


def test_cli_writes_png_and_pdf_and_refuses_a_bad_name(
    core: Visage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VISAGE_HOME", str(core.home))
    monkeypatch.setenv("VISAGE_DATABASE_URL", core.settings.database_url or "")
    monkeypatch.setenv("VISAGE_PUBLIC_URL", PUBLIC_URL)
    runner = CliRunner()
    png = tmp_path / "sign.png"
    done = runner.invoke(cli_app, ["signage", "Hall_East", "--out", str(png)])
    assert done.exit_code == 0, done.output
    assert decode(cv2.imread(str(png))) == NOTICE
    pdf = tmp_path / "sign.pdf"
    done = runner.invoke(cli_app, ["signage", "Hall_East", "--out", str(pdf), "--size", "a5"])
    assert done.exit_code == 0, done.output
    assert round(pdfium.PdfDocument(pdf.read_bytes())[0].get_size()[0]) == 420
    bad = runner.invoke(cli_app, ["signage", "Hall_East", "--out", str(tmp_path / "x.svg")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    missing = runner.invoke(cli_app, ["signage", "nowhere", "--out", str(png)])
    assert missing.exit_code != 0 and "no camera notice" in missing.output


def test_console_sign_button_downloads_the_sign(core: Visage) -> None:
    add_users(core)
    camera_id = cameras.list_cameras(core)[0].id
    app = create_server(core, housekeeping=False, watch_cameras=False)
    with TestClient(app, base_url="http://testserver") as client:
        sign_in(client, "ada")
        page = client.get(f"/cameras/{camera_id}").text
        assert f"/cameras/{camera_id}/sign.pdf?size=A4" in page
        response = client.get(f"/cameras/{camera_id}/sign.png?size=A5")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert "sign-hall-east-a5.png" in response.headers["content-disposition"]
        assert decode(png_pixels(response.content)) == NOTICE
    with TestClient(app, base_url="http://testserver") as other:
        sign_in(other, "olga")  # an operator: cameras are the admins'
        assert other.get(f"/cameras/{camera_id}/sign.pdf").status_code == 403


def test_audit_verify_checks_heads_saved_from_the_public_page(
    core: Visage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from visage.usecases import audit_log, public_info

    monkeypatch.setenv("VISAGE_HOME", str(core.home))
    monkeypatch.setenv("VISAGE_DATABASE_URL", core.settings.database_url or "")
    audit_log.checkpoint(core)
    saved = tmp_path / "heads.jsonl"
    saved.write_text(public_info.audit_head(core).model_dump_json() + "\n")
    runner = CliRunner()
    done = runner.invoke(cli_app, ["audit", "verify", "--witness", str(saved)])
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert "audit log intact" in said and "1 saved heads hold" in said
    saved.write_text(saved.read_text().replace('"seq":', '"seq": 9', 1))
    broken = runner.invoke(cli_app, ["audit", "verify", "--witness", str(saved)])
    assert broken.exit_code == 1 and "BROKEN" in broken.output, broken.output
    saved.write_text("not json\n")
    bad = runner.invoke(cli_app, ["audit", "verify", "--witness", str(saved)])
    assert bad.exit_code != 0 and "line 1" in bad.output and "Traceback" not in bad.output
