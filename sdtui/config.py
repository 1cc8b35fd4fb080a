"""Settings: defaults, then the TOML config file, then SDTUI_* variables, then flags.

Stdlib and platformdirs only. Every setting has a config key, an environment
variable (`SDTUI_` + the key in capitals) and, where it makes sense, a flag.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from sdtui.display import path_text
from sdtui.errors import ValidationError
from sdtui.regular_files import NotRegularFileError, read_regular_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

APP_NAME = "sdtui"

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "fp16", "bf16")
RENDERERS = ("auto", "tgp", "sixel", "halfcell", "unicode")
# Sections of the config file that other modules read as tables.
TABLES = ("keys", "performance", "prompts")


def config_dir() -> Path:
    return Path(os.environ.get("SDTUI_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME))


def config_path() -> Path:
    return Path(os.environ.get("SDTUI_CONFIG") or config_dir() / "config.toml")


def cache_dir() -> Path:
    return Path(os.environ.get("SDTUI_CACHE_DIR") or platformdirs.user_cache_dir(APP_NAME))


def log_dir() -> Path:
    return Path(os.environ.get("SDTUI_LOG_DIR") or platformdirs.user_log_dir(APP_NAME))


def default_gallery_dir() -> Path:
    return Path(platformdirs.user_pictures_dir()) / APP_NAME


def default_addon_dir(kind: str) -> Path:
    """Where LoRAs ("loras") or embeddings ("embeddings") live unless set."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / kind


def ensure_private_dir(path: Path) -> Path:
    """Make sure `path` is a folder; the folders created here are readable by their owner only.

    A GPU box is often shared, so what sdtui creates is 0700. A folder that
    already exists is the user's (a shared or setgid folder, /tmp...): its mode
    is left exactly as it is.
    """
    missing: list[Path] = []
    current = Path(path)
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue  # made by another process at the same moment: not ours either
        try:
            os.chmod(folder, 0o700)  # a umask such as 0o277 would leave it unusable
        except OSError:
            pass
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path))
    return path


@dataclass(frozen=True)
class Settings:
    """Everything a front end needs to start; built by `load_settings`."""

    gallery: Path = field(default_factory=default_gallery_dir)
    model: str = "sd15"
    device: str = "auto"
    dtype: str = "auto"
    renderer: str = "auto"
    theme: str = "sdtui-dark"
    allow_pickle: bool = False
    loras: Path = field(default_factory=lambda: default_addon_dir("loras"))
    embeddings: Path = field(default_factory=lambda: default_addon_dir("embeddings"))
    in_process: bool = False  # run the app's engine on a thread instead of its own process
    extra: dict[str, Any] = field(default_factory=dict)  # sections other modules own

    def section(self, name: str) -> dict[str, Any]:
        """A table of the config file (e.g. [keys], [performance]) or an empty dict."""
        value = self.extra.get(name, {})
        return value if isinstance(value, dict) else {}


def _coerce(name: str, value: object) -> object:
    if name in ("gallery", "loras", "embeddings"):
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise ValidationError(name, "must be a folder path")
        return Path(os.path.expanduser(str(value)))
    if name in ("allow_pickle", "in_process"):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValidationError(name, f"must be true or false, got {value!r}")
    if not isinstance(value, str):
        raise ValidationError(name, f"must be text, got {value!r}")
    value = value.strip()
    allowed = {"device": DEVICES, "dtype": DTYPES, "renderer": RENDERERS}.get(name)
    if allowed and value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    if not value:
        raise ValidationError(name, "is empty")
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """The parsed TOML file, {} when it does not exist; ValidationError when it is broken."""
    shown = path_text(path)
    try:
        text = read_regular_text(path)
    except FileNotFoundError:
        return {}
    except NotRegularFileError as exc:
        raise ValidationError("config", f"{shown} {exc}") from None
    except OSError as exc:
        raise ValidationError("config", f"cannot read {shown}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError("config", f"{shown} is not UTF-8 text") from None
    try:
        parsed: dict[str, Any] = tomllib.loads(text)
        return parsed
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("config", f"{shown} is not valid TOML: {exc}") from None
    except RecursionError:  # tables or arrays nested thousands deep
        raise ValidationError("config", f"{shown} is nested too deeply") from None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Settings:
    """Defaults < config file < SDTUI_* environment < `overrides` (flags; None = not given)."""
    env = os.environ if env is None else env
    names = [f.name for f in dataclasses.fields(Settings) if f.name != "extra"]
    data = read_config_file(path or config_path())
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in names:
            try:
                values[key] = _coerce(key, value)
            except ValidationError as exc:
                raise ValidationError(f"config {key}", str(exc).split(": ", 1)[1]) from None
        elif key in TABLES and not isinstance(value, dict):
            raise ValidationError(
                f"config {key}", f"must be a table ([{key}] and its settings), got {value!r}"
            )
        else:
            extra[key] = value
    for key in names:
        env_value = env.get(f"SDTUI_{key.upper()}")
        if env_value:
            try:
                values[key] = _coerce(key, env_value)
            except ValidationError as exc:
                raise ValidationError(f"SDTUI_{key.upper()}", str(exc).split(": ", 1)[1]) from None
    for key, value in (overrides or {}).items():
        if value is not None and key in names:
            values[key] = _coerce(key, value)
    return Settings(**values, extra=extra)
