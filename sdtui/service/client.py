"""`EngineClient`: the one protocol front ends use to reach an engine, wherever it runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from sdtui.params import GenerationRequest
from sdtui.service.events import Event
from sdtui.service.service import EngineService, JobInfo


@runtime_checkable
class EngineClient(Protocol):
    """Submit a request, read its events until `Done` or `Failed`, cancel it."""

    def submit(self, request: GenerationRequest) -> str:
        """Queue the request; returns the job id."""
        ...

    def events(self, job_id: str, after: int = 0) -> Iterator[Event]:
        """The job's events from index `after` on; ends after `Done` or `Failed`."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Stop the job (within a step when it runs); False when it had finished."""
        ...

    def jobs(self) -> list[JobInfo]:
        """This client's jobs."""
        ...


class InProcessClient:
    """An `EngineClient` over an `EngineService` in the same process (scripts, tests)."""

    def __init__(self, service: EngineService, owner: str = "local") -> None:
        self.service = service
        self.owner = owner

    def submit(self, request: GenerationRequest) -> str:
        return self.service.submit(request, self.owner)

    def events(self, job_id: str, after: int = 0) -> Iterator[Event]:
        return self.service.events(job_id, self.owner, after)

    def cancel(self, job_id: str) -> bool:
        return self.service.cancel(job_id, self.owner)

    def jobs(self) -> list[JobInfo]:
        return self.service.jobs(self.owner)
