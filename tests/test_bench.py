"""`sdtui bench`: runs on the demo model on CPU and reports what it promises."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from sdtui.bench import runner
from sdtui.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo_report(demo_model_dir, session_cache_dir) -> dict:
    """One benchmark of the demo model, shared by the tests that read its fields."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDTUI_CACHE_DIR", str(session_cache_dir))
        config = runner.BenchConfig(arch="demo", steps=3, repeats=2, tui=False)
        return runner.run_benchmark(config)


def test_bench_json_prints_every_field(demo_model_dir, capsys) -> None:
    code = main(
        ["bench", "--arch", "demo", "--json", "--steps", "2", "--repeats", "1"]
        + ["--modes", "none", "--no-tui"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "demo" and report["device"] == "cpu"
    assert report["size"] == "64x64" and report["steps"] == 2
    assert report["load_seconds"] > 0
    assert report["first_image_seconds"] > 0 and report["second_image_seconds"] > 0
    for key in ("plain", "engine", "engine_previews"):
        row = report[key]
        assert row["seconds_per_image"] > 0
        assert row["it_per_s"] == pytest.approx(2 / row["seconds_per_image"], rel=0.01)
        assert row["peak_memory_mb"] > 10  # a whole Python process with torch loaded
    assert report["compared_by"] == "process CPU time"
    engine, plain = report["engine"], report["plain"]
    expected = (engine["cpu_seconds_per_image"] / plain["cpu_seconds_per_image"] - 1) * 100
    assert engine["overhead_pct"] == pytest.approx(expected, abs=0.5)
    assert report["engine"]["target_pct"] == 2.0
    assert report["engine_previews"]["target_pct"] == 5.0
    assert report["engine"]["same_image_as_plain"] is True
    assert report["preview_cost"]["ms_per_frame"] > 0
    assert report["fast_paths"] == {}
    assert report["tui"] == {"note": "left out (--no-tui)"}


def test_fast_paths_on_cpu_are_measured_or_marked(demo_report) -> None:
    paths = demo_report["fast_paths"]
    assert paths["offload-model"] == {"status": "n/a on cpu"}
    assert paths["offload-sequential"] == {"status": "n/a on cpu"}
    assert paths["compile"]["status"].startswith("skipped on cpu")
    for mode in ("classic-attention", "channels-last", "vae-tiling", "vae-slicing"):
        row = paths[mode]
        assert row["status"] == "measured", row
        assert row["time_ratio"] > 0 and row["cpu_seconds_per_image"] > 0
        assert len(row["runs"]) == 2
    assert "no effect" in paths["vae-tiling"]["note"]


def test_runs_are_interleaved_and_medians_reported(demo_report) -> None:
    for key in ("plain", "engine", "engine_previews"):
        runs = demo_report[key]["runs"]
        assert len(runs) == 2
        median = sorted(runs)[0] + (sorted(runs)[1] - sorted(runs)[0]) / 2
        assert demo_report[key]["seconds_per_image"] == pytest.approx(median, abs=1e-4)


def test_fast_paths_leave_the_pipeline_as_they_found_it(demo_model_dir) -> None:
    from sdtui.engine import Engine

    engine = Engine(device="cpu")
    engine.load(str(demo_model_dir))
    pipe = engine.pipeline
    paths = runner._FastPath(pipe, "cpu")
    weight = pipe.unet.conv_in.weight
    for mode in ("classic-attention", "channels-last", "vae-tiling", "vae-slicing"):
        paths.apply(mode)
        paths.revert(mode)
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    assert pipe.unet.conv_in.weight.is_contiguous() and weight.shape == (32, 4, 3, 3)
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing


def test_human_table(demo_report) -> None:
    from sdtui.bench.report import format_report

    text = format_report(demo_report)
    for label in ("plain diffusers", "sdtui engine + previews", "channels-last", "it/s"):
        assert label in text
    assert "offload-model             n/a on cpu" in text
    assert "same pixels as plain diffusers for the same seed: yes" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--size", "512"], "size: must look like 512x512"),
        (["--modes", "turbo"], "modes: unknown turbo"),
        (["--repeats", "0"], "repeats: must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys) -> None:
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_arch_and_model_are_exclusive(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--arch", "sd15", "--model", "demo"])
    assert "not allowed with" in capsys.readouterr().err


# Parameters of the published models (millions), per component.
REAL_SIZES = {
    "sd15": {"unet": 859.5, "vae": 83.7, "text_encoder": 123.1},
    "sd21": {"unet": 865.9, "vae": 83.7, "text_encoder": 340.4},
    "sdxl": {"unet": 2567.5, "vae": 83.7, "text_encoder": 123.1, "text_encoder_2": 694.7},
}


@pytest.mark.parametrize("arch", sorted(REAL_SIZES))
def test_architectures_have_the_real_models_sizes(arch: str, tmp_path: Path) -> None:
    from accelerate import init_empty_weights

    from sdtui.bench.architectures import _BUILDERS

    with init_empty_weights():  # shapes only: no gigabytes of random numbers
        pipe = _BUILDERS[arch](tmp_path)
    sizes = {
        name: sum(p.numel() for p in module.parameters()) / 1e6
        for name, module in pipe.components.items()
        if hasattr(module, "parameters")
    }
    assert sizes == pytest.approx(REAL_SIZES[arch], abs=0.1)
    assert pipe.tokenizer("a cat").input_ids[-1] == pipe.tokenizer.eos_token_id


def test_tui_timings_come_from_the_script_when_present(tmp_path: Path) -> None:
    script = tmp_path / "tui_latency.py"
    script.write_text(
        "import sys\nassert sys.argv[1:] == ['--runs', '3', '--keys', '20']\n"
        "print('first paint 160x50 (tmux, process start): median 180.5 ms, p95 200.0 ms')\n"
        "print('  (a remark)')\n"
        "print('key echo, idle:                 median 9.1 ms, p95 12.0 ms, max 13.0 ms')\n"
    )
    assert runner.tui_latency(script) == {
        "first paint 160x50 (tmux, process start)": "median 180.5 ms, p95 200.0 ms",
        "key echo, idle": "median 9.1 ms, p95 12.0 ms, max 13.0 ms",
    }
    script.write_text("import json\nprint(json.dumps({'first_paint_ms': 180.5}))\n")
    assert runner.tui_latency(script) == {"first_paint_ms": 180.5}
    script.write_text("import sys\nsys.exit('no terminal')\n")
    assert "failed (1): no terminal" in runner.tui_latency(script)["note"]
    missing = runner.tui_latency(tmp_path / "absent.py")
    assert "not found" in missing["note"]


def test_bench_module_imports_nothing_heavy() -> None:
    import subprocess

    code = "import sys, sdtui.cli.bench; print('torch' in sys.modules, 'diffusers' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# Parameters of SD 3.5 and FLUX.1 (millions), as their model cards and diffusers count them.
FLOW_SIZES = {
    "sd35": {"transformer": 8056.6, "text_encoder_3": 4762.3, "text_encoder_2": 694.7},
    "sd35-medium": {"transformer": 2243.2, "text_encoder_3": 4762.3, "text_encoder_2": 694.7},
    "flux": {"transformer": 11901.4, "text_encoder_2": 4762.3, "text_encoder": 123.1},
}


@pytest.mark.parametrize("arch", sorted(FLOW_SIZES))
def test_flow_architectures_have_the_real_models_sizes(arch: str, tmp_path: Path) -> None:
    import torch

    from sdtui.bench.architectures import _BUILDERS
    from sdtui.bench.flow_models import parameter_counts

    with torch.device("meta"):  # shapes only: nothing is allocated
        pipe = _BUILDERS[arch](tmp_path)
    assert next(pipe.transformer.parameters()).device.type == "meta"
    sizes = {name: count / 1e6 for name, count in parameter_counts(pipe).items()}
    for name, expected in FLOW_SIZES[arch].items():
        assert sizes[name] == pytest.approx(expected, abs=0.1), name
    assert sizes["vae"] == pytest.approx(83.8, abs=0.1)  # the 16-channel VAE


@pytest.mark.parametrize(("arch", "family"), [("flux-tiny", "flux"), ("sd3-tiny", "sd3")])
def test_tiny_flow_architectures_bench_against_plain_diffusers(
    arch: str, family: str, session_cache_dir: Path
) -> None:
    config = runner.BenchConfig(arch=arch, steps=2, repeats=1, tui=False, modes=("vae-slicing",))
    report = runner.run_benchmark(config)
    assert (report["family"], report["scheduler"], report["size"]) == (family, "Euler", "64x64")
    assert report["engine"]["same_image_as_plain"] is True
    assert report["engine_previews"]["preview_frames"] >= 1
    assert report["preview_cost"]["ms_per_frame"] > 0  # 16-channel (and packed) latents
    assert report["fast_paths"]["vae-slicing"]["status"] == "measured"
