"""What every route shares: the server's settings, errors as JSON, bodies read with a cap."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdtui.errors import ValidationError
from sdtui.server.auth import CLIENT_HEADER, owner_of, token_matches
from sdtui.service import Event, JobNotFoundError, QueueFullError
from sdtui.service.service import JobQueue, ServiceClosedError

WAIT_SECONDS = 5.0  # a waiting request wakes this often (keep-alives, disconnect checks)


@dataclass(frozen=True)
class ServerConfig:
    """Limits and identity of one server."""

    model: str  # the one model requests may use, as the server was started with it
    token: str | None = None  # None: no token asked (loopback only)
    max_body_bytes: int = 1_000_000
    max_prompt_chars: int = 4000
    aliases: tuple[str, ...] = field(default=())  # other names of the same model ("demo", ...)


class ApiError(Exception):
    """An HTTP error answered as JSON with a one-line message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    # "error" is what HF clients read, "detail" what FastAPI (A1111) clients read.
    return JSONResponse({"error": message, "detail": message}, status, headers=headers)


async def _api_error(_request: Request, exc: Exception) -> Any:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> Any:
    return error_response(400, str(exc))


async def _queue_full(_request: Request, exc: Exception) -> Any:
    assert isinstance(exc, QueueFullError)
    return error_response(429, str(exc), {"Retry-After": str(exc.retry_after)})


async def _not_found(_request: Request, exc: Exception) -> Any:
    return error_response(404, str(exc))


async def _closed(_request: Request, exc: Exception) -> Any:
    return error_response(503, str(exc), {"Retry-After": "30"})


EXCEPTION_HANDLERS: dict[Any, Callable[..., Any]] = {
    ApiError: _api_error,
    ValidationError: _validation_error,
    QueueFullError: _queue_full,
    JobNotFoundError: _not_found,
    ServiceClosedError: _closed,
}


def service_of(request: Request) -> JobQueue:
    return request.app.state.service


def config_of(request: Request) -> ServerConfig:
    return request.app.state.config


def check_auth(request: Request) -> str:
    """Refuse a request without the right token (when one is set); returns its owner key."""
    token = config_of(request).token
    if token is not None and not token_matches(request.headers.get("authorization"), token):
        raise ApiError(
            401, "a valid token is needed: send 'Authorization: Bearer TOKEN'",
            {"WWW-Authenticate": 'Bearer realm="sdtui"'},
        )
    host = request.client.host if request.client else None
    return owner_of(request.headers.get(CLIENT_HEADER), host)


async def read_json(request: Request) -> Any:
    """The JSON body, refusing one over the size cap before reading it all."""
    limit = config_of(request).max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError(413, f"the body is over the {limit:,}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the body is over the {limit:,}-byte limit")
    try:
        return json.loads(bytes(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON ({exc})") from None


def check_prompt_lengths(request: Request, *texts: str) -> None:
    limit = config_of(request).max_prompt_chars
    for text in texts:
        if len(text) > limit:
            raise ValidationError(
                "prompt", f"is {len(text):,} characters long; this server's limit is {limit:,}"
            )


def model_title(model: str) -> str:
    """The name A1111 clients show and send back: a local file's stem or folder's name
    (never the path on the server), else the hub id or short name as given."""
    path = Path(model).expanduser()
    if not path.exists():
        return model
    return path.stem if path.is_file() else path.name


def served_model(request: Request, asked: Any) -> str:
    """The served model for a request naming `asked` (or nothing); any other is refused.

    Nothing from a request is ever used as a path: only the model the server was
    started with is loaded.
    """
    config = config_of(request)
    if asked in (None, "", config.model, model_title(config.model)) or asked in config.aliases:
        return config.model
    raise ValidationError("model", f"this server serves only {model_title(config.model)!r}")


async def wait_for_end(service: JobQueue, job_id: str, owner: str) -> list[Event]:
    """Every event of a job, waiting (off the event loop) until it has finished."""
    events: list[Event] = []
    while True:
        new, finished = await anyio.to_thread.run_sync(
            service.wait_events, job_id, owner, len(events), WAIT_SECONDS
        )
        events += new
        if finished and not new:
            return events
