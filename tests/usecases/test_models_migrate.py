"""Moving a gallery to SFace, or to the fusion of dlib's ResNet and SFace, without new photos
(issue 16): the people/ gallery enrolled with dlib's ResNet is re-embedded from its sealed
reference crops, then scenes/ are identified with the new model; before the migration, SFace
finds nobody (one model per search, no error)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.cli_runner import run
from tests.conftest import DATA, PEOPLE_PURPOSE, make_app
from tests.pg import copy_database, database_url_of
from tests.usecases.test_enroll_identify import SCENES
from visage.config import Settings
from visage.core import Visage
from visage.errors import InputError
from visage.gallery.matching import DLIB_SFACE
from visage.governance import audit
from visage.store.schema import TemplateRow
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.models import confirm, migrate, pending
from visage.usecases.subjects import add_subject, make_consent
from visage.vision.embedders import SFACE_ID, model_id_of
from visage.vision.pipeline import FaceAnalyzer, PipelineOptions
from visage.vision.spec import DLIB_ID


def _core(home: Path, models: Visage, **settings: object) -> Visage:
    """A core on ``home`` that shares the session's detector and aligner."""
    core = Visage(Settings(home=home, database_url=database_url_of(home), **settings))  # type: ignore[arg-type]
    analyzer = FaceAnalyzer(PipelineOptions(embedder=core.embedder))
    analyzer.detector, analyzer.aligner = models.analyzer.detector, models.analyzer.aligner
    core._analyzer = analyzer
    return core


def _counts(core: Visage) -> dict[str, int]:
    with core.store.session() as session:
        stmt = select(TemplateRow.model_id, func.count()).group_by(TemplateRow.model_id)
        return {model: n for model, n in session.execute(stmt)}


@pytest.fixture(scope="module")
def people_home(tmp_path_factory: pytest.TempPathFactory, shared_app: Visage) -> Path:
    """people/ enrolled with dlib's ResNet (the default), closed: enrolled once per module
    (the costly part), each test migrates its own copy (:func:`dlib_home`)."""
    home = tmp_path_factory.mktemp("people") / "home"
    app = make_app(home, models=shared_app)
    for folder in sorted(p for p in (DATA / "people").iterdir() if p.is_dir()):
        subject = add_subject(app, folder.name, make_consent(f"f-{folder.name}", [PEOPLE_PURPOSE]))
        assert enroll(app, subject.id, sorted(folder.iterdir())).enrolled
    app.close()
    return home


@pytest.fixture()
def dlib_home(tmp_path: Path, people_home: Path) -> Iterator[Path]:
    """A copy of :func:`people_home` of the test's own (its database too on PostgreSQL
    runs), at ``tmp_path / "home"``, where the CLI of this test finds its store."""
    home = tmp_path / "home"
    shutil.copytree(people_home, home)
    copy_database(people_home, home)
    yield home


def test_migrate_people_to_sface_then_identify_scenes(dlib_home: Path, shared_app: Visage) -> None:
    sface = _core(dlib_home, shared_app, embedder="sface")
    try:
        assert sface.model_id == SFACE_ID
        # A model change never mixes spaces: SFace has no templates yet, so nobody is found.
        before = identify(sface, DATA / "scenes/two_people.jpg", PEOPLE_PURPOSE)
        assert before.faces and not any(f.candidates for f in before.faces)

        dlib_templates = _counts(sface)[DLIB_ID]
        seen: list[tuple[int, int]] = []
        report = migrate(sface, "sface", progress=lambda n, t: seen.append((n, t)))
        assert report.target_model == SFACE_ID
        assert report.templates_made + len(report.no_face) == dlib_templates
        assert len(report.no_face) <= 1  # a face is found again in (nearly) every crop
        assert seen[-1] == (dlib_templates, dlib_templates)
        assert _counts(sface) == {DLIB_ID: dlib_templates, SFACE_ID: report.templates_made}

        # Resumable: a second run makes nothing new.
        again = migrate(sface, "sface")
        assert again.templates_made == 0
        assert again.templates_skipped + len(again.no_face) == dlib_templates

        for scene, people in SCENES.items():
            result = identify(sface, DATA / "scenes" / scene, PEOPLE_PURPOSE)
            named = [f.candidates[0].name for f in result.faces if f.candidates]
            assert sorted(named) == sorted(people), scene

        done = confirm(sface, "sface")
        assert done.confirmed and done.templates_deleted == dlib_templates
        assert _counts(sface) == {SFACE_ID: report.templates_made}
        with sface.store.session() as session:
            ops = [e.operation for e in audit.entries(session)]
        assert ops.count("model.migrate") == 3  # two runs and the confirmation
    finally:
        sface.close()

    # With no setting, the data dir's active model is now SFace.
    reopened = _core(dlib_home, shared_app)
    try:
        assert reopened.embedder == "sface" and reopened.model_id == SFACE_ID
        result = identify(reopened, DATA / "scenes/kit_with_rose.jpg", PEOPLE_PURPOSE)
        named = sorted(f.candidates[0].name for f in result.faces if f.candidates)
        assert named == sorted(SCENES["kit_with_rose.jpg"])
    finally:
        reopened.close()


def test_migrate_people_to_fusion_then_identify_scenes(dlib_home: Path, shared_app: Visage) -> None:
    """The fused model is a model like any other: migrated to from the crops (each part fed
    its own alignment), resumable per subject, identifies scenes/, and its threshold is its
    built-in calibration's for the FMR target."""
    fused = _core(dlib_home, shared_app, embedder="dlib-resnet+sface")
    fused_id = model_id_of("dlib-resnet+sface")
    assert fused_id == DLIB_SFACE.model_id == f"{DLIB_ID}+{SFACE_ID}@0.13"
    try:
        assert fused.model_id == fused_id
        dlib_templates = _counts(fused)[DLIB_ID]
        report = migrate(fused, "dlib-resnet+sface")
        assert report.templates_made + len(report.no_face) == dlib_templates
        assert len(report.no_face) <= 1
        assert _counts(fused)[fused_id] == report.templates_made

        # Progress is the templates table: take one subject's fused templates away and only
        # that subject is migrated again.
        with fused.store.session() as session:
            left = pending(session, fused_id)  # a subject whose crops all show no face
            assert sum(len(ids) for ids in left.values()) <= len(report.no_face)
            victim = session.scalars(
                select(TemplateRow).where(TemplateRow.model_id == fused_id)
            ).first()
            assert victim is not None
            lost = [t for t in victim.subject.templates if t.model_id == fused_id]
            for t in lost:
                session.delete(t)
        again = migrate(fused, "dlib-resnet+sface")
        assert again.templates_made == len(lost)
        assert _counts(fused)[fused_id] == report.templates_made

        for scene, people in SCENES.items():
            result = identify(fused, DATA / "scenes" / scene, PEOPLE_PURPOSE)
            named = [f.candidates[0].name for f in result.faces if f.candidates]
            assert sorted(named) == sorted(people), scene
        assert confirm(fused, "dlib-resnet+sface").templates_deleted == dlib_templates
    finally:
        fused.close()

    reopened = _core(dlib_home, shared_app, target_fmr=1e-2)
    try:
        assert reopened.embedder == "dlib-resnet+sface" and reopened.model_id == fused_id
        assert reopened.threshold == DLIB_SFACE.threshold_for(1e-2)
    finally:
        reopened.close()


def test_confirm_is_refused_before_migrating(dlib_home: Path, shared_app: Visage) -> None:
    core = _core(dlib_home, shared_app)
    try:
        with pytest.raises(InputError, match="not migrated yet"):
            confirm(core, "sface")
        with pytest.raises(InputError, match="embedder must be"):
            migrate(core, "arcface-from-nowhere")
        assert set(_counts(core)) == {DLIB_ID}  # nothing changed
    finally:
        core.close()


def test_models_migrate_cli(dlib_home: Path) -> None:
    """The door: migrate, then confirm, each one JSON document; a bad model name is one
    clear line, no traceback."""
    first = run(dlib_home, "models", "migrate", "--to", "sface", "--json")
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["target_model"] == SFACE_ID and made["templates_made"] > 0
    done = run(dlib_home, "models", "migrate", "--to", "sface", "--confirm", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["templates_deleted"] == made["source_templates"]
    bad = run(dlib_home, "models", "migrate", "--to", "nonsense")
    assert bad.returncode != 0 and "embedder must be" in bad.stderr
    assert "Traceback" not in bad.stderr
