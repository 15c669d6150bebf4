"""Server render time of the web console at gallery scale.

Fills a scratch data dir with N subjects (default 10,000; one consent each, names sealed
per subject as always), enrols one real person for a watchlist and makes one pending review
from a real search of ``../shared/faces/scenes/two_people.jpg``; then times, in this
process, through FastAPI's in-process client (no network), each page a person opens:

- the subjects list (page 1, a page deep in the list, an exact-name search);
- one subject's page;
- the review page (step 1: probe and reference crops, blind).

Baselines in the same run: the API's ``GET /v1/subjects`` (every subject as JSON: what a
script would fetch to page through the gallery without the console) and ``/healthz`` (the
framework's floor). The issue's target: under 100 ms per console page at 10,000 subjects.

    python bench/console.py [--subjects 10000] [--json]
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from _common import data_dir, emit, timed
from fastapi.testclient import TestClient

from visage.config import Settings
from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance.access import Principal, Role
from visage.governance.audit import Actor
from visage.usecases import keys as keys_uc
from visage.usecases import users as users_uc
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.setup import init
from visage.usecases.subjects import add_subject, make_consent
from visage.web.app import create_server

PASSWORD = "bench password 2026"
WATCHLIST = "watchlist"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def signed_in(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = CSRF.search(client.get("/sign-in").text)
    assert token
    response = client.post(
        "/sign-in",
        data={"username": name, "password": PASSWORD, "csrf": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def populate(core: Visage, n: int) -> None:
    with core.store.session() as session:
        for i in range(n):
            repo.create_subject(
                session, core.keyring, f"Person {i:05d}", make_consent("f", ["door"])
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    data = data_dir()
    with tempfile.TemporaryDirectory() as home:
        core = Visage(Settings(home=Path(home)))  # type: ignore[call-arg]
        init(core)
        set_profile(core, ProfileChanges(dpia_ref="DPIA-BENCH", watchlist_purposes=[WATCHLIST]))
        populate(core, args.subjects)
        for name, role, purposes in (
            ("enzo", Role.enroller, []),
            ("rita", Role.reviewer, []),
            ("wanda", Role.operator, [WATCHLIST]),
        ):
            new = users_uc.NewUser(name=name, role=role, purposes=purposes)
            users_uc.add_user(core, new, PASSWORD, Actor.local())
        sid = add_subject(core, "Joe Biden", make_consent("W-1", [WATCHLIST])).id
        enroll(core, sid, [data / "people/joe_biden/1.jpg", data / "people/joe_biden/2.jpg"])
        asker = Principal(
            key_id="wanda", role=Role.operator, purposes=(WATCHLIST,), owner="wanda", kind="user"
        )
        identify(core, data / "scenes/two_people.jpg", WATCHLIST, asker.actor)
        api_key = keys_uc.create_key(core, Role.enroller, []).key

        app = create_server(core, housekeeping=False, watch_cameras=False)
        enroller, reviewer = signed_in(app, "enzo"), signed_in(app, "rita")
        api = TestClient(app)
        deep = max(1, args.subjects // 50 // 2)

        def get(client: TestClient, path: str, **kw: object) -> None:
            response = client.get(path, **kw)  # type: ignore[arg-type]
            assert response.status_code == 200, (path, response.status_code)

        review_page = reviewer.get("/reviews").text
        assert "probe.jpg" in review_page and "Joe Biden" not in review_page
        times = {
            "subjects_page_1": timed(lambda: get(enroller, "/subjects")),
            "subjects_page_deep": timed(lambda: get(enroller, f"/subjects?page={deep}")),
            "subjects_search": timed(lambda: get(enroller, "/subjects?q=Person+04242")),
            "subject_page": timed(lambda: get(enroller, f"/subjects/{sid}")),
            "review_page": timed(lambda: get(reviewer, "/reviews")),
            "api_all_subjects_json": timed(
                lambda: get(api, "/v1/subjects", headers={"X-API-Key": api_key}), repeat=3
            ),
            "healthz": timed(lambda: get(api, "/healthz"), repeat=20),
        }
        for client in (enroller, reviewer, api):
            client.close()
        core.close()
    ms = {k: round(v * 1000, 2) for k, v in times.items()}
    worst = max(v for k, v in ms.items() if k.startswith(("subject", "review")))
    emit(
        {
            "subjects": args.subjects,
            "ms": ms,
            "worst_console_ms": worst,
            "under_100ms": worst < 100,
        },
        args.json,
        [
            ("subjects", f"{args.subjects:,}"),
            ("subjects list, page 1", f"{ms['subjects_page_1']:.1f} ms"),
            (f"subjects list, page {deep}", f"{ms['subjects_page_deep']:.1f} ms"),
            ("subjects list, name search", f"{ms['subjects_search']:.1f} ms"),
            ("one subject's page", f"{ms['subject_page']:.1f} ms"),
            ("review page (step 1)", f"{ms['review_page']:.1f} ms"),
            ("baseline: API, all subjects as JSON", f"{ms['api_all_subjects_json']:.1f} ms"),
            ("baseline: /healthz", f"{ms['healthz']:.2f} ms"),
            (
                "API all-subjects / console page 1",
                f"{ms['api_all_subjects_json'] / ms['subjects_page_1']:.0f}x",
            ),
            ("worst console page (target < 100 ms)", f"{worst:.1f} ms"),
        ],
    )


if __name__ == "__main__":
    main()
