"""What a job reports, as typed events that cross threads, processes and HTTP as JSON.

Every event names its job. A job's stream is: `Queued` (again whenever its place
changes; position 0 means it is running), `Loading` while a model loads, `Step`
for each denoising step (with a small preview PNG when previews are on), `Image`
for each finished picture (PNG bytes with the settings embedded), and last
exactly one of `Done` or `Failed`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest

# Failure kinds, so a front end can tell "you cancelled" from "the GPU ran out".
FAILURE_KINDS = ("cancelled", "out_of_memory", "invalid", "shutdown", "error")


@dataclass(frozen=True)
class Queued:
    job: str
    position: int  # 1 = next to run; 0 = running now
    type: str = field(default="queued", init=False)


@dataclass(frozen=True)
class Loading:
    job: str
    message: str
    type: str = field(default="loading", init=False)


@dataclass(frozen=True)
class Step:
    job: str
    step: int
    total: int
    image_index: int = 0
    image_count: int = 1
    elapsed: float = 0.0
    preview_png: bytes | None = None
    type: str = field(default="step", init=False)

    @property
    def fraction(self) -> float:
        """How much of the whole job is done, 0..1."""
        done = self.image_index * self.total + self.step
        return done / max(1, self.total * self.image_count)


@dataclass(frozen=True)
class Image:
    """One finished picture; `png` carries the `parameters` and `sdtui` text chunks."""

    job: str
    png: bytes
    seed: int
    index: int
    request: GenerationRequest  # the job's request; `seed` is this image's own
    model_id: str
    device: str
    dtype: str
    load_seconds: float = 0.0
    generate_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    type: str = field(default="image", init=False)


@dataclass(frozen=True)
class Failed:
    job: str
    message: str
    kind: str = "error"  # one of FAILURE_KINDS
    type: str = field(default="failed", init=False)


@dataclass(frozen=True)
class Done:
    job: str
    images: int
    type: str = field(default="done", init=False)


Event = Queued | Loading | Step | Image | Failed | Done
FINAL_TYPES = ("done", "failed")


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValidationError("event", "holds no base64 image")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("event", "holds an image that is not valid base64") from None


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as plain JSON values (bytes as base64, the request as its dict)."""
    data = {name: getattr(event, name) for name in event.__dataclass_fields__}
    if isinstance(event, Step):
        data["preview_png"] = _b64(event.preview_png)
    elif isinstance(event, Image):
        data["png"] = _b64(event.png)
        data["request"] = event.request.to_dict()
    return data


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """The event `event_to_dict` wrote; raises ValidationError on anything else."""
    kind = data.get("type") if isinstance(data, Mapping) else None
    values = {k: v for k, v in data.items() if k != "type"} if kind else {}
    try:
        if kind == "queued":
            return Queued(str(values["job"]), int(values["position"]))
        if kind == "loading":
            return Loading(str(values["job"]), str(values["message"]))
        if kind == "step":
            preview = values.get("preview_png")
            return Step(
                str(values["job"]),
                int(values["step"]),
                int(values["total"]),
                int(values.get("image_index", 0)),
                int(values.get("image_count", 1)),
                float(values.get("elapsed", 0.0)),
                _unb64(preview) if preview is not None else None,
            )
        if kind == "image":
            return Image(
                job=str(values["job"]),
                png=_unb64(values["png"]),
                seed=int(values["seed"]),
                index=int(values["index"]),
                request=GenerationRequest.from_dict(values["request"]),
                model_id=str(values.get("model_id", "")),
                device=str(values.get("device", "")),
                dtype=str(values.get("dtype", "")),
                load_seconds=float(values.get("load_seconds", 0.0)),
                generate_seconds=float(values.get("generate_seconds", 0.0)),
                info=dict(values.get("info") or {}),
            )
        if kind == "failed":
            return Failed(str(values["job"]), str(values["message"]), str(values.get("kind")))
        if kind == "done":
            return Done(str(values["job"]), int(values["images"]))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError("event", f"{kind} event is malformed ({exc})") from None
    raise ValidationError("event", f"unknown event type {kind!r}")
