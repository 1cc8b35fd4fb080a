"""The Starlette application of `sdtui serve`: sdtui's API, A1111's and Hugging Face's."""

from __future__ import annotations

from starlette.applications import Starlette

from sdtui.server import a1111, hf, own_api
from sdtui.server.common import EXCEPTION_HANDLERS, ServerConfig
from sdtui.service.service import JobQueue


def create_app(service: JobQueue, config: ServerConfig) -> Starlette:
    """The app over a running service (an `EngineService`, or the Ray backend's queue);
    closing the service is the caller's job."""
    app = Starlette(
        routes=[*own_api.ROUTES, *a1111.ROUTES, *hf.ROUTES],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.service = service
    app.state.config = config
    return app
