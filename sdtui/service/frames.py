"""The frames an engine process and its parent exchange: one JSON object a line.

Parent to child: `{"op": "init", "engine": {...}}` once, then `load`,
`generate` and `cancel`, each naming a call id. Child to parent, for one call:
`loading` (status text), `step` and `image` (the service's own events, with
PNG bytes in base64), and last exactly one of `loaded`, `result` or `error`.
Errors carry their class name, message and hint so the parent raises the same
`SdtuiError` the engine raised.
"""

from __future__ import annotations

import json
from typing import IO, Any

from sdtui import errors
from sdtui.errors import GenerationCancelled, SdtuiError, ValidationError

FINAL = ("loaded", "result", "error")


def encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    frame = json.loads(line)
    if not isinstance(frame, dict):
        raise ValueError("a frame must be a JSON object")
    return frame


def write(stream: IO[bytes], frame: dict[str, Any]) -> None:
    stream.write(encode(frame))
    stream.flush()


def error_frame(call: int, exc: BaseException) -> dict[str, Any]:
    """The `error` frame that lets the parent raise an equivalent exception."""
    if isinstance(exc, SdtuiError):
        return {
            "call": call,
            "type": "error",
            "error": type(exc).__name__,
            "message": exc.message,
            "hint": exc.hint,
            "field": getattr(exc, "field", None),
        }
    text = (str(exc).strip().splitlines() or [""])[0]
    return {
        "call": call,
        "type": "error",
        "error": "SdtuiError",
        "message": f"unexpected error in the engine: {type(exc).__name__}: {text}",
        "hint": "",
        "field": None,
    }


def error_from_frame(frame: dict[str, Any]) -> SdtuiError:
    """The exception an `error` frame describes (a plain SdtuiError for unknown names)."""
    name = str(frame.get("error", ""))
    message = str(frame.get("message", "the engine failed"))
    hint = str(frame.get("hint", "") or "")
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, SdtuiError)):
        return SdtuiError(message, hint)
    if cls is GenerationCancelled:
        return GenerationCancelled(message)
    # Subclasses take different constructor arguments (ValidationError: field,
    # message); build the instance directly so the message stays exactly as sent.
    exc = cls.__new__(cls)
    SdtuiError.__init__(exc, message, hint)
    if isinstance(exc, ValidationError):
        exc.field = str(frame.get("field") or "")
    return exc
