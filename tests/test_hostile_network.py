"""No network: one DNS lookup of the hub's host, then one line, not half a minute of retries."""

from __future__ import annotations

import socket

import pytest

from sdtui.engine import loader
from sdtui.errors import ModelOfflineError


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    looked_up: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def connect(self, address):
        raise AssertionError(f"tried to connect to {address}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return looked_up


def test_an_uncached_hub_model_fails_at_once(no_dns: list[str], monkeypatch) -> None:
    import torch

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.invalid")
    source = loader.ModelSource("nobody/nothing", "hub", "nobody/nothing")
    with pytest.raises(ModelOfflineError, match="the hub cannot be reached"):
        loader.load_pipeline(source, torch.float32)
    # sdtui's one lookup (the hub client may try its own, which fails as fast)
    assert no_dns and set(no_dns) == {"hub.example.invalid"}


def test_the_lookup_reads_hf_endpoint(no_dns: list[str], monkeypatch) -> None:
    assert loader.hub_resolves() is False
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.local:8080/hf")
    assert loader.hub_resolves() is False
    assert no_dns == ["huggingface.co", "mirror.local"]


def test_a_resolving_host_goes_on(monkeypatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [("ok",)])
    assert loader.hub_resolves() is True
