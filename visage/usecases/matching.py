"""One way to match a face for a purpose: gate, eligible set, embed, search, threshold.

``identify`` (still images), ``watch`` (cameras, files) and ``anonymize --keep-enrolled``
all ask the same question — *is this face a subject whose valid consent covers this
purpose?* — and answer it here, with one behaviour:

- **The gate** is the deployment profile's, checked once per run by :meth:`check_gate`. A
  refusal is audited under the caller's operation before it is raised, whichever door
  asked. An admin's halt (:mod:`visage.usecases.halt`: ``all``, the purpose, or the camera
  of a ``watch``) refuses the run first, as :class:`~visage.governance.halt.HaltedError`.
  Live sources meet the live rule; a law-enforcement operator in a publicly
  accessible space needs an authorisation reference for every caller (a recording searched
  by ``watch`` or ``anonymize`` is post-remote identification as much as a still image is),
  and still-image searches are also held to the per-caller ceiling, so that a camera's
  frames sent one by one cannot amount to live identification. ``anonymize`` for a
  watchlist purpose is refused (:class:`WatchlistUnmaskRefusedError`): a face left
  unmasked because it matched would name a candidate before two reviewers confirmed.
- **The eligible set** is fetched afresh for every call of :meth:`candidates` — per image,
  per face on camera, per face in a recording — so a withdrawal or an expiry takes effect
  on the next face seen. The cache behind it (``gallery/eligibility.py``) makes that cheap.
- **The threshold** is the calibrated one of the core; below it a face is a bystander, and
  nothing computed for it (embedding, hits) outlives the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from visage.core import Visage
from visage.governance.audit import Actor
from visage.governance.audit_ops import AuditOp, refused
from visage.governance.consent import normalise_purpose
from visage.governance.halt import HaltedError
from visage.governance.halt import blocking as blocking_halt
from visage.governance.profile import DeploymentProfile, GateError, IdentifyRateError
from visage.store.schema import AuditEntryRow
from visage.usecases.profile import get_profile
from visage.vision.types import Detection, Face, RGBImage

RATE_WINDOW = timedelta(minutes=1)


class WatchlistUnmaskRefusedError(GateError):
    """Keeping recognised people unmasked for a watchlist purpose: the output itself would
    show who matched before two reviewers confirmed (exit 2, HTTP 403)."""


class MatchOperation(StrEnum):
    """The use-case matching faces: also the operation its audit entries are recorded as."""

    identify = "identify"
    watch = "watch"
    anonymize = "anonymize"


@dataclass(frozen=True, slots=True)
class Match:
    """A face recognised as a consenting subject: calibrated score at or above threshold."""

    subject_id: str
    score: float


@dataclass(frozen=True, slots=True)
class FaceMatch:
    """A detection that matched, with the face it was described as (quality, embedding)."""

    face: Face
    match: Match


class PurposeMatcher:
    """Matches faces against the subjects whose valid consent covers one purpose.

    Call :meth:`check_gate` first (once per run); every matching method refuses to run
    before it has passed.
    """

    def __init__(
        self,
        core: Visage,
        purpose: str,
        actor: Actor,
        operation: MatchOperation,
        *,
        live: bool = False,
        authorisation_ref: str | None = None,
        camera: str | None = None,
    ) -> None:
        self.core, self.actor, self.operation, self.live = core, actor, operation, live
        self.camera = camera
        self.purpose = normalise_purpose(purpose)
        ref = authorisation_ref.strip() if authorisation_ref else None
        self.authorisation_ref = ref or None
        self._profile: DeploymentProfile | None = None

    @property
    def profile(self) -> DeploymentProfile:
        """The deployment profile the gate was checked against."""
        if self._profile is None:
            raise RuntimeError("PurposeMatcher.check_gate() must run before matching")
        return self._profile

    @property
    def watchlist(self) -> bool:
        """Matches for this purpose are candidates for two-person review, blind until then."""
        return self.profile.is_watchlist(self.purpose)

    @property
    def threshold(self) -> float:
        return self.core.threshold

    def check_gate(self) -> None:
        """Raise :class:`HaltedError` when an admin halted this purpose (or camera), else
        :class:`GateError` when the profile refuses this search; audited first either way."""
        profile = get_profile(self.core)
        error: GateError | HaltedError | None = (
            self._watchlist_error(profile)
            or profile.identification_gate(live=self.live)
            or profile.authorisation_gate(self.authorisation_ref)
        )
        with self.core.store.session() as session:
            halt = blocking_halt(session, self.purpose, self.camera)
            if halt is not None:
                error = HaltedError(halt)
            if error is None and profile.post_remote_only:
                error = self._ceiling_error(session, profile)
            if error is not None:
                self.core.audit(
                    session,
                    self.actor,
                    refused(
                        AuditOp(self.operation.value),
                        purpose=self.purpose,
                        reason=f"halted: {error.scope}"
                        if isinstance(error, HaltedError)
                        else error.message,
                        authorisation_ref=self.authorisation_ref,
                    ),
                )
        if error is not None:
            raise error
        self._profile = profile

    def _watchlist_error(self, profile: DeploymentProfile) -> GateError | None:
        """Only ``anonymize`` shows its matches as such (a face left visible); ``identify``
        and ``watch`` answer a watchlist purpose with review items and mask the candidate in
        a recording."""
        if self.operation is not MatchOperation.anonymize or not profile.is_watchlist(self.purpose):
            return None
        return WatchlistUnmaskRefusedError(
            f"keeping enrolled people unmasked is refused for the watchlist purpose "
            f"{self.purpose!r}: a face left visible would show who matched before two "
            "reviewers confirmed; mask everyone (without keeping enrolled people), or use a "
            "purpose that is not a watchlist"
        )

    def _ceiling_error(self, session: Session, profile: DeploymentProfile) -> GateError | None:
        """Still images only: a video run is one search over a recording, not a frame sent
        on its own."""
        if self.operation is not MatchOperation.identify:
            return None
        ceiling = self.core.settings.identify_rate_limit_law_enforcement_per_minute
        if _recent_searches(session, self.actor, datetime.now(UTC)) < ceiling:
            return None
        return IdentifyRateError(
            f"more than {ceiling} 1:N searches a minute by a law-enforcement operator in a "
            "public space; frames one by one are not allowed to amount to live identification"
        )

    def eligible(self) -> frozenset[str]:
        """The subjects who may match now, read afresh (a withdrawal counts at once)."""
        self.profile  # noqa: B018 - the gate must have passed
        with self.core.store.session() as session:
            return self.core.eligibility.get(session, self.purpose).ids

    def candidates(self, embeddings: NDArray[np.float32], k: int) -> list[list[Match]]:
        """For each row of ``embeddings``: up to ``k`` eligible subjects at or above the
        threshold, best first; an empty list is a bystander."""
        return self._search(embeddings, k, self.eligible())

    def match(self, embeddings: NDArray[np.float32]) -> list[Match | None]:
        """For each row of ``embeddings``: the best eligible subject, or None (a bystander)."""
        return [hits[0] if hits else None for hits in self.candidates(embeddings, 1)]

    def match_detection(self, pixels: RGBImage, detection: Detection) -> FaceMatch | None:
        """Describe one detected face and match it; None for a bystander.

        With nobody eligible the face is not even embedded.
        """
        eligible = self.eligible()
        if not eligible:
            return None
        face = self.core.analyzer.describe(pixels, [detection])[0]
        if face.embedding is None:
            return None
        found = self._search(face.embedding[None, :], 1, eligible)[0]
        return FaceMatch(face, found[0]) if found else None

    def _search(
        self, embeddings: NDArray[np.float32], k: int, eligible: frozenset[str]
    ) -> list[list[Match]]:
        if len(embeddings) == 0:
            return []
        if not eligible:
            return [[] for _ in range(len(embeddings))]
        hits = self.core.gallery.search(embeddings, k, allowed=eligible)
        return [
            [
                Match(h.label, score)
                for h in face_hits
                if (score := self.core.calibration.score(h.cosine)) >= self.threshold
            ]
            for face_hits in hits
        ]


def _recent_searches(session: Session, actor: Actor, now: datetime) -> int:
    """The actor's 1:N searches on still images (not refusals) in the last minute, counted
    in the audit log so that the CLI (a new process per call) obeys the ceiling too."""
    stmt = select(func.count()).where(
        AuditEntryRow.operation == MatchOperation.identify.value,
        AuditEntryRow.actor == actor.id,
        AuditEntryRow.outcome == "ok",
        AuditEntryRow.at >= now - RATE_WINDOW,
    )
    return int(session.scalar(stmt) or 0)
