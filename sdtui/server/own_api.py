"""sdtui's own API: jobs as JSON requests, their events as a server-sent event stream."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from sdtui import __version__
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.schedulers import SCHEDULERS
from sdtui.server.common import (
    WAIT_SECONDS,
    ApiError,
    check_auth,
    check_prompt_lengths,
    config_of,
    model_title,
    read_json,
    served_model,
    service_of,
)
from sdtui.service import JobNotFoundError, event_to_dict

# The request fields a client may set. The others name files or models on the
# server (an init image, a mask, an upscaler, a refiner): a client may send them
# only at their defaults (as a whole request does), so no path it gives is read.
# A field added later is refused until it is listed here.
REQUEST_FIELDS = frozenset(
    ("prompt", "negative_prompt", "model", "scheduler", "steps", "cfg", "seed",
     "width", "height", "count", "extras", "strength", "mask_blur", "inpaint_only_masked",
     "mask_padding", "hires_scale", "hires_steps", "hires_denoise", "refiner_switch")
)
_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(GenerationRequest)
    if f.default is not dataclasses.MISSING
}


def _at_default(name: str, value: Any) -> bool:
    """True when a field the client may not set holds its default (JSON has no tuples)."""
    default = _DEFAULTS.get(name, dataclasses.MISSING)
    return value == default or (isinstance(default, tuple) and value == list(default))


def request_from_json(request: Request, data: Any) -> GenerationRequest:
    """The validated request a client sent (the same checks as the CLI's)."""
    if not isinstance(data, dict):
        raise ValidationError("request", "must be a JSON object")
    refused = sorted(k for k in set(data) - REQUEST_FIELDS if not _at_default(k, data[k]))
    if refused:
        name = refused[0]
        why = "names a file or model on the server" if name in _DEFAULTS else "is unknown"
        raise ValidationError("request", f"field {name!r} {why}; this server does not take it")
    if "prompt" not in data:
        raise ValidationError("prompt", "is missing")
    fields = dict(data, model=served_model(request, data.get("model")))
    generation = GenerationRequest.from_dict(fields)
    check_prompt_lengths(request, generation.prompt, generation.negative_prompt)
    return generation


async def health(request: Request) -> JSONResponse:
    status = service_of(request).status()
    body = {"status": "closing" if status["closing"] else "ok", "sdtui": __version__, **status}
    return JSONResponse(body, 503 if status["closing"] else 200)


async def models(request: Request) -> JSONResponse:
    check_auth(request)
    loaded = service_of(request).loaded_model()
    model = config_of(request).model
    entry = {
        "name": model_title(model),  # a name, never where it lies on the server
        "loaded": loaded is not None,
        "family": getattr(loaded, "family", None),
        "native_size": list(getattr(loaded, "native_size", (512, 512))),
    }
    return JSONResponse({"models": [entry], "schedulers": list(SCHEDULERS)})


async def submit(request: Request) -> JSONResponse:
    owner = check_auth(request)
    generation = request_from_json(request, await read_json(request))
    service = service_of(request)
    job_id = service.submit(generation, owner)
    info = service.job(job_id, owner)
    return JSONResponse(
        {"job": job_id, "position": info.position, "events": f"/v1/jobs/{job_id}/events"}, 202
    )


async def list_jobs(request: Request) -> JSONResponse:
    owner = check_auth(request)
    return JSONResponse({"jobs": [job.to_dict() for job in service_of(request).jobs(owner)]})


async def get_job(request: Request) -> JSONResponse:
    owner = check_auth(request)
    return JSONResponse(service_of(request).job(request.path_params["job"], owner).to_dict())


async def cancel_job(request: Request) -> JSONResponse:
    owner = check_auth(request)
    cancelled = service_of(request).cancel(request.path_params["job"], owner)
    return JSONResponse({"cancelled": cancelled})


def _after(request: Request) -> int:
    text = request.query_params.get("after") or request.headers.get("last-event-id") or "0"
    if not text.isdigit():
        raise ApiError(400, "after must be a whole number")
    return int(text)


async def job_events(request: Request) -> StreamingResponse:
    """Server-sent events: `id:` counts events, so `?after=N` resumes after a lost line."""
    owner = check_auth(request)
    service = service_of(request)
    job_id = request.path_params["job"]
    service.job(job_id, owner)  # 404 now, before the stream starts
    after = _after(request)

    async def stream() -> Any:
        index = after
        while True:
            try:
                events, finished = await anyio.to_thread.run_sync(
                    service.wait_events, job_id, owner, index, WAIT_SECONDS
                )
            except JobNotFoundError:
                return  # expired while the client was away
            if not events:
                if finished:
                    return
                yield ": keep-alive\n\n"  # also how a gone client is noticed
                continue
            for event in events:
                index += 1
                data = json.dumps(event_to_dict(event), ensure_ascii=False)
                yield f"id: {index}\nevent: {event.type}\ndata: {data}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/jobs", submit, methods=["POST"]),
    Route("/v1/jobs", list_jobs, methods=["GET"]),
    Route("/v1/jobs/{job}", get_job, methods=["GET"]),
    Route("/v1/jobs/{job}", cancel_job, methods=["DELETE"]),
    Route("/v1/jobs/{job}/events", job_events, methods=["GET"]),
]
