"""The server's housekeeping thread: retention and audit checkpoints, on a timer.

Every replica runs one; retention runs on one replica at a time (the others skip that turn,
:func:`visage.usecases.retention.run_if_free`), and a checkpoint is an audit append like any
other (serialised)."""

from __future__ import annotations

import logging
import threading

from visage.core import Visage
from visage.governance.audit import Actor
from visage.usecases import audit_log as audit_uc
from visage.usecases import retention as retention_uc

log = logging.getLogger("visage.scheduler")


class Housekeeping:
    """Runs retention and signs the audit head every ``interval_s``, first right at start."""

    def __init__(self, core: Visage, interval_s: float) -> None:
        self.core, self.interval_s = core, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.skipped = 0
        """Turns whose retention another replica was running (so this one skipped it)."""

    def run_once(self) -> None:
        try:
            if retention_uc.run_if_free(self.core, Actor.system()) is None:
                self.skipped += 1
            audit_uc.checkpoint(self.core)
            self.runs += 1
        except Exception:  # keep the server up; the next run tries again
            log.exception("housekeeping run failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
