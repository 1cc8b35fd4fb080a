"""What a LoRA costs: applying, re-weighting, switching and removing one, against one
generation, and whether fusing it into the base weights pays.

    .venv/bin/python benchmarks/lora_bench.py [--arch demo|sd15] [--size 64] [--steps 4]
        [--rank 8] [--runs 3]

Builds the architecture with random weights (`sd15` has the real layer sizes), makes
two random LoRAs for it (UNet and text encoder attention), saves them as safetensors,
and times each operation through sdtui's own adapter code (median of --runs). Prints
a table with each time as a share of one generation; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def _median(
    fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def random_lora(pipe: object, rank: int, seed: int) -> dict:
    """LoRA layers (diffusers/peft key names) for the attention projections of the UNet
    and the text encoder, random and small, without building a second model."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for prefix, model, targets in (
        ("unet", pipe.unet, UNET_TARGETS),
        ("text_encoder", pipe.text_encoder, TEXT_TARGETS),
    ):
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and any(name.endswith(t) for t in targets):
                down = torch.randn(rank, module.in_features, generator=generator) * 0.05
                up = torch.randn(module.out_features, rank, generator=generator) * 0.05
                tensors[f"{prefix}.{name}.lora_A.weight"] = down
                tensors[f"{prefix}.{name}.lora_B.weight"] = up
    return tensors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("demo", "sd15"), default="demo")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    from sdtui.addons import describe_file
    from sdtui.bench.architectures import architecture_folder
    from sdtui.engine import adapters

    cache = Path(os.environ.get("SDTUI_CACHE_DIR") or tempfile.mkdtemp(prefix="sdtui-bench-"))
    folder = architecture_folder(args.arch, cache)
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)

    work = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    files = []
    for seed in (1, 2):
        path = work / f"lora{seed}.safetensors"
        save_file(random_lora(pipe, args.rank, seed), str(path))
        files.append(describe_file(path, "lora", path.stem))
    first, second = files

    def generate() -> None:
        generator = torch.Generator().manual_seed(0)
        pipe(
            "a cat", num_inference_steps=args.steps, width=args.size, height=args.size,
            generator=generator, output_type="latent",
        )  # fmt: skip

    def clear() -> None:
        adapters.apply_loras(pipe, [], "sd1")

    generate()  # warm up
    base = _median(generate, args.runs)
    rows = [("one generation, no LoRA", base)]
    rows.append(
        (
            "apply a LoRA (read + load)",
            _median(lambda: adapters.apply_loras(pipe, [(first, 1.0)], "sd1"), args.runs, clear),
        )
    )
    adapters.apply_loras(pipe, [(first, 1.0)], "sd1")
    rows.append(
        (
            "change its weight",
            _median(lambda: adapters.apply_loras(pipe, [(first, 0.5)], "sd1"), args.runs),
        )
    )
    rows.append(
        (
            "switch to another LoRA",
            _median(
                lambda: adapters.apply_loras(pipe, [(second, 1.0)], "sd1"),
                args.runs,
                lambda: adapters.apply_loras(pipe, [(first, 1.0)], "sd1"),
            ),
        )
    )
    rows.append(
        (
            "remove it (base layers back)",
            _median(clear, args.runs, lambda: adapters.apply_loras(pipe, [(first, 1.0)], "sd1")),
        )
    )
    adapters.apply_loras(pipe, [(first, 1.0)], "sd1")
    generate()
    with_lora = _median(generate, args.runs)
    rows.append(("one generation with the LoRA", with_lora))
    started = time.perf_counter()
    adapters.fuse_loras(pipe)
    fuse = time.perf_counter() - started
    rows.append(("fuse it into the weights", fuse))
    generate()
    fused = _median(generate, args.runs)
    rows.append(("one generation, fused", fused))  # fmt: skip

    print(f"{args.arch} at {args.size}x{args.size}, {args.steps} steps, LoRA rank {args.rank}, "
          f"CPU, 1 thread, median of {args.runs}")  # fmt: skip
    print(f"{'operation':34} {'seconds':>9} {'x one generation':>17}")
    for label, seconds in rows:
        print(f"{label:34} {seconds:9.4f} {seconds / base:17.3f}")
    saved = with_lora - fused
    if saved > 0:
        print(f"fusing saves {saved:.4f} s per image: it pays after {fuse / saved:.1f} images")
    else:
        print("fusing saves nothing measurable here")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
