"""The session file: prompt, fields and queue, kept between runs of the app.

Written atomically (a temporary file renamed over the old one) and readable by
its owner only, in the state folder (`SDTUI_STATE_DIR`, else platformdirs'
user state folder). A file that cannot be read is moved aside, never lost.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from sdtui.config import APP_NAME, ensure_private_dir
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest

log = logging.getLogger(__name__)

SESSION_FILE = "session.json"
VERSION = 1


def state_dir() -> Path:
    return Path(os.environ.get("SDTUI_STATE_DIR") or platformdirs.user_state_dir(APP_NAME))


def session_path() -> Path:
    return state_dir() / SESSION_FILE


@dataclass
class Session:
    """What the main screen held: the two prompts, each field as typed, the queue."""

    prompt: str = ""
    negative: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    seed_locked: bool = False
    styles: list[str] = field(default_factory=list)  # applied to the prompt when queued
    queue: list[GenerationRequest] = field(default_factory=list)
    # False while the app runs: a file still False at the next start means the
    # last run ended without saying goodbye (a crash, a kill, a hang-up).
    clean_exit: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "prompt": self.prompt,
            "negative": self.negative,
            "fields": dict(self.fields),
            "seed_locked": self.seed_locked,
            "styles": list(self.styles),
            "queue": [request.to_dict() for request in self.queue],
            "clean_exit": self.clean_exit,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        """The session in `data`; ValueError when it is not one."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError("not an sdtui session (unknown version)")
        fields = data.get("fields", {})
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
        ):
            raise ValueError("fields must be text")
        prompt, negative = data.get("prompt", ""), data.get("negative", "")
        if not isinstance(prompt, str) or not isinstance(negative, str):
            raise ValueError("the prompts must be text")
        styles = data.get("styles", [])
        if not isinstance(styles, list) or not all(isinstance(n, str) for n in styles):
            raise ValueError("styles must be a list of names")
        queue = data.get("queue", [])
        if not isinstance(queue, list):
            raise ValueError("the queue must be a list")
        requests = []
        for item in queue:
            if not isinstance(item, dict):
                raise ValueError("a queued request must be an object")
            try:
                requests.append(GenerationRequest.from_dict(item))
            except (ValidationError, TypeError) as exc:
                raise ValueError(f"a queued request is bad: {exc}") from None
        return cls(
            prompt=prompt,
            negative=negative,
            fields=fields,
            seed_locked=bool(data.get("seed_locked", False)),
            styles=styles,
            queue=requests,
            clean_exit=bool(data.get("clean_exit", True)),
        )


def load_session(path: Path | None = None) -> tuple[Session | None, str]:
    """The saved session (None when there is none) and a message for the user when
    the file was damaged and moved aside ("" otherwise)."""
    path = path or session_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError) as exc:
        return None, _set_aside(path, str(exc))
    try:
        return Session.from_dict(json.loads(text)), ""
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return None, _set_aside(path, str(exc))


def _set_aside(path: Path, why: str) -> str:
    aside = path.with_name(f"{path.stem}.damaged-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        log.warning("could not move the damaged session %s aside: %s", path, exc)
        return f"the saved session {path} cannot be read ({why}); starting afresh"
    log.warning("damaged session %s moved to %s: %s", path, aside, why)
    return f"the saved session could not be read ({why}); kept as {aside.name}, starting afresh"


def save_session(session: Session, path: Path | None = None) -> None:
    """Write the session atomically, mode 0600. OSError when the folder refuses it."""
    path = path or session_path()
    folder = ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".session-", suffix=".tmp", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(session.to_dict(), fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
