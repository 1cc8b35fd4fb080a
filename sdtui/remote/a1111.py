"""A client for AUTOMATIC1111-compatible servers (A1111, Forge, SD.Next with `--api`)."""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from sdtui.params import GenerationRequest
from sdtui.remote.errors import ServerError, ServerGoneError, explain_response
from sdtui.results import CancelToken

POLL_SECONDS = 0.5


def _auth(token: str | None) -> dict[str, str]:
    """A1111's --api-auth is user:password (Basic); anything else is sent as a bearer token."""
    if not token:
        return {}
    if ":" in token:
        return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode("ascii")}
    return {"Authorization": f"Bearer {token}"}


@dataclass
class A1111Result:
    images: list[tuple[Any, int]]  # (PIL image, seed)
    model: str
    info: dict[str, Any] = field(default_factory=dict)


def payload_for(request: GenerationRequest, model: str | None) -> dict[str, Any]:
    """A1111's txt2img fields for a request (its sampler names are ours)."""
    payload: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "steps": request.steps,
        "cfg_scale": request.cfg,
        "seed": request.seed if request.seed is not None else -1,
        "width": request.width,
        "height": request.height,
        "sampler_name": request.scheduler,
        "batch_size": 1,
        "n_iter": request.count,
        "send_images": True,
        "save_images": False,
    }
    if model:
        payload["override_settings"] = {"sd_model_checkpoint": model}
        payload["override_settings_restore_afterwards"] = True
    return payload


class A1111Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._headers = _auth(token)
        self._timeout = timeout

    def _call(self, method: str, path: str, timeout: float | None = None, **kw: Any) -> Any:
        try:
            response = httpx.request(
                method, self.url + path, headers=self._headers,
                timeout=timeout or self._timeout, **kw,
            )
        except httpx.HTTPError as exc:
            text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise ServerGoneError(f"cannot reach {self.url}: {text}") from None
        if response.status_code >= 400:
            raise explain_response(self.url, response)
        try:
            return response.json()
        except ValueError:
            raise ServerError(f"{self.url} did not answer JSON on {path}") from None

    def options(self) -> dict[str, Any]:
        return self._call("GET", "/sdapi/v1/options")

    def samplers(self) -> list[str]:
        return [s.get("name", "") for s in self._call("GET", "/sdapi/v1/samplers")]

    def models(self) -> list[str]:
        return [m.get("title", "") for m in self._call("GET", "/sdapi/v1/sd-models")]

    def interrupt(self) -> None:
        self._call("POST", "/sdapi/v1/interrupt")

    def txt2img(
        self,
        request: GenerationRequest,
        model: str | None = None,
        on_progress: Callable[[float, int, int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> A1111Result:
        """Generate while polling /progress (fraction, step, steps); Ctrl+C interrupts."""
        outcome: dict[str, Any] = {}

        def post() -> None:
            try:
                outcome["body"] = self._call(
                    "POST", "/sdapi/v1/txt2img", timeout=3600.0,
                    json=payload_for(request, model),
                )
            except Exception as exc:  # handed to the caller's thread
                outcome["error"] = exc

        thread = threading.Thread(target=post, name="sdtui-a1111", daemon=True)
        thread.start()
        interrupted = False
        while thread.is_alive():
            thread.join(POLL_SECONDS)
            if cancel is not None and cancel.cancelled and not interrupted:
                interrupted = True
                try:
                    self.interrupt()
                except ServerError:
                    pass
            if on_progress is not None and thread.is_alive():
                try:
                    state = self._call("GET", "/sdapi/v1/progress?skip_current_image=true")
                except (ServerError, ServerGoneError):
                    continue  # the answer (or its error) tells
                steps = state.get("state", {})
                on_progress(
                    float(state.get("progress") or 0.0),
                    int(steps.get("sampling_step") or 0), int(steps.get("sampling_steps") or 0),
                )
        if "error" in outcome:
            raise outcome["error"]
        return self._result(outcome["body"], request)

    def _result(self, body: Any, request: GenerationRequest) -> A1111Result:
        from PIL import Image, UnidentifiedImageError

        if not isinstance(body, dict) or not isinstance(body.get("images"), list):
            raise ServerError(f"{self.url} answered txt2img without images")
        try:
            info = json.loads(body.get("info") or "{}")
        except (TypeError, json.JSONDecodeError):
            info = {}
        info = info if isinstance(info, dict) else {}
        seeds = info.get("all_seeds") or []
        images = []
        for index, data in enumerate(body["images"]):
            try:
                image = Image.open(io.BytesIO(base64.b64decode(data)))
                image.load()
            except (binascii.Error, ValueError, TypeError, UnidentifiedImageError, OSError):
                raise ServerError(f"{self.url} sent an image that cannot be read") from None
            fallback = (request.seed or 0) + index
            seed = seeds[index] if index < len(seeds) else fallback
            images.append((image, int(seed)))
        return A1111Result(images, str(info.get("sd_model_name") or ""), info)
