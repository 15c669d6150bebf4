"""The consent filter that runs before every 1:N search, at gallery scale.

Fills a scratch data dir with N subjects (one consent each, a tenth of them for another
purpose), then times ``gallery.repository.eligibility`` — plain columns, one pass —
and the per-purpose cache in front of it (``gallery.eligibility``: one read of the consent
token while nothing changed), against the ORM way it replaced (subjects loaded as objects
with their consents, each consent checked by ``consent_in_force``), in this process.
All three must agree.

    python bench/eligibility.py [--subjects 10000] [--json]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import emit, timed
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from visage.config import Settings
from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance.consent import consent_in_force
from visage.store.schema import SubjectRow
from visage.usecases.setup import init
from visage.usecases.subjects import make_consent


def orm_eligible(app: Visage, purpose: str) -> set[str]:
    with app.store.session() as session:
        stmt = select(SubjectRow).options(selectinload(SubjectRow.consents))
        return {
            s.id
            for s in session.scalars(stmt)
            if any(
                purpose in c.purposes and consent_in_force(c.withdrawn_at, c.expires_on)
                for c in s.consents
            )
        }


def lean_eligible(app: Visage, purpose: str) -> set[str]:
    with app.store.session() as session:
        return set(repo.eligibility(session, purpose).ids)


def cached_eligible(app: Visage, purpose: str) -> frozenset[str]:
    with app.store.session() as session:
        return app.eligibility.get(session, purpose).ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        app = Visage(Settings(home=Path(home)))  # type: ignore[call-arg]
        init(app)
        with app.store.session() as session:
            for i in range(args.subjects):
                purpose = "payroll" if i % 10 == 0 else "door"
                repo.create_subject(session, app.keyring, f"p{i}", make_consent("f", [purpose]))
        assert orm_eligible(app, "door") == lean_eligible(app, "door")
        orm_s = timed(lambda: orm_eligible(app, "door"))
        lean_s = timed(lambda: lean_eligible(app, "door"))
        assert cached_eligible(app, "door") == frozenset(lean_eligible(app, "door"))
        cached_s = timed(lambda: cached_eligible(app, "door"), repeat=50)
        app.close()
    emit(
        {
            "subjects": args.subjects,
            "orm_s": round(orm_s, 4),
            "visage_s": round(lean_s, 4),
            "cached_s": round(cached_s, 6),
            "speedup": round(orm_s / lean_s, 1),
            "speedup_cached": round(orm_s / cached_s, 1),
        },
        args.json,
        [
            ("subjects", f"{args.subjects:,}"),
            ("ORM objects, consent_in_force", f"{orm_s * 1000:.1f} ms"),
            ("Visage (plain columns)", f"{lean_s * 1000:.1f} ms"),
            ("Visage, cached (token unchanged)", f"{cached_s * 1000:.2f} ms"),
            ("speed-up (scan, cached)", f"{orm_s / lean_s:.1f}x, {orm_s / cached_s:.0f}x"),
        ],
    )


if __name__ == "__main__":
    main()
