"""The bare `sdtui` command: open the terminal app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from sdtui.cli.common import check_gallery_folder, settings_from_args


def run(args: argparse.Namespace) -> int:
    from sdtui.engine import performance

    settings = settings_from_args(args)  # bad flags/config fail here, before the screen opens
    check_gallery_folder(settings)
    options = performance.performance_from_settings(settings, args)
    # Importing the app imports textual_image.widget, which asks the terminal what
    # graphics it supports: this must happen before Textual takes the terminal over.
    from sdtui.tui.app import SdtuiApp
    from sdtui.tui.runner import default_engine_factory

    def make_engine(s: Any) -> Any:
        return default_engine_factory(s, options=options)

    engine: Any = None
    if getattr(args, "server", None):
        # A shared server's engine: the model field shows what it serves.
        from sdtui.cli.remote import server_token
        from sdtui.remote.app_engine import ServerEngine

        engine = ServerEngine(args.server, server_token(args))
        settings = dataclasses.replace(settings, model=engine.served_model())
    elif not settings.in_process:
        # The engine process starts now, in the background, while the app paints.
        engine = make_engine(settings)
    app = SdtuiApp(
        settings,
        theme=getattr(args, "theme", None),
        engine_factory=(lambda s: engine) if engine is not None else make_engine,
    )
    app.hard_exit = _hard_exit
    try:
        with _hangup_stops(app):
            app.run()
    finally:
        if engine is not None:
            engine.close()  # the engine process ends with the app
    if app.hung_up:
        # No terminal to flush to at interpreter exit, and nothing left to wait for.
        _hard_exit()
    return app.return_code or 0


def _hard_exit() -> None:
    """Leave now (after a hang-up): logs flushed, the device freed with the process,
    even while a worker thread is still inside a model load."""
    logging.shutdown()
    os._exit(0)


@contextlib.contextmanager
def _hangup_stops(app: Any) -> Iterator[None]:
    """On SIGHUP (the SSH session dropped) cancel the running image cleanly and quit,
    instead of dying part way through a save."""
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_hangup(signum: int, frame: Any) -> None:
        # The handler runs on the app's own thread, between two steps of its loop.
        app.start_exit_deadline()
        try:
            asyncio.get_running_loop().call_soon_threadsafe(app.hangup)
        except RuntimeError:  # the loop is not running (yet, or any more)
            raise SystemExit(129) from None

    previous = signal.signal(hangup, on_hangup)
    try:
        yield
    finally:
        signal.signal(hangup, previous)
