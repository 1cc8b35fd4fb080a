"""sdtui serve's own API: jobs, event streams, auth, limits and owners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray_helpers import app_for, backend_params
from server_helpers import TOKEN, client_for, demo_request, make_app, pixels, read_events

from sdtui.engine import Engine
from sdtui.params import GenerationRequest
from sdtui.service import Image


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path) -> Engine:
    engine = Engine(device="cpu", dtype="fp32", preview="latent")
    engine.load(str(demo_model_dir))
    return engine


@pytest.fixture(params=backend_params())
def app(request, engine, demo_model_dir):
    """The server over the in-process engine, and over the Ray deployment."""
    app = app_for(request, engine, demo_model_dir)
    yield app
    app.state.service.close(timeout=30)


def test_health_and_models(app):
    client = client_for(app)
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["queued"] == 0
    models = client.get("/v1/models").json()
    assert models["models"][0]["loaded"] and "Euler a" in models["schedulers"]
    assert "/" not in models["models"][0]["name"]  # the name, not the server's path


def test_a_job_streams_progress_and_images_with_the_same_pixels_as_local(
    app, engine, demo_model_dir
):
    client = client_for(app, "alice")
    answer = client.post("/v1/jobs", json=demo_request(count=2))
    assert answer.status_code == 202
    job = answer.json()["job"]
    events = read_events(client, job)
    assert [e.type for e in events][-1] == "done"
    assert any(e.type == "step" for e in events)
    images = [e for e in events if isinstance(e, Image)]
    assert [i.seed for i in images] == [11, 12]
    local = engine.generate(
        GenerationRequest(**demo_request(count=2), model=str(demo_model_dir))
    ).images
    assert [pixels(i.png) for i in images] == [
        g.image.convert("RGB").tobytes() for g in local
    ]
    # A stream read again (a client that lost its line) resumes after the last event seen.
    again = read_events(client, job, after=len(events) - 1)
    assert [e.type for e in again] == ["done"]
    listed = client.get("/v1/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job] and listed[0]["state"] == "done"


def test_the_short_name_and_no_name_mean_the_served_model(app):
    client = client_for(app)
    for model in ("demo", None):
        body = demo_request() if model is None else demo_request(model=model)
        assert client.post("/v1/jobs", json=body).status_code == 202


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps(demo_request(steps=0)).encode(), 400, "steps"),
        (json.dumps(demo_request(width=70)).encode(), 400, "multiple of 8"),
        (json.dumps(demo_request(model="/etc/passwd")).encode(), 400, "serves only"),
        (json.dumps(demo_request(init_image="/etc/passwd")).encode(), 400, "names a file"),
        (json.dumps(demo_request(mask="/etc/shadow")).encode(), 400, "names a file"),
        (json.dumps(demo_request(hires_upscaler="/root/x.pth")).encode(), 400, "names a file"),
        (json.dumps(demo_request(refiner="/models/other")).encode(), 400, "names a file"),
        (json.dumps(demo_request(favourite_colour="red")).encode(), 400, "is unknown"),
        (json.dumps(demo_request(prompt="x" * 5000)).encode(), 400, "limit is 4,000"),
        (json.dumps(demo_request(prompt="x" * 2_000_000)).encode(), 413, "byte limit"),
        (json.dumps({"negative_prompt": "y"}).encode(), 400, "prompt"),
    ],
)
def test_bad_bodies_are_refused_with_one_line(app, body, status, words):
    client = client_for(app)
    answer = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    assert words in answer.json()["error"]
    assert app.state.service.status()["queued"] == 0


def test_a_chunked_oversize_body_is_cut_off(app):
    def chunks():
        yield b'{"prompt": "'
        for _ in range(40):
            yield b"x" * 50_000

    answer = client_for(app).post("/v1/jobs", content=chunks())
    assert answer.status_code == 413


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic Og==", f"Token {TOKEN}"])
def test_with_a_token_every_endpoint_but_health_refuses_without_it(
    engine, demo_model_dir, header
):
    app = make_app(engine, demo_model_dir, token=TOKEN)
    client = client_for(app)
    headers = {"Authorization": header} if header else {}
    assert client.get("/health").status_code == 200
    for method, path in (
        ("GET", "/v1/models"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs"),
        ("GET", "/sdapi/v1/options"), ("POST", "/sdapi/v1/txt2img"), ("POST", "/"),
    ):
        answer = client.request(method, path, headers=headers, json=demo_request())
        assert answer.status_code == 401, path
    assert app.state.service.status()["queued"] == 0
    app.state.service.close()


def test_the_right_token_is_accepted(engine, demo_model_dir):
    app = make_app(engine, demo_model_dir, token=TOKEN)
    assert client_for(app, token=TOKEN).get("/v1/models").status_code == 200
    import base64

    basic = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    answer = client_for(app).get("/sdapi/v1/options", headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200
    app.state.service.close()


def test_one_client_cannot_see_or_cancel_anothers_job(app):
    alice, mallory = client_for(app, "alice"), client_for(app, "mallory")
    job = alice.post("/v1/jobs", json=demo_request(steps=20)).json()["job"]
    assert mallory.get(f"/v1/jobs/{job}").status_code == 404
    assert mallory.delete(f"/v1/jobs/{job}").status_code == 404
    assert mallory.get(f"/v1/jobs/{job}/events").status_code == 404
    assert mallory.get("/v1/jobs").json()["jobs"] == []
    assert alice.delete(f"/v1/jobs/{job}").json() == {"cancelled": True}
    assert read_events(alice, job)[-1].kind == "cancelled"


def test_a_full_queue_answers_429_with_retry_after(engine, demo_model_dir):
    app = make_app(engine, demo_model_dir, max_queue=1)
    client = client_for(app, "a")
    answers = [client.post("/v1/jobs", json=demo_request(steps=30)) for _ in range(4)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and int(refused[0].headers["Retry-After"]) >= 1
    assert "queue is full" in refused[0].json()["error"]
    app.state.service.close(timeout=30)
