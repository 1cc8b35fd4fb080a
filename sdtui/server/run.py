"""Running the app under uvicorn: the listening socket, a clean stop on SIGTERM or Ctrl+C."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from sdtui.errors import SdtuiError
from sdtui.server.app import create_app
from sdtui.server.common import ServerConfig
from sdtui.service.service import JobQueue


def listen(host: str, port: int) -> socket.socket:
    """The bound socket, or a one-line error (port in use, unknown address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise SdtuiError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "choose another --port or --host",
        ) from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """Stops the engine first on a signal, so open event streams end and the server can close."""

    def __init__(self, config: uvicorn.Config, service: JobQueue | None) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: Any) -> None:
        # The running job stops after its current step; finished images were already sent.
        if self.service is not None:
            threading.Thread(target=self.service.close, name="sdtui-close", daemon=True).start()
        super().handle_exit(sig, frame)


def make_server(
    app: Any, service: JobQueue | None, log_level: str = "warning"
) -> uvicorn.Server:
    uv_config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=60,
        server_header=False,
    )
    return _Server(uv_config, service)


def serve(
    service: JobQueue,
    config: ServerConfig,
    sock: socket.socket,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl+C; then finish the current step, close and return."""
    server = make_server(create_app(service, config), service)
    if on_ready is not None:
        on_ready(url_of(sock))
    # uvicorn raises the signal again once it has stopped; a no-op handler makes that
    # a clean return instead of death by SIGTERM.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.close(timeout=120)


class ServerThread:
    """An app served on a background thread (tests and benchmarks on loopback)."""

    def __init__(self, app: Any, service: JobQueue | None = None, host: str = "127.0.0.1"):
        self.sock = listen(host, 0)
        self.url = url_of(self.sock)
        self.server = make_server(app, service)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()
