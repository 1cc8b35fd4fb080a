"""The engine service: typed events, the fair queue, cancel, owners, failures."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from PIL import Image as PILImage

from sdtui.engine import Engine
from sdtui.errors import OutOfMemoryError, ValidationError
from sdtui.params import GenerationRequest
from sdtui.service import (
    Done,
    EngineClient,
    EngineService,
    Failed,
    Image,
    InProcessClient,
    JobNotFoundError,
    Queued,
    QueueFullError,
    Step,
    event_from_dict,
    event_to_dict,
)


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path) -> Engine:
    engine = Engine(device="cpu", dtype="fp32", preview="latent")
    engine.load(str(demo_model_dir))
    return engine


def tiny(demo_model_dir: Path, **changes) -> GenerationRequest:
    fields = dict(prompt="a red fox", model=str(demo_model_dir), steps=3, width=64, height=64,
                  seed=7, scheduler="Euler")
    fields.update(changes)
    return GenerationRequest(**fields)


class GatedEngine:
    """Wraps the real engine; each job waits for `gate` so tests can line jobs up."""

    def __init__(self, engine: Engine) -> None:
        self.inner = engine
        self.gate = threading.Event()
        self.order: list[str] = []
        self.device, self.dtype = engine.device, engine.dtype

    @property
    def loaded(self):
        return self.inner.loaded

    def generate(self, request, **kwargs):
        self.gate.wait(10)
        self.order.append(request.prompt)
        if request.prompt == "too big":
            raise OutOfMemoryError("cpu ran out of memory", "lower the size")
        return self.inner.generate(request, **kwargs)


def test_events_of_a_job_end_in_done_with_pngs_carrying_the_settings(engine, demo_model_dir):
    service = EngineService(engine)
    client = InProcessClient(service)
    assert isinstance(client, EngineClient)
    job = client.submit(tiny(demo_model_dir, count=2))
    events = list(client.events(job))
    service.close()
    kinds = [e.type for e in events]
    assert kinds[0] == "queued" and kinds[-1] == "done"
    steps = [e for e in events if isinstance(e, Step)]
    assert [(s.image_index, s.step) for s in steps] == [(i, n) for i in (0, 1) for n in (1, 2, 3)]
    previews = [s.preview_png for s in steps if s.preview_png is not None]
    assert previews and all(p.startswith(b"\x89PNG") for p in previews)  # throttled, not all
    images = [e for e in events if isinstance(e, Image)]
    assert [i.seed for i in images] == [7, 8]
    png = PILImage.open(io.BytesIO(images[0].png))
    assert png.size == (64, 64)
    assert "Seed: 7" in png.text["parameters"]
    assert json.loads(png.text["sdtui"])["request"]["prompt"] == "a red fox"
    assert events[-1] == Done(job, 2)


def test_same_pixels_as_the_engine_alone(engine, demo_model_dir):
    request = tiny(demo_model_dir)
    alone = engine.generate(request).images[0].image
    service = EngineService(engine)
    client = InProcessClient(service)
    image = next(e for e in client.events(client.submit(request)) if isinstance(e, Image))
    service.close()
    assert PILImage.open(io.BytesIO(image.png)).tobytes() == alone.tobytes()


def test_every_event_survives_json(engine, demo_model_dir):
    service = EngineService(engine)
    client = InProcessClient(service)
    events = list(client.events(client.submit(tiny(demo_model_dir))))
    service.close()
    for event in events:
        text = json.dumps(event_to_dict(event))
        assert event_from_dict(json.loads(text)) == event
    with pytest.raises(ValidationError):
        event_from_dict({"type": "image", "job": "x", "png": "%%%"})
    with pytest.raises(ValidationError):
        event_from_dict({"type": "nonsense"})


def test_owners_take_turns_and_positions_are_reported(engine, demo_model_dir):
    gated = GatedEngine(engine)
    service = EngineService(gated)
    alice, bob = InProcessClient(service, "alice"), InProcessClient(service, "bob")
    first = alice.submit(tiny(demo_model_dir, prompt="a1"))
    # a1 is taken by the worker (waiting at the gate); then a2, a3, b1 queue up.
    list(service.wait_events(first, "alice", after=1, timeout=5))
    a2 = alice.submit(tiny(demo_model_dir, prompt="a2"))
    alice.submit(tiny(demo_model_dir, prompt="a3"))
    b1 = bob.submit(tiny(demo_model_dir, prompt="b1"))
    assert alice.jobs()[1].position == 1 and bob.jobs()[0].position == 2
    gated.gate.set()
    for job, client in ((b1, bob), (a2, alice)):
        assert list(client.events(job))[-1].type == "done"
    service.close(timeout=30)
    assert gated.order[:3] == ["a1", "a2", "b1"]
    queued = [e.position for e in service.events(b1, "bob") if isinstance(e, Queued)]
    assert queued[0] == 2 and queued[-1] == 0


def test_a_client_cannot_see_or_cancel_another_clients_job(engine, demo_model_dir):
    gated = GatedEngine(engine)
    service = EngineService(gated)
    job = service.submit(tiny(demo_model_dir), "alice")
    for action in (
        lambda: service.cancel(job, "mallory"),
        lambda: service.job(job, "mallory"),
        lambda: service.wait_events(job, "mallory"),
    ):
        with pytest.raises(JobNotFoundError):
            action()
    assert service.jobs("mallory") == []
    assert len(job) >= 24  # ids are unguessable: 18 random bytes
    gated.gate.set()
    service.close(timeout=30)


def test_cancel_a_waiting_and_a_running_job(engine, demo_model_dir):
    gated = GatedEngine(engine)
    service = EngineService(gated)
    running = service.submit(tiny(demo_model_dir, steps=50), "me")
    waiting = service.submit(tiny(demo_model_dir), "me")
    assert service.cancel(waiting, "me")
    assert service.job(waiting, "me").state == "failed"
    assert service.cancel(running, "me")
    gated.gate.set()
    events = list(service.events(running, "me"))
    assert events[-1] == Failed(running, "cancelled", "cancelled")
    assert not any(isinstance(e, Image) for e in events)
    assert not service.cancel(running, "me")  # finished already
    service.close(timeout=30)


def test_out_of_memory_fails_that_job_only(engine, demo_model_dir):
    gated = GatedEngine(engine)
    gated.gate.set()
    service = EngineService(gated)
    bad = service.submit(tiny(demo_model_dir, prompt="too big"))
    good = service.submit(tiny(demo_model_dir))
    assert list(service.events(bad))[-1].kind == "out_of_memory"
    assert list(service.events(good))[-1].type == "done"
    service.close(timeout=30)


def test_full_queue_says_when_to_come_back(engine, demo_model_dir):
    gated = GatedEngine(engine)
    service = EngineService(gated, max_queue=3, max_per_owner=2)
    service.submit(tiny(demo_model_dir), "a")
    list(service.wait_events(service.jobs("a")[0].id, "a", after=1, timeout=5))
    service.submit(tiny(demo_model_dir), "a")
    service.submit(tiny(demo_model_dir), "a")
    with pytest.raises(QueueFullError) as mine:
        service.submit(tiny(demo_model_dir), "a")
    assert mine.value.retry_after >= 1
    service.submit(tiny(demo_model_dir), "b")
    with pytest.raises(QueueFullError):
        service.submit(tiny(demo_model_dir), "c")
    gated.gate.set()
    service.close(timeout=30)


def test_only_the_served_models(engine, demo_model_dir):
    service = EngineService(engine, models=[str(demo_model_dir)])
    with pytest.raises(ValidationError, match="serves only"):
        service.submit(tiny(demo_model_dir, model="/etc/passwd"))
    service.close()


def test_close_finishes_the_step_keeps_the_images_and_fails_the_rest(engine, demo_model_dir):
    service = EngineService(engine)
    running = service.submit(tiny(demo_model_dir, count=20, steps=10), "me")
    waiting = service.submit(tiny(demo_model_dir), "me")
    for event in service.events(running, "me"):
        if isinstance(event, Image):
            break
    service.close(timeout=30)
    events = list(service.events(running, "me"))
    assert events[-1].kind == "shutdown"
    images = [e for e in events if isinstance(e, Image)]
    assert 1 <= len(images) < 20
    assert list(service.events(waiting, "me"))[-1].kind == "shutdown"


def test_the_service_and_its_clients_import_no_torch_nor_web_stack():
    import subprocess
    import sys

    code = (
        "import sys, sdtui.service, sdtui.service.sse\n"
        "heavy = [m for m in ('torch', 'diffusers', 'starlette', 'uvicorn') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
