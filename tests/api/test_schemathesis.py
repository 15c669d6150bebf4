"""Property-based API testing with schemathesis against the app's own OpenAPI: no 5xx and
no response that violates the schema, for every operation, called with a key of the role
that may use it (examples bounded so the suite stays fast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.api.conftest import auth
from visage.api.app import create_app
from visage.core import Visage
from visage.governance.access import Role

ROLE_OF_TAG = {
    "recognition": Role.operator,
    "subjects": Role.enroller,
    "admin": Role.admin,
    "operations": Role.admin,
    "reviews": Role.reviewer,
    "audit": Role.auditor,
    "cameras": Role.admin,
}
EXAMPLES = 25
SLOW_EXAMPLES = {
    # Each HTML report draws its charts (about 0.7 s a call): both formats are held to their
    # contract in tests/governance/test_policy.py, so a few examples suffice here.
    "/v1/reports/transparency": 5,
    # Uploads are decoded (and, where they are images, run through the models).
    "/v1/identify": 12,
    "/v1/detect": 12,
    "/metrics": 12,
}
"""Fewer examples for the operations that cost the most per call; every one is still run."""


def _auth_enforced_once(enforced: set[str]) -> Callable[[Any, Any, Any], bool | None]:
    """schemathesis's ``ignored_auth`` as its own runner applies it: a request that
    succeeded with the key is sent again without it and with a wrong one, and must then
    fail; once per operation, as enforcement is a property of the operation, not of the
    data (its pytest entry point would re-send every successful example twice)."""

    def ignored_auth_once(ctx: Any, response: Any, case: Any) -> bool | None:
        ctx.auth_enforced_operations = enforced
        return ignored_auth(ctx, response, case)  # type: ignore[no-any-return]

    return ignored_auth_once


def _checker(
    operation: Any, headers: dict[str, str], examples: int = EXAMPLES
) -> Callable[[], None]:
    enforced: set[str] = set()
    ignored_auth_once = _auth_enforced_once(enforced)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        # Every check but "schema-valid data is accepted": any bytes are a valid upload by
        # the schema, yet only real images are accepted (422 otherwise).
        case.call_and_validate(
            headers=headers,
            excluded_checks=[positive_data_acceptance, ignored_auth],
            additional_checks=[ignored_auth_once],
        )

    return check  # type: ignore[no-any-return]


def test_api_conforms_to_its_schema(api_core: Visage, keys: dict[Role, str]) -> None:
    app = create_app(api_core, identify_per_minute=100_000, watch_cameras=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        if operation.method.upper() == "PATCH" and operation.path == "/v1/profile":
            continue  # would switch 1:N off for the other operations; covered elsewhere
        role = ROLE_OF_TAG[(operation.tags or ["operations"])[0]]
        try:
            examples = SLOW_EXAMPLES.get(operation.path, EXAMPLES)
            _checker(operation, auth(keys[role]), examples)()
        except Exception as exc:
            pytest.fail(f"{operation.method.upper()} {operation.path}: {exc}")
