"""One way to match a face for a purpose (``usecases/matching.py``), tested once for its three
callers: ``identify``, ``watch`` and ``anonymize --keep-enrolled``.

- a gate refusal is audited under the caller's operation, whichever caller asked;
- a withdrawal takes effect on the next face, also inside a run that already started;
- bystanders (not enrolled, or enrolled for another purpose only) are never returned.

Real data dirs, real images, real models; the callers' recognisers are the very callbacks
their runs hand to the video redactor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_app, open_copy
from visage.core import Visage
from visage.governance.audit import Actor
from visage.governance.profile import GateError
from visage.media.tracking import Track
from visage.usecases import anonymize as anonymize_uc
from visage.usecases import audit_log
from visage.usecases import watch as watch_uc
from visage.usecases.anonymize import anonymize
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.matching import MatchOperation, PurposeMatcher
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.subjects import add_consent, add_subject, make_consent, withdraw_consent
from visage.usecases.watch import WatchOptions, watch
from visage.vision.types import RGBImage

PURPOSE = "door"
SCENE = "scenes/obama_and_biden.jpg"
CALLERS = [op.value for op in MatchOperation]

# Given an image, every face's subject id (None: nobody) as the caller sees it.
Recogniser = Callable[[Path], list[str | None]]


def _core(tmp_path: Path, shared_app: Visage, *, dpia: bool = True) -> Visage:
    core = make_app(tmp_path / "home", dpia=dpia, models=shared_app)
    return core


@dataclass
class Enrolled:
    core: Visage
    biden: str
    obama: str


@pytest.fixture(scope="module")
def enrolled_home(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path
) -> tuple[Path, str, str]:
    """Biden consents to ``door`` (record F-door) and ``payroll`` (F-payroll), so that a
    withdrawal of ``door`` leaves his templates in the gallery; Obama to ``payroll`` only.
    The closed data dir and their ids: enrolled once per module, copied by each test."""
    home = tmp_path_factory.mktemp("matching") / "home"
    core = make_app(home, models=shared_app)
    biden = add_subject(core, "Joe Biden", make_consent("F-door", [PURPOSE])).id
    add_consent(core, biden, make_consent("F-payroll", ["payroll"]))
    obama = add_subject(core, "Barack Obama", make_consent("F-obama", ["payroll"])).id
    assert enroll(core, biden, [data / "people/joe_biden/1.jpg"]).enrolled
    assert enroll(core, obama, [data / "people/barack_obama/1.jpg"]).enrolled
    core.close()
    return home, biden, obama


@pytest.fixture()
def enrolled(
    tmp_path: Path, shared_app: Visage, enrolled_home: tuple[Path, str, str]
) -> Iterator[Enrolled]:
    """A copy of :func:`enrolled_home` of the test's own, opened."""
    home, biden, obama = enrolled_home
    core = open_copy(home, tmp_path / "home", models=shared_app)
    yield Enrolled(core, biden, obama)
    core.close()


def _recogniser(core: Visage, caller: str) -> Recogniser:
    """The caller's matching, set up once as its run does (gate checked, recogniser built)."""
    if caller == "identify":

        def by_identify(image: Path) -> list[str | None]:
            faces = identify(core, image, PURPOSE).faces
            return [f.candidates[0].subject_id if f.candidates else None for f in faces]

        return by_identify
    op = MatchOperation(caller)
    matcher = PurposeMatcher(core, PURPOSE, Actor.local(), op)
    matcher.check_gate()
    if op is MatchOperation.watch:
        recognise = watch_uc._Session(matcher, WatchOptions()).recognise
    else:
        recognise = anonymize_uc._recogniser(matcher)[0]

    def by_callback(image: Path) -> list[str | None]:
        pixels: RGBImage = core.load_image(image).pixels
        dets = core.analyzer.detector.detect(pixels, 0.5)
        found = [recognise(pixels, d, Track(i, d.box, 0, 0), dets) for i, d in enumerate(dets)]
        return [f[0] if f else None for f in found]

    return by_callback


@pytest.mark.parametrize("caller", CALLERS)
def test_a_gate_refusal_is_audited_for_every_caller(
    caller: str, tmp_path: Path, shared_app: Visage, data: Path
) -> None:
    core = _core(tmp_path, shared_app, dpia=False)  # no DPIA: 1:N is off
    photo, out = data / "people/joe_biden/1.jpg", tmp_path / "out.jpg"
    run: dict[str, Callable[[], object]] = {
        "identify": lambda: identify(core, photo, PURPOSE),
        "watch": lambda: watch(core, str(data / "video/hamilton_clip.mp4"), PURPOSE),
        "anonymize": lambda: anonymize(core, photo, out, keep_enrolled=True, purpose=PURPOSE),
    }
    with pytest.raises(GateError) as refused:
        run[caller]()
    entry = audit_log.entries(core, operation=caller)[-1]
    assert entry.outcome == "refused" and entry.purpose == PURPOSE
    assert entry.details["reason"] == refused.value.message
    assert not out.exists()  # anonymize wrote nothing


@pytest.mark.parametrize("caller", ["watch", "anonymize"])
def test_recordings_need_the_authorisation_too(
    caller: str, tmp_path: Path, shared_app: Visage, data: Path
) -> None:
    """A law-enforcement operator in a public space searching a recording is post-remote
    identification as much as a still image: the same reference is required and audited."""
    core = _core(tmp_path, shared_app)
    set_profile(core, ProfileChanges(law_enforcement=True, public_space=True))
    photo, out = data / "people/joe_biden/1.jpg", tmp_path / "out.jpg"
    with pytest.raises(GateError):
        if caller == "watch":
            watch(core, str(photo), PURPOSE)
        else:
            anonymize(core, photo, out, keep_enrolled=True, purpose=PURPOSE)
    assert audit_log.entries(core, operation=caller)[-1].outcome == "refused"
    if caller == "anonymize":
        anonymize(core, photo, out, keep_enrolled=True, purpose=PURPOSE, authorisation_ref="W-9")
        done = audit_log.entries(core, operation=caller)[-1]
        assert done.outcome == "ok" and done.details["authorisation_ref"] == "W-9"


@pytest.mark.parametrize("caller", CALLERS)
def test_a_withdrawal_takes_effect_on_the_next_face(
    caller: str, enrolled: Enrolled, data: Path
) -> None:
    photo = data / "people/joe_biden/1.jpg"
    recognise = _recogniser(enrolled.core, caller)  # the run starts before the withdrawal
    assert recognise(photo) == [enrolled.biden]
    # The templates stay (payroll is still consented): only the eligible set changes.
    assert withdraw_consent(enrolled.core, enrolled.biden, "F-door").templates_deleted == 0
    assert recognise(photo) == [None]


@pytest.mark.parametrize("caller", CALLERS)
def test_bystanders_are_never_returned(caller: str, enrolled: Enrolled, data: Path) -> None:
    """Obama is enrolled, but for another purpose: to a ``door`` search he is a bystander,
    like anyone not enrolled at all."""
    recognise = _recogniser(enrolled.core, caller)
    found = recognise(data / SCENE)
    assert found.count(enrolled.biden) == 1 and enrolled.obama not in found
    assert set(found) == {enrolled.biden, None}
    assert recognise(data / "people/kit_harington/1.jpg") == [None]


def test_the_matcher_refuses_to_match_before_its_gate(enrolled: Enrolled) -> None:
    matcher = PurposeMatcher(enrolled.core, PURPOSE, Actor.local(), MatchOperation.identify)
    with pytest.raises(RuntimeError):
        matcher.eligible()
