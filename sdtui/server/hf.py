"""Hugging Face's text-to-image protocol, as `huggingface_hub.InferenceClient` speaks it.

`InferenceClient(base_url=URL).text_to_image(prompt, ...)` POSTs
`{"inputs": prompt, "parameters": {...}}` to URL and reads the image bytes back.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.schedulers import DEFAULT_SCHEDULER, SCHEDULERS
from sdtui.server.common import (
    ApiError,
    check_auth,
    check_prompt_lengths,
    read_json,
    served_model,
    service_of,
    wait_for_end,
)
from sdtui.service import Failed, Image


def _scheduler(name: Any) -> str:
    """Our name, or a diffusers class name (what HF's `scheduler` parameter holds)."""
    if not name:
        return DEFAULT_SCHEDULER
    for spec in SCHEDULERS.values():
        if spec.class_name == name and not spec.options:
            return spec.name
    return str(name)


def request_from_inputs(request: Request, body: Any) -> GenerationRequest:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
        raise ValidationError("inputs", "must be the prompt text")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValidationError("parameters", "must be a JSON object")
    target_size = parameters.get("target_size")
    size = target_size if isinstance(target_size, dict) else {}
    fields: dict[str, Any] = {
        "prompt": body["inputs"],
        "negative_prompt": parameters.get("negative_prompt") or "",
        "model": served_model(request, None),
        "scheduler": _scheduler(parameters.get("scheduler")),
        "seed": parameters.get("seed"),
        "width": parameters.get("width") or size.get("width") or 512,
        "height": parameters.get("height") or size.get("height") or 512,
    }
    if parameters.get("num_inference_steps") is not None:
        fields["steps"] = parameters["num_inference_steps"]
    if parameters.get("guidance_scale") is not None:
        fields["cfg"] = parameters["guidance_scale"]
    generation = GenerationRequest(**fields)
    check_prompt_lengths(request, generation.prompt, generation.negative_prompt)
    return generation


async def text_to_image(request: Request) -> Response:
    owner = check_auth(request)
    generation = request_from_inputs(request, await read_json(request))
    service = service_of(request)
    job_id = service.submit(generation, owner)
    events = await wait_for_end(service, job_id, owner)
    image = next((e for e in events if isinstance(e, Image)), None)
    if image is None:
        end = events[-1]
        raise ApiError(500, end.message if isinstance(end, Failed) else "no image was made")
    return Response(image.png, media_type="image/png")


ROUTES = [Route("/", text_to_image, methods=["POST"])]
