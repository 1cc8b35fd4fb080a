"""The bare `sdtui` command: open the terminal app."""

from __future__ import annotations

import argparse

from sdtui.cli.common import settings_from_args


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)  # bad flags/config fail here, before the screen opens
    # Importing the app imports textual_image.widget, which asks the terminal what
    # graphics it supports: this must happen before Textual takes the terminal over.
    from sdtui.tui.app import SdtuiApp

    app = SdtuiApp(settings, theme=getattr(args, "theme", None))
    app.run()
    return app.return_code or 0
