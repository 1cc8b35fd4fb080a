"""The Ray Serve deployment of `sdtui serve --ray`: one engine per replica (one per GPU).

Each replica runs one job at a time (`max_ongoing_requests=1`). `run` is a
streaming method: it yields the replica's name first, then the job's events as
its own `EngineService` makes them, so progress and previews reach the caller
from whichever replica runs the job. When the caller cancels the stream, Ray
raises `CancelledError` here and the job stops after its current step.

Models are loaded through Ray Serve's model multiplexing: the caller names the
model as the request's multiplexed model id, and Serve sends it to a replica
that already has that model loaded where one is free.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ray import serve

from sdtui.params import GenerationRequest
from sdtui.service.events import Event, Failed, Queued
from sdtui.service.service import EngineService

if TYPE_CHECKING:
    from sdtui.engine.engine import LoadedModel

POLL_SECONDS = 1.0  # how often a waiting stream wakes to notice a cancel


@dataclass(frozen=True)
class EngineOptions:
    """How each replica builds its engine (what `sdtui serve` passes to `Engine`)."""

    device: str = "auto"  # each replica sees only its own GPU, so "auto" is that GPU
    dtype: str = "auto"
    allow_pickle: bool = False
    performance: Any = None  # sdtui.engine.performance options, or None
    preview: str | None = None


class _LoadedEngine:
    """One loaded model and the queue in front of it; Serve calls `__del__` to unload it."""

    def __init__(self, service: EngineService) -> None:
        self.service = service

    def __del__(self) -> None:
        self.service.close(timeout=30)


class EngineReplica:
    """One replica: an engine, loaded with the model its first job names."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        context = serve.get_replica_context()
        # Unique in the cluster and readable: the replica's id and the machine it runs on.
        self.worker = f"{context.replica_tag}@{socket.gethostname()}"
        self._broken = ""

    @serve.multiplexed(max_num_models_per_replica=1)
    async def _engine_for(self, model: str) -> _LoadedEngine:
        from sdtui.engine import Engine

        engine = Engine(
            device=self.options.device,
            dtype=self.options.dtype,
            allow_pickle=self.options.allow_pickle,
            performance=self.options.performance,
            preview=self.options.preview,
        )
        await asyncio.to_thread(engine.load, model)
        return _LoadedEngine(EngineService(engine, models=(model,), worker=self.worker))

    async def describe(self) -> LoadedModel | None:
        """Load the request's model (a warm-up at start) and say what was loaded."""
        loaded = await self._engine_for(serve.get_multiplexed_model_id())
        return loaded.service.loaded_model()

    async def run(self, request: GenerationRequest) -> AsyncIterator[str | Event]:
        """The replica's name, then every event of the job (job ids are this replica's)."""
        yield self.worker
        loaded = await self._engine_for(request.model)  # held: unloading closes its queue
        service = loaded.service
        job = service.submit(request)
        after, finished = 0, False
        try:
            while not finished:
                events, finished = await asyncio.to_thread(
                    service.wait_events, job, "local", after, POLL_SECONDS
                )
                after += len(events)
                for event in events:
                    if isinstance(event, Queued):
                        continue  # this replica's own queue: always one job, always running
                    if isinstance(event, Failed) and event.kind == "out_of_memory":
                        # Ask Ray for a fresh process: a GPU that ran out may stay fragmented.
                        self._broken = event.message
                    yield event
        finally:
            # The caller cancelled (or went away): stop the job after its current step.
            service.cancel(job)

    def check_health(self) -> None:
        """Ray Serve calls this; raising makes it replace this replica."""
        if self._broken:
            raise RuntimeError(f"restarting after: {self._broken}")
