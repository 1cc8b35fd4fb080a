"""`sdtui generate --server URL` (sdtui and A1111 servers) and `--backend hf`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from helpers import gallery_pngs, messages
from PIL import Image as PILImage
from server_helpers import TOKEN, allow_inference_client, make_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sdtui.cli import main
from sdtui.engine import Engine
from sdtui.params import GenerationRequest
from sdtui.server import a1111
from sdtui.server.common import EXCEPTION_HANDLERS
from sdtui.server.run import ServerThread


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path) -> Engine:
    engine = Engine(device="cpu", dtype="fp32", preview="latent")
    engine.load(str(demo_model_dir))
    return engine


ARGS = ["a red fox", "--steps", "3", "--width", "64", "--height", "64", "--seed", "21",
        "--scheduler", "Euler", "--count", "2"]


def record(path: Path) -> dict:
    return json.loads(PILImage.open(path).text["sdtui"])


def local_pixels(engine, demo_model_dir) -> list[bytes]:
    request = GenerationRequest(prompt="a red fox", model=str(demo_model_dir), steps=3,
                                width=64, height=64, seed=21, scheduler="Euler", count=2)
    return [g.image.convert("RGB").tobytes() for g in engine.generate(request).images]


def test_generate_on_an_sdtui_server_saves_the_same_pixels_locally(
    engine, demo_model_dir, gallery_dir, tmp_path, capsys
):
    app = make_app(engine, demo_model_dir, token=TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with ServerThread(app, app.state.service) as server:
        code = main(["generate", *ARGS, "--server", server.url, "--token-file", str(token_file)])
        refused = main(["generate", *ARGS, "--server", server.url])
    app.state.service.close(timeout=30)
    assert code == 0
    out, err = capsys.readouterr()
    files = gallery_pngs(gallery_dir)
    assert len(files) == 2 and [str(p) for p in files] == sorted(out.split())
    assert [PILImage.open(p).convert("RGB").tobytes() for p in files] == local_pixels(
        engine, demo_model_dir
    )
    made_on = record(files[0])["info"]["made_on"]
    assert made_on["server"] == server.url and made_on["api"] == "sdtui"
    assert "Seed: 21" in PILImage.open(files[0]).text["parameters"]
    assert refused == 1 and "refused the token" in err


def test_generate_on_an_a1111_server(engine, demo_model_dir, gallery_dir, capsys):
    sdtui_app = make_app(engine, demo_model_dir)
    # Only the /sdapi/v1 routes: it looks like A1111 to the client (no sdtui /health).
    app = Starlette(routes=a1111.ROUTES, exception_handlers=EXCEPTION_HANDLERS)
    app.state.service, app.state.config = sdtui_app.state.service, sdtui_app.state.config
    with ServerThread(app, app.state.service) as server:
        code = main(["generate", *ARGS, "--server", server.url, "--json"])
    sdtui_app.state.service.close(timeout=30)
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["seed"] for line in lines] == [21, 22]
    assert lines[0]["made_on"]["api"] == "a1111"
    files = gallery_pngs(gallery_dir)
    assert [PILImage.open(p).convert("RGB").tobytes() for p in files] == local_pixels(
        engine, demo_model_dir
    )


def test_unreachable_server_is_one_line(gallery_dir, capsys):
    code = main(["generate", *ARGS, "--server", "http://127.0.0.1:9"])
    assert code == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
    assert gallery_pngs(gallery_dir) == []


class FakeHFEndpoint:
    """An Inference Endpoint as documented: JSON {"inputs", "parameters"} in, image bytes out."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict, dict]] = []
        self.app = Starlette(routes=[Route("/", self.infer, methods=["POST"])])

    async def infer(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.calls.append((dict(request.headers), body))
        seed = body["parameters"].get("seed") or 0
        image = PILImage.new("RGB", (body["parameters"]["width"], body["parameters"]["height"]),
                             (seed % 256, 10, 200))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png")


def test_backend_hf_uses_the_users_token_and_says_what_is_not_used(
    gallery_dir, monkeypatch, capsys
):
    allow_inference_client(monkeypatch)
    hub_token = "hf_" + "q" * 34
    monkeypatch.setenv("HF_TOKEN", hub_token)
    fake = FakeHFEndpoint()
    with ServerThread(fake.app) as server:
        code = main(["generate", "a red fox", "--backend", "hf", "--model", server.url,
                     "--width", "64", "--height", "64", "--steps", "9", "--seed", "5",
                     "--count", "2", "--scheduler", "DPM++ 2M Karras"])
    assert code == 0
    err = capsys.readouterr().err
    assert "does not use: scheduler" in err
    headers, body = fake.calls[0]
    assert headers["authorization"] == f"Bearer {hub_token}"
    assert body["inputs"] == "a red fox"
    assert body["parameters"]["num_inference_steps"] == 9
    assert [call[1]["parameters"]["seed"] for call in fake.calls] == [5, 6]
    assert "scheduler" not in body["parameters"]
    files = gallery_pngs(gallery_dir)
    assert len(files) == 2
    text = PILImage.open(files[0]).text
    assert "Not used: scheduler" in text["parameters"]
    assert record(files[0])["info"]["made_on"]["backend"] == "hf"
    # The token is never written anywhere.
    for path in gallery_dir.rglob("*"):
        if path.is_file():
            assert hub_token.encode() not in path.read_bytes()


def test_backend_hf_needs_a_model(capsys):
    assert main(["generate", "a fox", "--backend", "hf"]) == 2
    assert "--backend hf needs --model" in capsys.readouterr().err


def test_ctrl_c_cancels_the_job_on_the_server_and_keeps_what_arrived(
    engine, demo_model_dir, gallery_dir, capsys
):
    import os
    import signal
    import threading
    import time

    app = make_app(engine, demo_model_dir)

    def interrupt_after_first_image() -> None:
        for _ in range(1200):
            if gallery_pngs(gallery_dir):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    with ServerThread(app, app.state.service) as server:
        threading.Thread(target=interrupt_after_first_image, daemon=True).start()
        code = main(["generate", "a slow fox", "--server", server.url, "--steps", "10",
                     "--width", "64", "--height", "64", "--count", "30", "--seed", "3"])
        jobs = app.state.service._jobs.values()
        assert [job.state for job in jobs] == ["failed"]  # cancelled on the server
    app.state.service.close(timeout=30)
    assert code == 130
    saved = len(gallery_pngs(gallery_dir))
    assert 1 <= saved < 30
    assert f"{saved} of 30 images saved" in capsys.readouterr().err


def test_what_each_provider_does_not_use():
    from sdtui.remote.hf import not_used

    euler = GenerationRequest(prompt="x", scheduler="Euler")
    karras = GenerationRequest(prompt="x", scheduler="DPM++ 2M Karras")
    assert not_used("hf-inference", "http://endpoint", euler) == []
    assert not_used("auto", "https://my.endpoint.cloud", karras) == ["scheduler"]
    assert not_used("nscale", "org/model", euler) == ["steps", "scheduler"]
    assert not_used("fal-ai", "org/model", euler) == ["scheduler"]
    assert not_used("someone-new", "org/model", euler) == ["scheduler"]


def test_backend_hf_failure_is_one_line_and_saves_nothing(gallery_dir, monkeypatch, capsys):
    allow_inference_client(monkeypatch)

    async def broken(request: Request) -> Response:
        return Response(json.dumps({"error": "Model is overloaded"}), status_code=503,
                        media_type="application/json")

    app = Starlette(routes=[Route("/", broken, methods=["POST"])])
    with ServerThread(app) as server:
        code = main(["generate", "a fox", "--backend", "hf", "--model", server.url,
                     "--width", "64", "--height", "64"])
    err = capsys.readouterr().err
    assert code == 1
    said = messages(err)  # the progress stages aside
    assert "could not make the image" in said[-1] and len(said) <= 2
    assert gallery_pngs(gallery_dir) == []


def test_two_clients_share_one_loaded_model_and_both_see_their_progress(engine, demo_model_dir):
    import threading

    from sdtui.remote.sdtui_server import HttpClient
    from sdtui.service import Image, Step

    app = make_app(engine, demo_model_dir)
    loads = engine.load_count
    seen: dict[str, list] = {}
    with ServerThread(app, app.state.service) as server:

        def work(name: str) -> None:
            client = HttpClient(server.url)
            job = client.submit(GenerationRequest(prompt=name, model="demo", steps=3, width=64,
                                                  height=64, count=2, scheduler="Euler"))
            seen[name] = list(client.events(job))

        threads = [threading.Thread(target=work, args=(n,)) for n in ("alice", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    app.state.service.close(timeout=30)
    for events in seen.values():
        assert sum(isinstance(e, Step) for e in events) == 6
        assert sum(isinstance(e, Image) for e in events) == 2
    assert {e.request.prompt for v in seen.values() for e in v if isinstance(e, Image)} == {
        "alice", "bob"}
    assert engine.load_count == loads  # loaded once, before the server started
