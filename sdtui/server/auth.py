"""Who may call the server: loopback addresses, the bearer token, and client identity."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from pathlib import Path

from sdtui.errors import SdtuiError

TOKEN_BYTES = 32
CLIENT_HEADER = "x-sdtui-client"  # a random id each client picks, so jobs stay its own
_MAX_CLIENT_ID = 128


class TokenFileError(SdtuiError):
    """The token file cannot be used (unreadable, empty, or readable by others)."""

    exit_code = 2


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: only this machine can connect."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token stored in `path`, creating it (0600, random) when missing; (token, created)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path), False
    except OSError as exc:
        raise TokenFileError(f"cannot create the token file {path}: {exc.strerror}") from None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, True


def _read_token(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TokenFileError(
                f"the token file {path} can be read by other users; run: chmod 600 {path}"
            )
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"the token file {path} is not text") from None
    if len(token) < 16:
        raise TokenFileError(f"the token in {path} is shorter than 16 characters")
    return token


def token_matches(authorization: str | None, token: str) -> bool:
    """Does the Authorization header carry `token`? (Bearer, or Basic with it as password.)

    Compared in constant time, so response times say nothing about the token.
    """
    scheme, _, value = (authorization or "").strip().partition(" ")
    supplied = ""
    if scheme.lower() == "bearer":
        supplied = value.strip()
    elif scheme.lower() == "basic":  # A1111 clients send --api-auth user:password this way
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = ""
        supplied = decoded.partition(":")[2]
    return hmac.compare_digest(supplied.encode("utf-8"), token.encode("utf-8"))


def owner_of(client_id: str | None, remote_host: str | None) -> str:
    """The owner key of a request's jobs: its client id, or else its address.

    Hashed so the key says nothing when it turns up in a log.
    """
    if client_id and len(client_id) <= _MAX_CLIENT_ID:
        source = f"client:{client_id}"
    else:
        source = f"host:{remote_host or 'unknown'}"
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:32]
