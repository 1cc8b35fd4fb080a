"""Failures talking to a remote engine, each explained in one line."""

from __future__ import annotations

from typing import Any

from sdtui.errors import SdtuiError


class ServerError(SdtuiError):
    """The server answered, but refused or failed the request."""

    def __init__(self, message: str, status: int = 0, hint: str = "") -> None:
        super().__init__(message, hint)
        self.status = status
        if 400 <= status < 500 and status not in (401, 404, 429):
            self.exit_code = 2  # bad input, as locally


class ServerGoneError(SdtuiError):
    """The server cannot be reached, or went away in the middle of a job."""


def explain_response(url: str, response: Any) -> ServerError:
    """The one-line error for an HTTP answer that is not a success."""
    try:
        body = response.json()
        text = body.get("error") or body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        text = None
    text = str(text or response.text[:200] or response.reason_phrase).strip()
    status = response.status_code
    if status == 401:
        return ServerError(
            f"{url} refused the token ({text})", status,
            "give the server's token with --token-file or SDTUI_SERVER_TOKEN",
        )
    if status == 429:
        retry = response.headers.get("retry-after", "")
        hint = f"try again in {retry} s" if retry else "try again later"
        return ServerError(f"{url} is busy: {text}", status, hint)
    return ServerError(f"{url}: {text}", status)
