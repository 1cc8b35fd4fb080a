"""`HttpClient`: the `EngineClient` protocol over HTTP, to a running `sdtui serve`."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx

from sdtui.params import GenerationRequest
from sdtui.remote.errors import ServerGoneError, explain_response
from sdtui.server.auth import CLIENT_HEADER
from sdtui.service.events import FINAL_TYPES, Event, event_from_dict
from sdtui.service.service import JobInfo
from sdtui.service.sse import parse_sse

# The server sends a keep-alive every few seconds; silence this long means it is gone.
READ_TIMEOUT = 60.0


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class HttpClient:
    """Talks to one sdtui server as one client (a random id keeps its jobs its own)."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 30.0,
        client_id: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id or secrets.token_urlsafe(18)
        headers = {CLIENT_HEADER: self.client_id, **auth_headers(token)}
        self._http = httpx.Client(
            base_url=self.url, headers=headers,
            timeout=httpx.Timeout(timeout, read=READ_TIMEOUT),
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerGoneError(f"cannot reach {self.url}: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise explain_response(self.url, response)
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def models(self) -> dict[str, Any]:
        return self._call("GET", "/v1/models")

    def submit(self, request: GenerationRequest) -> str:
        return str(self._call("POST", "/v1/jobs", json=request.to_dict())["job"])

    def cancel(self, job_id: str) -> bool:
        return bool(self._call("DELETE", f"/v1/jobs/{job_id}")["cancelled"])

    def jobs(self) -> list[JobInfo]:
        return [
            JobInfo(
                j["id"], j["state"], j["position"], GenerationRequest.from_dict(j["request"]),
                j["images"], j["created"], j.get("message", ""),
            )
            for j in self._call("GET", "/v1/jobs")["jobs"]
        ]

    def events(self, job_id: str, after: int = 0) -> Iterator[Event]:
        """The job's events; a dropped line is picked up once where it broke off."""
        index, retried = after, False
        while True:
            try:
                with self._http.stream("GET", f"/v1/jobs/{job_id}/events?after={index}") as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        raise explain_response(self.url, resp)
                    for event_id, data in parse_sse(resp.iter_lines()):
                        event = event_from_dict(data)
                        index = event_id if event_id is not None else index + 1
                        yield event
                        if event.type in FINAL_TYPES:
                            return
            except httpx.HTTPError as exc:
                if retried:
                    raise ServerGoneError(
                        f"the server at {self.url} went away: {_reason(exc)}"
                    ) from None
            if retried:
                raise ServerGoneError(f"the server at {self.url} closed the stream mid-job")
            retried = True


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
