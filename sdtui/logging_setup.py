"""The log file: what went wrong, with tracebacks, readable only by its owner.

`setup_logging()` sends Python logging (ours and the libraries' warnings) to a
rotating `sdtui.log` in `sdtui.config.log_dir()`: the folder is created 0700,
every file 0600. Hugging Face tokens never reach it: the `HF_TOKEN` value and
anything shaped like a token (`hf_` and 20+ letters or digits) are replaced
in messages and tracebacks before they are written.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from sdtui.config import ensure_private_dir, log_dir
from sdtui.display import printable

LOG_NAME = "sdtui.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 3
REDACTED = "<token>"
_TOKEN_SHAPE = re.compile(r"hf_[A-Za-z0-9]{20,}")
_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"

log = logging.getLogger("sdtui")


def _clean(text: str) -> str:
    """Redacted, and printable: a file name in a message must not drive the terminal
    of whoever reads the log, nor fail its UTF-8 encoding."""
    return printable(redact(text))


def redact(text: str) -> str:
    """`text` with every Hugging Face token replaced by <token>."""
    for name in _TOKEN_VARIABLES:
        value = os.environ.get(name, "").strip()
        if len(value) >= 4:  # a one-letter "token" would blank out ordinary words
            text = text.replace(value, REDACTED)
    return _TOKEN_SHAPE.sub(REDACTED, text)


class RedactTokenFilter(logging.Filter):
    """Rewrites each record so neither its message nor its traceback holds a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = _clean(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = _clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None  # formatted above; never formatted again unredacted
        if record.stack_info:
            record.stack_info = _clean(record.stack_info)
        return True


class _RedactingFormatter(logging.Formatter):
    """A last guard: whatever a handler formats is redacted again."""

    def format(self, record: logging.LogRecord) -> str:
        return _clean(super().format(record))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are created 0600 (the rotated ones too)."""

    def _open(self) -> Any:
        # Never through a symbolic link: the mode change below would hit its target.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.baseFilename, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)  # a file left by an older version may be wider
        except OSError:
            pass
        return os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors)


def log_path() -> Path:
    return log_dir() / LOG_NAME


_lock = threading.Lock()
_handler: PrivateRotatingFileHandler | None = None


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Start writing the log file (once per process); returns its path, None when
    the folder cannot be written (sdtui then runs without a log file)."""
    global _handler
    with _lock:
        path = log_path()
        if _handler is not None and Path(_handler.baseFilename) == path.absolute():
            return path
        try:
            ensure_private_dir(path.parent)
            handler = PrivateRotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=False
            )
        except OSError:
            return None
        handler.addFilter(RedactTokenFilter())
        handler.setFormatter(_RedactingFormatter(_FORMAT))
        handler.setLevel(logging.DEBUG)
        root = logging.getLogger()
        if _handler is not None:
            root.removeHandler(_handler)
            _handler.close()
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)  # libraries: warnings and worse
        log.setLevel(level)
        # Library warnings go to the file: on the terminal they would tear the app's
        # screen, or bury the one line that says what failed.
        logging.captureWarnings(True)
        _handler = handler
        _install_exception_hooks()
        return path


def stop_logging() -> None:
    """Close the log file (tests, and before the log folder is moved)."""
    global _handler
    with _lock:
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler.close()
            _handler = None
            logging.captureWarnings(False)


def _install_exception_hooks() -> None:
    """Uncaught exceptions, in the main thread or a worker, end up in the log too."""
    if getattr(sys.excepthook, "_sdtui", False):
        return
    previous_hook = sys.excepthook
    previous_thread_hook = threading.excepthook

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            log.critical("uncaught exception", exc_info=(kind, value, tb))
        previous_hook(kind, value, tb)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit and args.exc_value is not None:
            log.critical(
                "uncaught exception in thread %s",
                getattr(args.thread, "name", "?"),
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )
        previous_thread_hook(args)

    excepthook._sdtui = True  # type: ignore[attr-defined]
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
