"""CPU timings of each image workflow relative to a plain generation of the same size.

The demo pipeline (tiny, random weights) at 128x128, 8 steps, through the
engine: txt2img, img2img at strength 0.75 and 1.0, inpainting (half the
picture), outpainting (+64 px on the right, against txt2img at the larger size),
the hires fix (64x64 base, x2, 8 steps at 0.5, against txt2img at 128x128), and
an upscaler (a real-size 4x ESRGAN, 23 blocks of 64 filters, random weights) on
a 64x64 picture, whole and in 32-pixel tiles (overlap 8). Ratios matter; the absolute times are
this machine's.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/workflows.py [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(1)
    from sdtui.engine import Engine
    from sdtui.engine.demo import demo_model_folder
    from sdtui.params import GenerationRequest

    work = Path(tempfile.mkdtemp(prefix="sdtui-bench-"))
    model = str(demo_model_folder(work / "cache"))
    engine = Engine(device="cpu")
    engine.load(model)
    size = 128
    rng = np.random.default_rng(0)
    init = work / "init.png"
    Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(init)
    mask = work / "mask.png"
    mask_pixels = np.zeros((size, size), np.uint8)
    mask_pixels[:, size // 2 :] = 255
    Image.fromarray(mask_pixels).save(mask)

    def request(**changes) -> GenerationRequest:
        fields = dict(prompt="a lighthouse", model=model, steps=8, seed=1,
                      width=size, height=size, scheduler="Euler")  # fmt: skip
        fields.update(changes)
        return GenerationRequest(**fields)

    cases = {
        "txt2img 128": request(),
        "img2img 0.75": request(init_image=str(init), strength=0.75),
        "img2img 1.0": request(init_image=str(init), strength=1.0),
        "inpaint 1.0 (half masked)": request(init_image=str(init), mask=str(mask), strength=1.0),
        "txt2img 192x128": request(width=192),
        "outpaint +64 right, 1.0": request(
            init_image=str(init), outpaint=("right:64",), strength=1.0
        ),
        "hires 64 -> 128 (8 steps at 0.5)": request(
            width=64, height=64, hires_scale=2, hires_steps=8, hires_denoise=0.5
        ),
    }
    times = {name: median_seconds(lambda r=r: engine.generate(r), args.repeats)
             for name, r in cases.items()}  # fmt: skip
    rows = [(name, seconds, seconds / times["txt2img 128"]) for name, seconds in times.items()]
    rows[5] = (rows[5][0], rows[5][1], rows[5][1] / times["txt2img 192x128"])

    upscale_rows = []
    try:
        from sdtui.engine import upscale

        upscale._spandrel()
        from spandrel.architectures.ESRGAN import ESRGAN

        torch.manual_seed(0)
        net = ESRGAN(num_filters=64, num_blocks=23, scale=4)
        from safetensors.torch import save_file

        path = work / "esrgan-x4.safetensors"
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
        model_4x = upscale.load_upscaler(path)
        picture = Image.open(init).crop((0, 0, 64, 64))
        for tile in (0, 32):
            start = time.perf_counter()  # one run each: a real-size ESRGAN is slow on CPU
            upscale.upscale_image(model_4x, picture, tile=tile, overlap=8)
            seconds = time.perf_counter() - start
            upscale_rows.append((f"ESRGAN 4x of 64x64, tile {tile or 'none'}", seconds))
    except Exception as exc:  # noqa: BLE001 - spandrel is optional
        upscale_rows.append((f"upscaler skipped: {exc}", float("nan")))

    if args.json:
        print(json.dumps({"workflows": rows, "upscale": upscale_rows}))
        return
    print(f"{'workflow':<36} {'seconds':>8} {'vs txt2img':>10}")
    for name, seconds, ratio in rows:
        print(f"{name:<36} {seconds:>8.3f} {ratio:>9.2f}x")
    print("(outpaint is compared with txt2img at 192x128, the size it makes)")
    for name, seconds in upscale_rows:
        print(f"{name:<36} {seconds:>8.3f}")


if __name__ == "__main__":
    main()
