"""A real `sdtui serve` process: SIGTERM, kill -9 mid-job, clients that hang up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import gallery_pngs
from PIL import Image as PILImage
from server_helpers import client_for, demo_request, make_app, read_events

from sdtui.cli import main
from sdtui.engine import Engine
from sdtui.params import GenerationRequest
from sdtui.remote.sdtui_server import HttpClient
from sdtui.service import EngineService, Image, JobNotFoundError


class ServeProcess:
    """`sdtui serve` on an ephemeral loopback port, its stderr kept."""

    def __init__(self, model_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sdtui", "serve", "--model", str(model_dir), "--device",
             "cpu", "--dtype", "fp32", "--port", "0"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def drain() -> None:
            for line in self.proc.stderr:
                self.lines.append(line)
                if "listening on" in line:
                    self.url = line.split()[-1]
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        ready.wait(120)
        assert self.url, "".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


@pytest.fixture
def serve(demo_model_dir):
    server = ServeProcess(demo_model_dir)
    yield server
    server.stop()


def long_request(model_dir: Path) -> GenerationRequest:
    return GenerationRequest(prompt="a slow fox", model=str(model_dir), steps=10, width=64,
                             height=64, seed=3, count=30, scheduler="Euler")


def test_sigterm_finishes_the_step_keeps_the_images_and_exits_cleanly(serve, demo_model_dir):
    client = HttpClient(serve.url)
    assert client.health()["status"] == "ok"
    job = client.submit(long_request(demo_model_dir))
    events = []
    for event in client.events(job):
        events.append(event)
        if isinstance(event, Image) and event.index == 0:
            serve.proc.send_signal(signal.SIGTERM)  # the stream goes on to the end
    images = [e for e in events if isinstance(e, Image)]
    assert events[-1].type == "failed" and events[-1].kind == "shutdown"
    assert 1 <= len(images) < 30
    assert serve.proc.wait(60) == 0
    assert any("stopped" in line for line in serve.lines)


def test_kill_9_mid_job_the_client_says_so_and_keeps_what_it_received(
    serve, demo_model_dir, gallery_dir, capsys
):
    def kill_after_first_image() -> None:
        for _ in range(1200):
            if gallery_pngs(gallery_dir):
                os.kill(serve.proc.pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    threading.Thread(target=kill_after_first_image, daemon=True).start()
    code = main(["generate", "a slow fox", "--server", serve.url, "--steps", "10",
                 "--width", "64", "--height", "64", "--count", "30", "--seed", "3"])
    err = capsys.readouterr().err
    assert code == 1
    assert "went away" in err or "cannot reach" in err
    kept = gallery_pngs(gallery_dir)
    assert 1 <= len(kept) < 30 and "images were saved" in err
    for path in kept:  # whole files with their settings, not partial ones
        assert "Seed:" in PILImage.open(path).text["parameters"]


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path) -> Engine:
    engine = Engine(device="cpu", dtype="fp32", preview="latent")
    engine.load(str(demo_model_dir))
    return engine


def test_a_client_that_hangs_up_finds_its_finished_job_later(engine, demo_model_dir):
    app = make_app(engine, demo_model_dir)
    alice, bob = client_for(app, "alice"), client_for(app, "bob")
    job = alice.post("/v1/jobs", json=demo_request(count=3)).json()["job"]
    other = bob.post("/v1/jobs", json=demo_request()).json()["job"]
    with alice.stream("GET", f"/v1/jobs/{job}/events") as response:
        next(response.iter_lines())  # one line, then the connection goes
    # The job went on; the events are all there when the client comes back.
    again = read_events(alice, job)
    assert again[-1].type == "done" and sum(isinstance(e, Image) for e in again) == 3
    assert read_events(bob, other)[-1].type == "done"
    app.state.service.close(timeout=30)


def test_finished_jobs_expire_after_keep_seconds(engine, demo_model_dir):
    service = EngineService(engine, keep_seconds=0)
    request = GenerationRequest(**demo_request(), model=str(demo_model_dir))
    job = service.submit(request, "me")
    assert list(service.events(job, "me"))[-1].type == "done"
    service.submit(request, "me")  # pruning happens as jobs come and go
    with pytest.raises(JobNotFoundError):
        service.job(job, "me")
    service.close(timeout=30)
