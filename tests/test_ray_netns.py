"""Runs the `ray` tests inside a private network namespace, so no Ray traffic leaves loopback.

Ray binds some services to this machine's outside address even when told
127.0.0.1; in a namespace of its own (`unshare -n`, only `lo` up) there is no
outside address to bind. The Ray there is started and stopped by the tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ray_helpers import IN_NETNS, ray_installed

pytestmark = pytest.mark.ray

TESTS = Path(__file__).parent
RAY_TEST_FILES = ("test_server_api.py", "test_server_compat.py", "test_ray_serve.py")
# `sh` brings up loopback in the new namespace, then becomes pytest.
IN_NAMESPACE = 'ip link set lo up && exec "$0" -m pytest "$@"'


def _can_unshare() -> str:
    """"" when a private network namespace can be made here, else why not."""
    try:
        probe = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return "" if probe.returncode == 0 else (probe.stderr.strip() or "unshare -n failed")


def test_the_ray_tests_pass_in_a_private_network_namespace():
    if IN_NETNS:
        pytest.skip("already inside the namespace")
    if not ray_installed():
        pytest.skip("Ray is not installed: pip install 'sdtui[ray]'")
    why = _can_unshare()
    if why:
        pytest.skip(f"cannot make a private network namespace (unshare -n): {why}")
    env = dict(
        os.environ, SDTUI_RAY_NETNS="1", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled"
    )
    command = [
        "unshare", "-n", "sh", "-c", IN_NAMESPACE, sys.executable,
        "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "ray",
        *(str(TESTS / name) for name in RAY_TEST_FILES),
    ]
    result = subprocess.run(
        command, env=env, cwd=TESTS.parent, capture_output=True, text=True, timeout=540
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 20, summary
    assert "skipped" not in summary and "failed" not in summary, output[-3000:]
