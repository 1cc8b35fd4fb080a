"""The AUTOMATIC1111 API subset that other tools call (`/sdapi/v1/...`).

Field names and defaults are A1111's; fields we do not use (hires fix, face
restoration, scripts, `save_images`, ...) are ignored, as A1111 ignores
unknown ones. Nothing is saved on the server: the images go back in the answer.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sdtui import __version__
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest, format_parameters
from sdtui.schedulers import SCHEDULERS
from sdtui.server.common import (
    ApiError,
    check_auth,
    check_prompt_lengths,
    config_of,
    model_title,
    read_json,
    served_model,
    service_of,
    wait_for_end,
)
from sdtui.service import Failed, Image, JobInfo

# A1111's own defaults for the fields a client leaves out.
DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": "",
    "steps": 50,
    "cfg_scale": 7.0,
    "seed": -1,
    "width": 512,
    "height": 512,
    "sampler_name": "Euler a",
    "scheduler": "automatic",
    "batch_size": 1,
    "n_iter": 1,
    "send_images": True,
}
# A1111's separate schedule types, for clients that list them.
SCHEDULE_TYPES = (("automatic", "Automatic"), ("karras", "Karras"))


def _sampler(payload: dict[str, Any]) -> str:
    sampler = str(payload.get("sampler_name") or payload.get("sampler_index") or "")
    sampler = sampler or DEFAULTS["sampler_name"]
    schedule = str(payload.get("scheduler") or "").strip()
    if schedule and schedule.lower() not in ("automatic", "uniform") and (
        schedule.lower() not in sampler.lower()
    ):
        sampler = f"{sampler} {schedule}"
    return sampler


def _checkpoint(payload: dict[str, Any]) -> Any:
    overrides = payload.get("override_settings")
    if isinstance(overrides, dict) and overrides.get("sd_model_checkpoint"):
        # Titles may carry a hash: "model [abc123]".
        return str(overrides["sd_model_checkpoint"]).split(" [")[0].strip()
    return None


def request_from_payload(request: Request, payload: Any) -> GenerationRequest:
    if not isinstance(payload, dict):
        raise ValidationError("request", "must be a JSON object")
    def get(name: str) -> Any:
        """The client's JSON value, or the default; GenerationRequest checks its type."""
        value = payload.get(name)
        return value if value is not None else DEFAULTS[name]

    seed = get("seed")
    if str(seed).strip() in ("-1", "-1.0", ""):
        seed = None
    batch, iterations = get("batch_size"), get("n_iter")
    try:
        count = int(batch) * int(iterations)
    except (TypeError, ValueError):
        raise ValidationError("batch_size", "and n_iter must be whole numbers") from None
    generation = GenerationRequest(
        prompt=get("prompt"),
        negative_prompt=get("negative_prompt"),
        model=served_model(request, _checkpoint(payload)),
        scheduler=_sampler(payload),
        steps=get("steps"),
        cfg=get("cfg_scale"),
        seed=seed,
        width=get("width"),
        height=get("height"),
        count=count,
    )
    check_prompt_lengths(request, generation.prompt, generation.negative_prompt)
    return generation


def _info(generation: GenerationRequest, images: list[Image], payload: dict[str, Any]) -> str:
    seeds = [image.seed for image in images]
    count = max(1, len(images))
    worker = images[0].info.get("worker") if images else None
    return json.dumps(
        {
            "prompt": generation.prompt,
            "all_prompts": [generation.prompt] * count,
            "negative_prompt": generation.negative_prompt,
            "all_negative_prompts": [generation.negative_prompt] * count,
            "seed": seeds[0] if seeds else -1,
            "all_seeds": seeds,
            "subseed": -1,
            "all_subseeds": [-1] * len(seeds),
            "subseed_strength": 0,
            "width": generation.width,
            "height": generation.height,
            "sampler_name": generation.scheduler,
            "cfg_scale": generation.cfg,
            "steps": generation.steps,
            "batch_size": payload.get("batch_size") or 1,
            "restore_faces": False,
            "face_restoration_model": None,
            "sd_model_name": model_title(generation.model),
            "sd_model_hash": None,
            "sd_vae_name": None,
            "sd_vae_hash": None,
            "seed_resize_from_w": -1,
            "seed_resize_from_h": -1,
            "denoising_strength": None,
            "extra_generation_params": {},
            "index_of_first_image": 0,
            "infotexts": [format_parameters(generation, seed) for seed in seeds],
            "styles": [],
            "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
            "clip_skip": 1,
            "is_using_inpainting_conditioning": False,
            "version": f"sdtui {__version__}",
            # Which replica made the images, when a Ray deployment serves them.
            **({"worker": worker} if worker else {}),
        },
        ensure_ascii=False,
    )


async def txt2img(request: Request) -> JSONResponse:
    owner = check_auth(request)
    payload = await read_json(request)
    generation = request_from_payload(request, payload)
    service = service_of(request)
    job_id = service.submit(generation, owner)
    events = await wait_for_end(service, job_id, owner)
    images = [e for e in events if isinstance(e, Image)]
    end = events[-1]
    # Interrupted: A1111 answers with the images finished before the stop.
    if isinstance(end, Failed) and end.kind not in ("cancelled", "shutdown"):
        raise ApiError(500, end.message)
    send = payload.get("send_images", True) not in (False, "false", "False", 0)
    return JSONResponse(
        {
            "images": [base64.b64encode(i.png).decode("ascii") for i in images] if send else [],
            "parameters": {**DEFAULTS, **payload},
            "info": _info(generation, images, payload),
        }
    )


def _active_job(request: Request, owner: str) -> JobInfo | None:
    jobs = [j for j in service_of(request).jobs(owner) if j.state in ("queued", "running")]
    jobs.sort(key=lambda j: (j.state != "running", j.created))
    return jobs[0] if jobs else None


async def progress(request: Request) -> JSONResponse:
    """The caller's own job only: other clients' work is not theirs to see."""
    owner = check_auth(request)
    job = _active_job(request, owner)
    step = service_of(request).last_step(job.id, owner) if job else None
    fraction = step.fraction if step else 0.0
    eta = (step.elapsed / fraction - step.elapsed) if step and fraction > 0 else 0.0
    skip_image = request.query_params.get("skip_current_image", "").lower() == "true"
    preview = None
    if step and step.preview_png and not skip_image:
        preview = base64.b64encode(step.preview_png).decode("ascii")
    unfinished = [j for j in service_of(request).jobs(owner) if j.state in ("queued", "running")]
    return JSONResponse(
        {
            "progress": round(fraction, 4),
            "eta_relative": round(eta, 3),
            "state": {
                "skipped": False,
                "interrupted": False,
                "job": job.id if job else "",
                "job_count": len(unfinished),
                "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(job.created))
                if job
                else "0",
                "job_no": step.image_index if step else 0,
                "sampling_step": step.step if step else 0,
                "sampling_steps": step.total if step else 0,
            },
            "current_image": preview,
            "textinfo": None,
        }
    )


async def interrupt(request: Request) -> JSONResponse:
    """Stop the caller's running job (its finished images are still answered)."""
    owner = check_auth(request)
    service = service_of(request)
    for job in service.jobs(owner):
        if job.state == "running":
            service.cancel(job.id, owner)
    return JSONResponse(None)


async def sd_models(request: Request) -> JSONResponse:
    check_auth(request)
    title = model_title(config_of(request).model)
    return JSONResponse(
        [{"title": title, "model_name": title, "hash": None, "sha256": None,
          "filename": title, "config": None}]
    )


async def samplers(request: Request) -> JSONResponse:
    check_auth(request)
    return JSONResponse([{"name": name, "aliases": [], "options": {}} for name in SCHEDULERS])


async def schedulers(request: Request) -> JSONResponse:
    check_auth(request)
    return JSONResponse(
        [{"name": name, "label": label, "aliases": None, "default_rho": -1,
          "need_inner_model": False} for name, label in SCHEDULE_TYPES]
    )


async def get_options(request: Request) -> JSONResponse:
    check_auth(request)
    return JSONResponse(
        {
            "sd_model_checkpoint": model_title(config_of(request).model),
            "sd_checkpoint_hash": None,
            "sd_vae": "Automatic",
            "samples_format": "png",
            "CLIP_stop_at_last_layers": 1,
        }
    )


async def set_options(request: Request) -> JSONResponse:
    """Only the served model can be chosen; other settings are accepted and ignored."""
    check_auth(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationError("options", "must be a JSON object")
    if body.get("sd_model_checkpoint"):
        served_model(request, str(body["sd_model_checkpoint"]).split(" [")[0].strip())
    return JSONResponse(None)


async def empty_list(request: Request) -> JSONResponse:
    check_auth(request)
    return JSONResponse([])


ROUTES = [
    Route("/sdapi/v1/txt2img", txt2img, methods=["POST"]),
    Route("/sdapi/v1/progress", progress, methods=["GET"]),
    Route("/sdapi/v1/interrupt", interrupt, methods=["POST"]),
    Route("/sdapi/v1/sd-models", sd_models, methods=["GET"]),
    Route("/sdapi/v1/samplers", samplers, methods=["GET"]),
    Route("/sdapi/v1/schedulers", schedulers, methods=["GET"]),
    Route("/sdapi/v1/options", get_options, methods=["GET"]),
    Route("/sdapi/v1/options", set_options, methods=["POST"]),
    Route("/sdapi/v1/sd-vae", empty_list, methods=["GET"]),
    Route("/sdapi/v1/loras", empty_list, methods=["GET"]),
]
