"""`sdtui bench --suite gpu`: its CPU path on the demo architecture, so the GPU table cannot rot."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest
import torch

from sdtui.bench.suite import VARIANTS
from sdtui.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def suite_report(demo_model_dir, session_cache_dir) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDTUI_CACHE_DIR", str(session_cache_dir))
        argv = ["bench", "--suite", "gpu", "--device", "cpu", "--arch", "demo"]
        argv += ["--steps", "2", "--repeats", "1", "--json"]
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(argv) == 0
        return json.loads(out.getvalue())


def test_suite_lists_plain_sdtui_and_every_fast_path(suite_report) -> None:
    assert suite_report["suite"] == "gpu" and suite_report["device"] == "cpu"
    (case,) = suite_report["cases"]
    assert case["arch"] == "demo" and case["size"] == "64x64" and case["steps"] == 2
    names = [row["name"] for row in case["rows"]]
    assert names == ["sdtui default", "sdtui default + previews", *VARIANTS]
    rows = {row["name"]: row for row in case["rows"]}
    for name in ("sdtui default", "sdtui default + previews", "channels-last", "fused-qkv"):
        row = rows[name]
        assert row["status"] == "measured"
        assert row["seconds_per_image"] > 0 and row["plain_seconds_per_image"] > 0
        assert row["it_per_s"] == pytest.approx(2 / row["seconds_per_image"], rel=0.01)
        assert row["ratio_to_plain"] > 0 and row["peak_memory_mb"] > 10
    # Compiling and the quantized kernels are GPU work: named as skipped, never dropped.
    for name in ("compile", "compile-cudagraphs", "int8", "fp8"):
        assert rows[name]["status"].startswith("skipped on cpu")


def test_sdtui_default_paints_what_plain_diffusers_paints(suite_report) -> None:
    rows = {row["name"]: row for row in suite_report["cases"][0]["rows"]}
    assert rows["sdtui default"]["max_pixel_difference"] <= 1
    assert rows["sdtui default + previews"]["max_pixel_difference"] <= 1
    # Fusing the attention projections reorders float sums, nothing more.
    assert rows["fused-qkv"]["max_pixel_difference"] <= 2


def test_suite_table_for_people(demo_model_dir, capsys) -> None:
    argv = ["bench", "--suite", "gpu", "--device", "cpu", "--arch", "demo"]
    assert main([*argv, "--steps", "1", "--repeats", "1", "--modes", "none"]) == 0
    table = capsys.readouterr().out
    assert "demo (sd1) 64x64, 1 steps" in table
    assert "sdtui default + previews" in table and "vs plain" in table


def test_spent_budget_skips_the_rest_by_name(demo_model_dir, capsys) -> None:
    argv = ["bench", "--suite", "gpu", "--device", "cpu", "--arch", "demo", "--json"]
    argv += ["--steps", "1", "--repeats", "1", "--budget", "0.001", "--modes", "fused-qkv"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["cases"][0]["rows"]
    assert [row["name"] for row in rows] == [
        "sdtui default",
        "sdtui default + previews",
        "fused-qkv",
    ]
    assert rows[-1]["status"] == "skipped: the 0.001 s budget was spent"


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--device", "cpu"], "suite"),  # SD 1.5 and SDXL on a CPU: name an architecture
        (["--model", "demo"], "suite"),
        (["--device", "cpu", "--arch", "demo", "--modes", "turbo"], "modes"),
        (["--device", "cpu", "--arch", "demo", "--size", "64x128"], "size"),
        (["--device", "cpu", "--arch", "demo", "--budget", "0"], "budget"),
    ],
)
def test_suite_refuses_what_it_cannot_run(argv, field, capsys) -> None:
    assert main(["bench", "--suite", "gpu", *argv]) == 2
    assert field in capsys.readouterr().err
