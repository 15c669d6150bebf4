"""Calibration and per-group error rates (issue 16) on lfw10.

The groups are labels the user chose: here "A" for the first five people's folders and "B"
for the other five — arbitrary, never a demographic label (Visage never infers one). One
evaluation run serves every assertion (embedding 100 images costs half a minute)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import DATA
from visage.core import Visage
from visage.errors import InputError
from visage.gallery.matching import DEFAULT_THRESHOLD, calibration_key
from visage.store.meta import get_meta
from visage.usecases.evaluate import EvalReport, evaluate, last_group_evaluation, read_groups
from visage.usecases.limits import operating_point
from visage.usecases.report import dpia_pack

LFW = DATA / "lfw10"


def write_groups(path: Path) -> dict[str, str]:
    people = sorted(p.name for p in LFW.iterdir() if p.is_dir())
    labels = {
        f"{person}/{image.name}": ("A" if i < 5 else "B")
        for i, person in enumerate(people)
        for image in sorted((LFW / person).glob("*.jpg"))
    }
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "group"])
        writer.writerows(sorted(labels.items()))
    return labels


@pytest.fixture(scope="module")
def calibrated(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage
) -> tuple[Visage, EvalReport, Path]:
    from tests.conftest import make_app

    folder = tmp_path_factory.mktemp("groups")
    app = make_app(folder / "home", models=shared_app)
    assert app.threshold == DEFAULT_THRESHOLD  # nothing calibrated: today's behaviour
    groups = folder / "groups.csv"
    write_groups(groups)
    plot = folder / "det.png"
    report = evaluate(app, LFW / "pairs.csv", LFW, plot, calibrate=True, groups_csv=groups)
    return app, report, plot


def test_groups_report_rates_per_group(calibrated: tuple[Visage, EvalReport, Path]) -> None:
    _, report, plot = calibrated
    groups = report.groups
    assert groups is not None and plot.is_file()
    assert [g.group for g in groups.groups] == ["A", "B"]
    # Pairs within a group: 5 people x 45 genuine pairs; 50 x 49 / 2 - 225 impostor pairs.
    for g in groups.groups:
        assert (g.genuine, g.impostor) == (225, 1000)
        assert 0.0 <= g.fmr <= 1.0 and 0.0 <= g.fnmr <= 1.0
        assert g.plot is not None and Path(g.plot).read_bytes()[:4] == b"\x89PNG"
    assert groups.cross_group_pairs == 4950 - 2 * 1225
    assert groups.unlabelled_pairs == 0
    assert groups.threshold == report.threshold
    # The best group's ratio is 1 (or both are 0); every ratio is at least 1.
    fnmr_ratios = [g.fnmr_ratio for g in groups.groups]
    assert 1.0 in fnmr_ratios or all(g.fnmr == 0 for g in groups.groups)
    assert all(r is None or r >= 1.0 for r in fnmr_ratios)
    # The whole: the groups' genuine non-matches add up to the overall ones.
    overall = round(report.fnmr * report.genuine)
    assert sum(round(g.fnmr * g.genuine) for g in groups.groups) == overall


def test_dpia_pack_carries_the_group_table(calibrated: tuple[Visage, EvalReport, Path]) -> None:
    app, report, _ = calibrated
    stored = last_group_evaluation(app)
    assert stored is not None and stored.report.groups == report.groups
    pack = dpia_pack(app)
    table = pack["group_error_rates"]
    assert table["measured"] is True
    assert [g["group"] for g in table["groups"]] == ["A", "B"]
    assert {"fmr", "fnmr", "fmr_ratio", "fnmr_ratio"} <= set(table["groups"][0])
    assert pack["threshold"]["model_id"] == app.model_id
    assert pack["threshold"]["target_fmr"] == 1e-3


def test_calibration_sets_the_threshold_by_fmr(calibrated: tuple[Visage, EvalReport, Path]) -> None:
    app, report, _ = calibrated
    with app.store.session() as session:
        assert get_meta(session, calibration_key(app.model_id)) is not None
    calibration = app.calibration
    assert calibration.fitted_on.endswith("pairs.csv") and calibration.genuine == 450
    assert [r.target_fmr for r in calibration.table] == [1e-2, 1e-3, 1e-4]
    row = next(r for r in calibration.table if r.target_fmr == 1e-3)
    # The threshold now comes from the FMR target, and meets it on the calibration pairs.
    assert app.threshold == row.threshold == report.threshold
    assert report.fmr <= 1e-3 and report.calibrated
    assert report.fnmr <= 0.05
    # The fit is dlib's built-in one, refitted: the same order of slope.
    assert 100 < calibration.slope < 500
    # Every screen cites the measured rates at that threshold.
    point = operating_point(app)
    assert point.measured and point.threshold == app.threshold
    assert (point.fmr, point.fnmr) == (report.fmr, report.fnmr)


def test_group_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "g.csv"
    bad.write_text("path,label\na.jpg,A\n")
    with pytest.raises(InputError, match="image,group"):
        read_groups(bad, tmp_path)
    bad.write_text("image,group\na.jpg,\n")
    with pytest.raises(InputError, match="must not be empty"):
        read_groups(bad, tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_groups(tmp_path / "absent.csv", tmp_path)


def test_calibrate_needs_a_data_dir(tmp_path: Path, shared_app: Visage) -> None:
    from visage.config import Settings

    bare = Visage(Settings(home=tmp_path / "none"))
    with pytest.raises(InputError, match="visage init"):
        evaluate(bare, LFW / "pairs.csv", LFW, calibrate=True)
    assert not (tmp_path / "none").exists()
