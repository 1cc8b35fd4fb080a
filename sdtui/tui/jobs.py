"""The job queue: one GPU job runs at a time, the rest wait in order.

Pure Python (no Textual, no torch) so its order and cancel rules are easy to test.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from sdtui.params import GenerationRequest
from sdtui.results import CancelToken

_ids = itertools.count(1)


@dataclass
class Job:
    """A model load (`request` None) or a generation waiting for, or holding, the device."""

    model: str
    request: GenerationRequest | None = None
    id: int = field(default_factory=lambda: next(_ids))
    cancel: CancelToken = field(default_factory=CancelToken)

    @property
    def is_load(self) -> bool:
        return self.request is None

    def label(self) -> str:
        if self.request is None:
            return f"load {self.model}"
        r = self.request
        first_line = r.prompt.strip().splitlines()[0] if r.prompt.strip() else ""
        return f"{first_line[:40]} · seed {r.seed} · {r.width}x{r.height} · {r.steps} steps"


class JobQueue:
    """FIFO of jobs plus the one running now; `start_next` hands out the next when idle."""

    def __init__(self) -> None:
        self._pending: deque[Job] = deque()
        self.running: Job | None = None
        # A paused queue starts nothing new (a restored queue waits to be resumed).
        self.paused = False

    def submit(self, job: Job) -> Job:
        self._pending.append(job)
        return job

    def start_next(self) -> Job | None:
        """The next job to run, or None while one is running or nothing waits."""
        if self.running is not None or not self._pending:
            return None
        if self.paused and not self._pending[0].is_load:
            return None
        self.running = self._pending.popleft()
        return self.running

    def finished(self, job_id: int) -> None:
        """Mark the running job done (its worker's `finally` said so)."""
        if self.running is not None and self.running.id == job_id:
            self.running = None

    def cancel_running(self) -> Job | None:
        if self.running is None or self.running.cancel.cancelled:
            return None
        self.running.cancel.cancel()
        return self.running

    def clear(self) -> int:
        """Drop every waiting job (the running one goes on); returns how many."""
        count = len(self._pending)
        self._pending.clear()
        return count

    def remove(self, job_id: int) -> Job | None:
        """Take one waiting job out of the queue; None when it is not waiting."""
        for job in self._pending:
            if job.id == job_id:
                self._pending.remove(job)
                return job
        return None

    def move(self, job_id: int, delta: int) -> bool:
        """Move a waiting job `delta` places later (negative: earlier), never ahead of a
        model load waiting in front. False when it cannot move."""
        jobs = list(self._pending)
        index = next((i for i, j in enumerate(jobs) if j.id == job_id), None)
        if index is None:
            return False
        first = next((i for i, j in enumerate(jobs) if not j.is_load), len(jobs))
        target = min(max(index + delta, first), len(jobs) - 1)
        if target == index:
            return False
        jobs.insert(target, jobs.pop(index))
        self._pending = deque(jobs)
        return True

    def take_all(self) -> list[Job]:
        """Remove and return every waiting generation (model loads stay)."""
        taken = [j for j in self._pending if not j.is_load]
        self._pending = deque(j for j in self._pending if j.is_load)
        return taken

    def put_back(self, jobs: list[Job], at: int | None = None) -> None:
        """Return jobs taken out (undo): at position `at` among the waiting ones,
        or at the end."""
        pending = list(self._pending)
        where = len(pending) if at is None else min(max(at, 0), len(pending))
        self._pending = deque(pending[:where] + jobs + pending[where:])

    @property
    def pending(self) -> list[Job]:
        return list(self._pending)

    @property
    def busy(self) -> bool:
        return self.running is not None
