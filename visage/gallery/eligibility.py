"""Who may be matched for a purpose, cached per purpose and checked on every use.

Computing it reads every consent (about 50 ms at 10,000 subjects), and it is needed before
every 1:N search and, on a camera, for every face. An answer is reused only while the
database's consent token is the one it was computed under (the token is re-stamped by
triggers on any change of subjects or consents, from any process) and time alone has not
changed it (a consent's last day ended, a dated withdrawal arrived): one small read instead
of a scan, and a withdrawal takes effect on the very next search.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from visage.gallery import repository as repo
from visage.gallery.consent import normalise_purpose
from visage.store.meta import get_meta


class EligibilityCache:
    def __init__(self) -> None:
        self._answers: dict[str, repo.Eligibility] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, purpose: str, now: datetime | None = None) -> repo.Eligibility:
        """The subjects eligible for ``purpose`` now (``now`` is for tests of time limits)."""
        purpose = normalise_purpose(purpose)
        now = now or datetime.now(UTC)
        token = get_meta(session, repo.CONSENT_TOKEN)
        with self._lock:
            known = self._answers.get(purpose)
        if (
            known is not None
            and token is not None
            and known.token == token
            and known.at <= now < known.valid_until
        ):
            return known
        answer = repo.eligibility(session, purpose, now)
        with self._lock:
            self._answers[purpose] = answer
        return answer
