"""Tokens, loopback and the `sdtui serve` command line, without starting a server."""

from __future__ import annotations

import argparse
import base64
import socket
import stat

import pytest

from sdtui.cli import main
from sdtui.cli.serve import _token
from sdtui.server.auth import (
    TokenFileError,
    is_loopback,
    load_or_create_token,
    owner_of,
    token_matches,
)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("::", False),
     ("gpu-box.example.org", False)],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_a_new_token_file_is_random_and_private(tmp_path):
    path = tmp_path / "token"
    token, created = load_or_create_token(path)
    assert created and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == (token, False)
    other, _ = load_or_create_token(tmp_path / "other")
    assert other != token


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "token"
    path.write_text("a-long-enough-token-value\n")
    path.chmod(0o644)
    with pytest.raises(TokenFileError, match="chmod 600"):
        load_or_create_token(path)
    path.chmod(0o600)
    path.write_text("short")
    with pytest.raises(TokenFileError, match="shorter"):
        load_or_create_token(path)


def test_token_comparison():
    token = "t" * 43
    basic = base64.b64encode(f"me:{token}".encode()).decode()
    assert token_matches(f"Bearer {token}", token)
    assert token_matches(f"Basic {basic}", token)
    for header in (None, "", "Bearer", f"Bearer {token}x", f"bearer {token[:-1]}", "Basic !!"):
        assert not token_matches(header, token)


def test_owners_come_from_the_client_id_or_the_address():
    assert owner_of("abc", "1.2.3.4") == owner_of("abc", "5.6.7.8")
    assert owner_of(None, "1.2.3.4") != owner_of(None, "5.6.7.8")
    assert owner_of("x" * 500, "1.2.3.4") == owner_of(None, "1.2.3.4")  # oversized id ignored


def test_serving_off_loopback_creates_a_token_loopback_needs_none(isolated_dirs, capsys):
    assert _token(argparse.Namespace(host="127.0.0.1", token_file=None)) is None
    token = _token(argparse.Namespace(host="0.0.0.0", token_file=None))
    path = isolated_dirs / "config" / "server-token"
    assert token and path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in capsys.readouterr().err  # the path is said, not the token
    given = _token(argparse.Namespace(host="127.0.0.1", token_file=str(isolated_dirs / "t")))
    assert given and given != token


def test_serve_refuses_a_port_in_use_before_loading(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--port", str(port), "--model", "demo"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "loading" not in err


@pytest.mark.parametrize("flags", [["--port", "70000"], ["--max-queue", "0"]])
def test_serve_refuses_bad_limits(flags, capsys):
    assert main(["serve", *flags]) == 2
    assert capsys.readouterr().err.startswith("sdtui: ")
