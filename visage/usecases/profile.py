"""Read and change the deployment profile (kept in the store's meta table)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from visage.app import Visage
from visage.errors import VisageError
from visage.governance.audit import Actor
from visage.governance.audit_ops import ProfileSetAudit
from visage.governance.profile import DeploymentProfile
from visage.store.meta import get_meta, put_meta

PROFILE_KEY = "deployment_profile"


def get_profile(app: Visage) -> DeploymentProfile:
    with app.store.session() as session:
        value = get_meta(session, PROFILE_KEY)
    return DeploymentProfile() if value is None else DeploymentProfile.model_validate_json(value)


def set_profile(app: Visage, actor: Actor | None = None, **changes: Any) -> DeploymentProfile:
    """Apply the given fields (None = leave as is; empty string clears a reference)."""
    current = get_profile(app).model_dump()
    for key, value in changes.items():
        if value is None:
            continue
        current[key] = value if value != "" else None
    try:
        profile = DeploymentProfile.model_validate(current)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise VisageError(
            f"invalid profile: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from exc
    with app.store.session() as session:
        put_meta(session, PROFILE_KEY, profile.model_dump_json().encode())
        app.audit(
            session,
            actor or Actor.local(),
            ProfileSetAudit(
                changed=sorted(k for k, v in changes.items() if v is not None),
                profile=profile.model_dump(mode="json"),
            ),
        )
    return profile
