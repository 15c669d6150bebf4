"""The Reviews screen: blind first, a reason for every decision, two different people,
nobody else's decision shown — over real HTTP, on watchlist candidates from a real search
of ../shared/faces."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import make_app
from tests.web.conftest import PASSWORD, WATCHLIST, add_users, csrf_of, sign_in
from visage.core import Visage
from visage.governance.access import Principal, Role
from visage.governance.review import ReviewConflictError
from visage.store.schema import AuditEntryRow, ReviewRow
from visage.usecases import review as review_uc
from visage.usecases import users as users_uc
from visage.usecases.enroll import enroll
from visage.usecases.identify import identify
from visage.usecases.profile import ProfileChanges, set_profile
from visage.usecases.subjects import add_subject, make_consent
from visage.web.app import create_server

NAME = "Joe Biden"
SCENE = "scenes/two_people.jpg"
ASKER = Principal(
    key_id="wanda", role=Role.operator, purposes=(WATCHLIST,), owner="wanda", kind="user"
)
"""The operator who runs the watchlist search (a console user bound to ``watchlist``)."""


@dataclass
class World:
    core: Visage
    app: Any
    data: Path
    subject_id: str
    clients: dict[str, TestClient]

    def client(self, name: str) -> TestClient:
        """A client signed in as ``name`` (one per user for the whole module)."""
        if name not in self.clients:
            self.clients[name] = sign_in(TestClient(self.app, base_url="http://testserver"), name)
        return self.clients[name]

    def ask(self) -> str:
        """The operator's watchlist search of a real scene: one new pending review item."""
        result = identify(self.core, self.data / SCENE, WATCHLIST, ASKER.actor)
        ids = [f.review_id for f in result.faces if f.review_id]
        assert len(ids) == 1, result
        return str(ids[0])


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, shared_app: Visage, data: Path
) -> Iterator[World]:
    core = make_app(tmp_path_factory.mktemp("reviews"), models=shared_app)
    set_profile(core, ProfileChanges(watchlist_purposes=[WATCHLIST]))
    add_users(core)
    users_uc.add_user(
        core,
        users_uc.NewUser(name="wanda", role=Role.operator, purposes=[WATCHLIST]),
        PASSWORD,
        ASKER.actor,
    )
    sid = add_subject(core, NAME, make_consent("W-13", [WATCHLIST])).id
    photos = [data / "people/joe_biden/1.jpg", data / "people/joe_biden/2.jpg"]
    assert len(enroll(core, sid, photos).enrolled) == 2
    app = create_server(core, housekeeping=False, watch_cameras=False)
    w = World(core, app, data, sid, {})
    yield w
    for client in w.clients.values():
        client.close()
    core.close()


def _item_id(html: str) -> str:
    found = re.search(r'action="/reviews/([0-9a-f]+)/answer"', html)
    assert found, "no review item on the page"
    return found.group(1)


def _answer(client: TestClient, rid: str, answer: str) -> Any:
    token = csrf_of(client.get("/reviews").text)
    return client.post(f"/reviews/{rid}/answer", data={"csrf": token, "answer": answer})


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


def _decide(client: TestClient, rid: str, step2: str, decision: str, reason: str) -> Any:
    form = {
        "csrf": csrf_of(step2),
        "answer": _hidden(step2, "answer"),
        "proof": _hidden(step2, "proof"),
        "decision": decision,
        "reason": reason,
    }
    return client.post(f"/reviews/{rid}/decide", data=form, follow_redirects=False)


def _entries(core: Visage, operation: str, rid: str) -> list[AuditEntryRow]:
    with core.store.session() as session:
        rows = session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.operation == operation)
        ).all()
        return [r for r in rows if r.details.get("review_id") == rid]


def _status(core: Visage, rid: str) -> str:
    with core.store.session() as session:
        row = session.get(ReviewRow, rid)
        assert row is not None
        return row.status


def _score(core: Visage, rid: str) -> float:
    with core.store.session() as session:
        row = session.get(ReviewRow, rid)
        assert row is not None
        return row.score


def test_blind_step_then_name_and_score_then_two_people_release_it(world: World) -> None:
    rid = world.ask()
    rita, remy = world.client("rita"), world.client("remy")
    score = f"{_score(world.core, rid):.3f}"

    # Step 1: the faces and the question; neither the name nor the score is in the page.
    step1 = rita.get(f"/reviews?before={rid}")
    assert step1.status_code == 200 and _item_id(step1.text) == rid
    for hidden in (NAME, score, world.subject_id):
        assert hidden not in step1.text
    assert "Same person?" in step1.text
    for label, key in (("Same person", "s"), ("Not the same person", "n"), ("Cannot tell", "c")):
        assert f'data-shortcut="{key}">{label}</button>' in step1.text.replace(
            ' class="secondary"', ""
        )
    assert f'src="/reviews/{rid}/probe.jpg"' in step1.text
    assert f'src="/reviews/{rid}/reference/1.jpg"' in step1.text
    assert "Automation bias" in step1.text and "<kbd>j</kbd>" in step1.text

    # Step 2 only in answer to the step-1 POST: name and score, and the decision form.
    step2 = _answer(rita, rid, "same")
    assert step2.status_code == 200
    assert NAME in step2.text and score in step2.text
    assert '<label for="reason">Reason</label>' in step2.text
    for label in ("Confirm", "Reject", "Inconclusive"):
        assert f">{label}</button>" in step2.text

    # A reason is required: 422, the page kept, nothing recorded.
    missing = _decide(rita, rid, step2.text, "confirm", "   ")
    assert missing.status_code == 422 and 'role="alert"' in missing.text
    assert NAME in missing.text and not _entries(world.core, "review.confirm", rid)

    done = _decide(rita, rid, step2.text, "confirm", "same ears and hairline")
    assert done.status_code == 303
    assert done.headers["location"] == f"/reviews?after={rid}&recorded=1"
    assert "Your decision was recorded." in rita.get(done.headers["location"]).text
    [entry] = _entries(world.core, "review.confirm", rid)
    assert entry.actor == "user:rita"
    assert entry.details["blind_answer"] == "same"
    assert entry.details["reason"] == "same ears and hairline"
    assert _status(world.core, rid) == "pending"

    # Still sealed from the operator; rita cannot decide twice, and no longer sees it.
    with pytest.raises(ReviewConflictError):
        review_uc.outcome(world.core, rid, ASKER.actor)
    again = _decide(rita, rid, step2.text, "confirm", "once more")
    assert again.status_code == 409 and len(_entries(world.core, "review.confirm", rid)) == 1
    assert f"/reviews/{rid}/answer" not in rita.get("/reviews").text

    # remy reviews blind too, and never sees rita's decision.
    step1 = remy.get(f"/reviews?before={rid}")
    assert _item_id(step1.text) == rid and NAME not in step1.text
    step2 = _answer(remy, rid, "same")
    for page in (step1.text, step2.text):
        assert "rita" not in page and "ears and hairline" not in page
        assert "confirmation" not in page.lower()
    done = _decide(remy, rid, step2.text, "confirm", "same face shape and nose")
    assert done.status_code == 303
    assert "rita" not in remy.get(done.headers["location"]).text
    assert _status(world.core, rid) == "confirmed"

    # Released to the operator who asked, only now.
    released = review_uc.outcome(world.core, rid, ASKER.actor)
    assert released.name == NAME and released.subject_id == world.subject_id


def test_inconclusive_keeps_the_item_pending_for_others(world: World) -> None:
    rid = world.ask()
    rita = world.client("rita")
    step2 = _answer(rita, rid, "cannot-tell")
    assert "Cannot tell" in step2.text
    done = _decide(rita, rid, step2.text, "inconclusive", "the probe is blurred")
    assert done.status_code == 303
    [entry] = _entries(world.core, "review.inconclusive", rid)
    assert entry.actor == "user:rita" and entry.details["blind_answer"] == "cannot-tell"
    assert entry.details["reason"] == "the probe is blurred"
    assert _status(world.core, rid) == "pending"
    assert f"/reviews/{rid}/answer" not in rita.get("/reviews").text
    assert _item_id(world.client("remy").get(f"/reviews?before={rid}").text) == rid


def test_a_rejection_discards_the_probe(world: World) -> None:
    rid = world.ask()
    remy, rita = world.client("remy"), world.client("rita")
    assert remy.get(f"/reviews/{rid}/probe.jpg").status_code == 200
    step2 = _answer(remy, rid, "different")
    done = _decide(remy, rid, step2.text, "reject", "different chin")
    assert done.status_code == 303
    assert _status(world.core, rid) == "rejected"
    assert _entries(world.core, "review.reject", rid)[0].details["blind_answer"] == "different"
    assert remy.get(f"/reviews/{rid}/probe.jpg").status_code == 404
    assert f"/reviews/{rid}/answer" not in rita.get("/reviews").text


def test_a_blind_answer_cannot_be_changed_after_seeing_the_name(world: World) -> None:
    rid = world.ask()
    rita = world.client("rita")
    step2 = _answer(rita, rid, "different").text
    forged = step2.replace('name="answer" value="different"', 'name="answer" value="same"')
    response = _decide(rita, rid, forged, "confirm", "looked again")
    assert response.status_code == 422 and "Same person?" in response.text
    assert not _entries(world.core, "review.confirm", rid)
    assert _status(world.core, rid) == "pending"


def test_skip_and_previous_keep_the_place_in_the_queue(world: World) -> None:
    first, second = world.ask(), world.ask()
    remy = world.client("remy")
    assert _item_id(remy.get(f"/reviews?after={first}").text) == second
    assert _item_id(remy.get(f"/reviews?before={second}").text) == first
    end = remy.get(f"/reviews?after={second}")
    assert "You reached the end of the queue" in end.text
    assert 'href="/reviews"' in end.text
    # An item decided meanwhile keeps its place: "after" it is the next one queued.
    step2 = _answer(remy, first, "cannot-tell")
    _decide(remy, first, step2.text, "inconclusive", "too small")
    assert _item_id(remy.get(f"/reviews?after={first}&recorded=1").text) == second


def test_reference_faces_are_served_to_reviewers_only(world: World) -> None:
    rid = world.ask()
    rita = world.client("rita")
    for path in (f"/reviews/{rid}/probe.jpg", f"/reviews/{rid}/reference/1.jpg"):
        image = rita.get(path)
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content[:2] == b"\xff\xd8" and image.headers["cache-control"] == "no-store"
        for name in ("olga", "enzo", "wanda", "aude", "ada"):
            refused = world.client(name).get(path)
            assert refused.status_code == 403 and b"\xff\xd8" not in refused.content[:2]
    assert rita.get(f"/reviews/{rid}/reference/9.jpg").status_code == 404


def test_only_reviewers_open_the_queue(world: World) -> None:
    for name in ("olga", "enzo", "wanda", "aude", "ada"):
        response = world.client(name).get("/reviews")
        assert response.status_code == 403, name
        assert "<h1>" in response.text and NAME not in response.text


def test_posts_without_the_form_token_are_refused(world: World) -> None:
    rid = world.ask()
    rita = world.client("rita")
    answer = rita.post(f"/reviews/{rid}/answer", data={"answer": "same"})
    assert answer.status_code == 403 and NAME not in answer.text
    step2 = _answer(rita, rid, "same").text
    form = {"answer": "same", "proof": _hidden(step2, "proof"), "decision": "confirm"}
    decide = rita.post(f"/reviews/{rid}/decide", data={**form, "reason": "x"})
    assert decide.status_code == 403
    assert not _entries(world.core, "review.confirm", rid)


def test_the_review_page_in_french(world: World) -> None:
    world.ask()
    rita = world.client("rita")
    rita.cookies.set("visage_lang", "fr")
    try:
        step1 = rita.get("/reviews")
        rid = _item_id(step1.text)
        assert '<html lang="fr"' in step1.text
        for text in ("Même personne ?", "Pas la même personne", "Impossible à dire"):
            assert text in step1.text
        assert "Biais d\u2019automatisation" in step1.text
        step2 = _answer(rita, rid, "same").text
        for text in ("Motif", "Confirmer", "Rejeter", "Non concluant"):
            assert text in step2
    finally:
        rita.cookies.delete("visage_lang")


def test_every_string_of_the_screen_is_translated_into_french() -> None:
    root = Path(__file__).parents[2] / "visage/web"
    sources = [p.read_text() for p in (root / "templates/reviews").glob("*.html")]
    sources.append((root / "pages/reviews.py").read_text())
    wanted: set[str] = set()
    for source in sources:
        wanted |= set(re.findall(r'_\("((?:[^"\\]|\\.)+)"', source))
        wanted |= set(re.findall(r"_\(\'((?:[^\'\\]|\\.)+)\'", source))
    from visage.web.i18n import translator
    from visage.web.pages.reviews import ANSWERS, DECISIONS

    wanted |= {label for _, label, _ in ANSWERS}
    wanted |= {label for _, label, _, _ in DECISIONS} | {h for *_, h in DECISIONS}
    french = translator("fr").messages
    missing = sorted(m for m in wanted if m.replace("\\'", "'") not in french)
    assert not missing, missing
