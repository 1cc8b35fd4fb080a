"""A served demo engine for the server tests: the app, a test client, and SSE reading."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from starlette.testclient import TestClient

from sdtui.server.app import create_app
from sdtui.server.common import ServerConfig
from sdtui.service import EngineService, event_from_dict
from sdtui.service.sse import parse_sse

TOKEN = "s3cret-token-for-tests-0123456789"


def make_app(engine: Any, model_dir: Path, token: str | None = None, **limits: Any) -> Any:
    service_limits = {k: limits.pop(k) for k in ("max_queue", "max_per_owner") if k in limits}
    service = EngineService(engine, models=(str(model_dir),), **service_limits)
    config = ServerConfig(model=str(model_dir), token=token, aliases=("demo",), **limits)
    return create_app(service, config)


def client_for(app: Any, client_id: str | None = None, token: str | None = None) -> TestClient:
    headers = {}
    if client_id:
        headers["X-Sdtui-Client"] = client_id
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return TestClient(app, client=("127.0.0.1", 40000), headers=headers)


def read_events(client: TestClient, job: str, after: int = 0) -> list[Any]:
    with client.stream("GET", f"/v1/jobs/{job}/events?after={after}") as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [event_from_dict(data) for _, data in parse_sse(response.iter_lines())]


def pixels(png: bytes) -> bytes:
    return PILImage.open(io.BytesIO(png)).convert("RGB").tobytes()


def demo_request(**changes: Any) -> dict[str, Any]:
    fields = {"prompt": "a red fox", "steps": 3, "width": 64, "height": 64, "seed": 11,
              "scheduler": "Euler"}
    fields.update(changes)
    return fields


def allow_inference_client(monkeypatch: Any) -> None:
    """InferenceClient refuses every URL, loopback too, while the hub is offline;
    the flag is read once at import, so the module's copy is turned off as well."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
