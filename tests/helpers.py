"""Small helpers shared by the tests that drive the app or look into the gallery."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def gallery_pngs(folder: Path) -> list[Path]:
    """The images of a gallery folder, without its index, thumbnails and trash."""
    return sorted(p for p in folder.rglob("*.png") if not {".sdtui", ".trash"} & set(p.parts))


async def wait_until(pilot: Any, condition: Any, rounds: int = 1200) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the app did not get there")


async def idle(pilot: Any, app: Any) -> None:
    """Wait until the start-up model load has begun and every job is done."""
    await wait_until(
        pilot,
        lambda: app.status.state != "starting" and not app.jobs.busy and not app.jobs.pending,
    )
    await pilot.pause()


# What `sdtui generate` prints on stderr as it goes when stderr is no terminal
# (so a slow start never looks hung): stages, not messages.
_STAGE_LINES = re.compile(
    r"sdtui: (starting the engine|loading |moving the model|ready: |image \d+/\d+)"
)


def messages(err: str) -> list[str]:
    """The lines of `sdtui generate`'s stderr that are not progress stages."""
    return [line for line in err.splitlines() if line.strip() and not _STAGE_LINES.match(line)]
