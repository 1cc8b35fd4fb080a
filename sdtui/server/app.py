"""The Starlette application of `sdtui serve`: sdtui's API, A1111's and Hugging Face's."""

from __future__ import annotations

from starlette.applications import Starlette

from sdtui.server import a1111, hf, own_api
from sdtui.server.common import EXCEPTION_HANDLERS, ServerConfig
from sdtui.service import EngineService


def create_app(service: EngineService, config: ServerConfig) -> Starlette:
    """The app over a running service; closing the service is the caller's job."""
    app = Starlette(
        routes=[*own_api.ROUTES, *a1111.ROUTES, *hf.ROUTES],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.service = service
    app.state.config = config
    return app
