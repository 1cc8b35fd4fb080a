"""The bare `sdtui` command: open the terminal app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from sdtui.cli.common import settings_from_args


def run(args: argparse.Namespace) -> int:
    from sdtui.engine import performance

    settings = settings_from_args(args)  # bad flags/config fail here, before the screen opens
    options = performance.performance_from_settings(settings, args)
    # Importing the app imports textual_image.widget, which asks the terminal what
    # graphics it supports: this must happen before Textual takes the terminal over.
    from sdtui.tui.app import SdtuiApp
    from sdtui.tui.runner import default_engine_factory

    def make_engine(s: Any) -> Any:
        return default_engine_factory(s, options=options)

    # The engine process starts now, in the background, while the app paints.
    engine = None if settings.in_process else make_engine(settings)
    app = SdtuiApp(
        settings,
        theme=getattr(args, "theme", None),
        engine_factory=(lambda s: engine) if engine is not None else make_engine,
    )
    try:
        with _hangup_stops(app):
            app.run()
    finally:
        if engine is not None:
            engine.close()  # the engine process ends with the app
    return app.return_code or 0


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
        try:
            asyncio.get_running_loop().call_soon_threadsafe(app.hangup)
        except RuntimeError:  # the loop is not running (yet, or any more)
            raise SystemExit(129) from None

    previous = signal.signal(hangup, on_hangup)
    try:
        yield
    finally:
        signal.signal(hangup, previous)
