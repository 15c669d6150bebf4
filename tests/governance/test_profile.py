"""Deployment-profile gates on 1:N identification, in the core (so every door obeys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import make_app
from visage.core import Visage
from visage.errors import VisageError
from visage.governance.profile import DeploymentProfile, GateError, Jurisdiction
from visage.usecases.identify import identify
from visage.usecases.profile import ProfileChanges, get_profile, set_profile
from visage.usecases.verify import verify


def test_rules() -> None:
    assert DeploymentProfile().identification_refusal() is not None  # privacy by default
    assert DeploymentProfile(dpia_ref="D1").identification_refusal() is None
    morocco = DeploymentProfile(jurisdiction=Jurisdiction.MA, dpia_ref="D1")
    assert "CNDP" in (morocco.identification_refusal() or "")
    assert morocco.model_copy(update={"cndp_ref": "A-1"}).identification_refusal() is None
    police = DeploymentProfile(dpia_ref="D1", law_enforcement=True, public_space=True)
    assert police.identification_refusal() is None  # on stored images
    assert "refused" in (police.identification_refusal(live=True) or "")
    private = police.model_copy(update={"public_space": False})
    assert private.identification_refusal(live=True) is None


def test_new_install_refuses_identify_but_verifies(
    tmp_path: Path, shared_app: Visage, data: Path
) -> None:
    app = make_app(tmp_path / "h", dpia=False, models=shared_app)
    with pytest.raises(GateError, match="DPIA"):
        identify(app, data / "scenes/two_people.jpg", "door")
    # two 250x250 LFW photos of one man: the claim is that 1:1 is not gated, and the 1-2
    # megapixel portraits of people/ cost ~4x more to compare
    same = [data / f"lfw10/Colin_Powell/Colin_Powell_000{i}.jpg" for i in (1, 2)]
    assert verify(app, same[0], same[1]).same
    set_profile(app, ProfileChanges(jurisdiction=Jurisdiction.MA, dpia_ref="DPIA-9"))
    with pytest.raises(GateError, match="CNDP"):
        identify(app, data / "scenes/two_people.jpg", "door")
    set_profile(app, ProfileChanges(cndp_ref="CNDP-2026-17"))
    assert identify(app, data / "scenes/two_people.jpg", "door").faces
    set_profile(app, ProfileChanges(dpia_ref=""))
    assert get_profile(app).dpia_ref is None
    with pytest.raises(ValidationError, match="jurisdiction"):  # every door: a bad input
        ProfileChanges.model_validate({"jurisdiction": "Atlantis"})
    with pytest.raises(VisageError, match="invalid purpose"):
        set_profile(app, ProfileChanges(watchlist_purposes=["no spaces"]))
    app.close()
