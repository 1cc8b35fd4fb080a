"""The AUTOMATIC1111 API subset and Hugging Face's text-to-image protocol on sdtui serve."""

from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path

import pytest
from PIL import Image as PILImage
from ray_helpers import app_for, backend_params
from server_helpers import (
    TOKEN,
    allow_inference_client,
    client_for,
    demo_request,
    make_app,
    pixels,
)

from sdtui.engine import Engine
from sdtui.params import GenerationRequest, parse_parameters
from sdtui.server.run import ServerThread


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


# Shaped like what the sdwebuiapi library and chat front ends send: many fields we do
# not use, booleans as strings, the old `sampler_index`, A1111's separate schedule type.
SDWEBUIAPI_PAYLOAD = {
    "enable_hr": "false",
    "denoising_strength": 0.45,
    "firstphase_width": 0,
    "firstphase_height": 0,
    "hr_scale": 2,
    "hr_upscaler": "Latent",
    "prompt": "a lighthouse at dusk",
    "styles": [],
    "seed": 1234,
    "subseed": -1,
    "subseed_strength": 0.0,
    "seed_resize_from_h": 0,
    "seed_resize_from_w": 0,
    "sampler_index": "Euler a",
    "batch_size": 2,
    "n_iter": 1,
    "steps": 3,
    "cfg_scale": 7.5,
    "width": 64,
    "height": 64,
    "restore_faces": "false",
    "tiling": "false",
    "do_not_save_samples": False,
    "do_not_save_grid": False,
    "negative_prompt": "fog",
    "eta": 1.0,
    "s_churn": 0,
    "s_tmax": 0,
    "s_tmin": 0,
    "s_noise": 1,
    "override_settings": {"CLIP_stop_at_last_layers": 2},
    "override_settings_restore_afterwards": True,
    "script_args": [],
    "script_name": None,
    "send_images": True,
    "save_images": True,
    "alwayson_scripts": {},
}


def test_txt2img_answers_like_a1111_with_metadata_in_the_pngs(app, engine, demo_model_dir):
    answer = client_for(app).post("/sdapi/v1/txt2img", json=SDWEBUIAPI_PAYLOAD)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"images", "parameters", "info"}
    assert body["parameters"]["prompt"] == "a lighthouse at dusk"
    info = json.loads(body["info"])
    assert info["all_seeds"] == [1234, 1235] and info["seed"] == 1234
    assert info["sampler_name"] == "Euler a" and info["cfg_scale"] == 7.5
    pngs = [base64.b64decode(image) for image in body["images"]]
    assert len(pngs) == 2
    text = PILImage.open(io.BytesIO(pngs[0])).text["parameters"]
    parsed = parse_parameters(text)
    assert parsed.prompt == "a lighthouse at dusk" and parsed.negative_prompt == "fog"
    assert parsed.settings["Seed"] == "1234" and parsed.settings["Sampler"] == "Euler a"
    assert info["infotexts"][0] == text
    local = engine.generate(
        GenerationRequest(prompt="a lighthouse at dusk", negative_prompt="fog",
                          model=str(demo_model_dir), scheduler="Euler a", steps=3, cfg=7.5,
                          seed=1234, width=64, height=64)
    )
    assert pixels(pngs[0]) == local.images[0].image.convert("RGB").tobytes()
    # Nothing was written on the server, whatever save_images said.
    assert not list(Path.cwd().glob("*.png"))


def test_txt2img_minimal_payload_uses_a1111_defaults_and_random_seed(app):
    # Chat front ends send little more than this.
    body = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "seed": -1,
            "sampler_name": "DPM++ 2M", "scheduler": "Karras"}
    answer = client_for(app).post("/sdapi/v1/txt2img", json=body)
    assert answer.status_code == 200, answer.text
    info = json.loads(answer.json()["info"])
    assert info["sampler_name"] == "DPM++ 2M Karras"
    assert 0 <= info["seed"] < 2**32 and info["all_seeds"] == [info["seed"]]
    assert answer.json()["parameters"]["cfg_scale"] == 7.0


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"prompt": "x", "sampler_name": "No Such Sampler", "width": 64, "height": 64}, "sched"),
        ({"prompt": "x", "override_settings": {"sd_model_checkpoint": "other"}}, "serves only"),
        ({"prompt": "x", "batch_size": "lots"}, "whole numbers"),
        ({"prompt": "", "width": 64, "height": 64}, "prompt"),
    ],
)
def test_txt2img_refuses_what_it_cannot_do(app, payload, words):
    answer = client_for(app).post("/sdapi/v1/txt2img", json=payload)
    assert answer.status_code == 400
    assert words in answer.json()["detail"]


def test_lists_and_options(app):
    client = client_for(app)
    models = client.get("/sdapi/v1/sd-models").json()
    title = models[0]["title"]
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == title
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": title}).status_code == 200
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "x"}).status_code == 400
    names = [s["name"] for s in client.get("/sdapi/v1/samplers").json()]
    assert "Euler a" in names and "DPM++ 2M Karras" in names
    assert [s["name"] for s in client.get("/sdapi/v1/schedulers").json()][0] == "automatic"
    # Filenames never show where the model lies on the server.
    assert "/" not in models[0]["filename"]


def test_progress_and_interrupt_see_only_the_callers_job(app):
    client, other = client_for(app, "alice"), client_for(app, "bob")
    result: dict = {}

    def generate():
        payload = {"prompt": "slow", "steps": 40, "width": 64, "height": 64, "n_iter": 3}
        result["answer"] = client.post("/sdapi/v1/txt2img", json=payload)

    thread = threading.Thread(target=generate)
    thread.start()
    service = app.state.service
    # Wait until some steps are done: the progress event is in the job's events.
    for _ in range(400):
        progress = client.get("/sdapi/v1/progress").json()
        if progress["state"]["sampling_step"] >= 2:
            break
        threading.Event().wait(0.05)
    assert 0 < progress["progress"] < 1 and progress["state"]["sampling_steps"] == 40
    assert other.get("/sdapi/v1/progress").json()["progress"] == 0
    other.post("/sdapi/v1/interrupt")  # bob's interrupt does not touch alice's job
    before = progress["state"]["sampling_step"] + 40 * progress["state"]["job_no"]
    for _ in range(400):  # a cancelled job would stop within one step
        state = client.get("/sdapi/v1/progress").json()["state"]
        if state["sampling_step"] + 40 * state["job_no"] >= before + 3:
            break
        threading.Event().wait(0.05)
    else:
        raise AssertionError("alice's job stopped after bob's interrupt")
    assert service.status()["running"]
    client.post("/sdapi/v1/interrupt")
    thread.join(60)
    answer = result["answer"]
    assert answer.status_code == 200
    assert len(answer.json()["images"]) < 3


def test_hf_protocol_body_answers_png_bytes(app):
    body = {"inputs": "a red fox", "parameters": {"width": 64, "height": 64, "seed": 5,
            "num_inference_steps": 2, "guidance_scale": 6.0,
            "scheduler": "EulerDiscreteScheduler"}}
    answer = client_for(app).post("/", json=body)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    text = PILImage.open(io.BytesIO(answer.content)).text["parameters"]
    assert "Seed: 5" in text and "Sampler: Euler," in text and "CFG scale: 6" in text
    bad = client_for(app).post("/", json={"inputs": 3})
    assert bad.status_code == 400 and "inputs" in bad.json()["error"]


def test_inference_client_against_sdtui_serve(engine, demo_model_dir, monkeypatch):
    from huggingface_hub import InferenceClient

    # InferenceClient refuses every URL while the hub is offline, loopback too.
    allow_inference_client(monkeypatch)
    app = make_app(engine, demo_model_dir, token=TOKEN)
    with ServerThread(app, app.state.service) as server:
        client = InferenceClient(base_url=server.url, api_key=TOKEN)
        image = client.text_to_image(
            "a red fox", width=64, height=64, num_inference_steps=3, seed=11,
            guidance_scale=7.0, scheduler="EulerDiscreteScheduler",
        )
        refused = InferenceClient(base_url=server.url, api_key="wrong-token")
        with pytest.raises(Exception, match="401"):
            refused.text_to_image("a red fox", width=64, height=64)
    app.state.service.close(timeout=30)
    local = engine.generate(GenerationRequest(**demo_request(), model=str(demo_model_dir)))
    assert image.size == (64, 64)
    assert image.convert("RGB").tobytes() == local.images[0].image.convert("RGB").tobytes()
