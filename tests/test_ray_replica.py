"""One Ray Serve replica's own logic, without a Ray cluster: events, OOM, cancel.

The replica's `run` is called directly, as Ray Serve calls it; only its
context (its name) is given by the test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray_helpers import ray_installed

from sdtui.engine import Engine
from sdtui.errors import OutOfMemoryError
from sdtui.params import GenerationRequest
from sdtui.service import Done, EngineService, Failed, Image, Queued, Step

pytestmark = pytest.mark.skipif(not ray_installed(), reason="Ray is not installed")


class _OutOfMemoryEngine:
    """What a GPU that runs out mid-job looks like to the service (CUDA cannot run here)."""

    def generate(self, request, on_progress=None, cancel=None, on_image=None, on_status=None):
        raise OutOfMemoryError("the GPU ran out of memory", "lower the size")


def _replica(monkeypatch, engine, services: list | None = None) -> object:
    from sdtui.server import ray_replica

    context = SimpleNamespace(replica_tag="r1")
    monkeypatch.setattr(ray_replica.serve, "get_replica_context", lambda: context)
    replica = ray_replica.EngineReplica(ray_replica.EngineOptions(device="cpu", dtype="fp32"))
    cache: list = []

    async def engine_for(model: str) -> ray_replica._LoadedEngine:
        loaded = ray_replica._LoadedEngine(
            EngineService(engine, models=(model,), worker=replica.worker)
        )
        if services is not None:
            services.append(loaded.service)
            cache.append(loaded)  # as Serve's model cache holds it
        return loaded

    replica._engine_for = engine_for  # Serve's multiplexed loader, minus Serve
    return replica


async def _collect(stream, until=None) -> list:
    items = []
    async for item in stream:
        items.append(item)
        if until is not None and until(item):
            break
    return items


def _request(model: Path, **changes) -> GenerationRequest:
    fields = dict(prompt="a fox", model=str(model), steps=3, width=64, height=64, seed=5,
                  scheduler="Euler")
    fields.update(changes)
    return GenerationRequest(**fields)


def test_the_replica_names_itself_then_streams_the_jobs_events(monkeypatch, demo_model_dir):
    engine = Engine(device="cpu", dtype="fp32", preview="latent")
    replica = _replica(monkeypatch, engine)
    items = asyncio.run(_collect(replica.run(_request(demo_model_dir))))
    assert items[0] == replica.worker and replica.worker.startswith("r1@")
    events = items[1:]
    assert not any(isinstance(e, Queued) for e in events)  # its own queue is not the client's
    assert [type(e) for e in events if not isinstance(e, Step)][-2:] == [Image, Done]
    image = next(e for e in events if isinstance(e, Image))
    assert image.info["worker"] == replica.worker and image.seed == 5
    replica.check_health()  # healthy after a good job


def test_out_of_memory_fails_the_job_and_asks_ray_for_a_fresh_replica(monkeypatch, tmp_path):
    replica = _replica(monkeypatch, _OutOfMemoryEngine())
    items = asyncio.run(_collect(replica.run(_request(tmp_path))))
    end = items[-1]
    assert isinstance(end, Failed) and end.kind == "out_of_memory"
    with pytest.raises(RuntimeError, match="ran out of memory"):
        replica.check_health()


def test_closing_the_stream_cancels_the_job_on_the_replica(monkeypatch, demo_model_dir):
    services: list[EngineService] = []
    replica = _replica(monkeypatch, Engine(device="cpu", dtype="fp32"), services)

    async def first_step_then_close() -> None:
        stream = replica.run(_request(demo_model_dir, steps=150, count=4))
        await _collect(stream, until=lambda item: isinstance(item, Step))
        await stream.aclose()  # what Ray does when the caller cancels

    asyncio.run(first_step_then_close())
    [job] = services[0].jobs()
    events = list(services[0].events(job.id))  # ends within a step of the cancel
    assert isinstance(events[-1], Failed) and events[-1].kind == "cancelled"
    assert sum(isinstance(e, Step) for e in events) < 150 * 4
