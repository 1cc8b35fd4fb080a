"""`sdtui serve --ray` flags: refused clearly before anything starts; the replica count."""

from __future__ import annotations

import importlib.util

import pytest
from ray_helpers import ray_installed

from sdtui.cli import main
from sdtui.errors import ValidationError


def test_without_ray_installed_it_says_how_to_install_it(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    assert main(["serve", "--ray", "--model", "demo"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'sdtui[ray]'" in lines[0]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--replicas", "2"], "--replicas: needs --ray"),
        (["--ray-address", "auto"], "--ray-address: needs --ray"),
        (["--ray", "--replicas", "2", "--min-replicas", "1"], "not both"),
        (["--ray", "--replicas", "0"], "at least 1"),
        (["--ray", "--min-replicas", "3", "--max-replicas", "2"], "below --min-replicas 3"),
    ],
)
def test_bad_ray_flags_exit_2_with_one_line(flags, words, capsys):
    if "--ray" in flags and not ray_installed():
        pytest.skip("Ray is not installed: pip install 'sdtui[ray]'")
    assert main(["serve", "--model", "demo", *flags]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


@pytest.mark.skipif(not ray_installed(), reason="Ray is not installed: pip install 'sdtui[ray]'")
def test_replica_counts_one_per_gpu_unless_told():
    from sdtui.server.ray_backend import RaySettings

    assert RaySettings().scaling(gpus_in_cluster=8) == (8, 8)
    assert RaySettings(replicas=3).scaling(8) == (3, 3)
    assert RaySettings(min_replicas=2).scaling(8) == (2, 8)
    assert RaySettings(max_replicas=4).scaling(8) == (1, 4)
    assert RaySettings(gpus_per_replica=2).scaling(8) == (4, 4)
    assert RaySettings(gpus_per_replica=0).scaling(0) == (1, 1)
    with pytest.raises(ValidationError):
        RaySettings(min_replicas=0)
