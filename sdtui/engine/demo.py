"""The built-in `demo` model: a tiny Stable Diffusion pipeline with random weights.

It is made locally on first use (no download, no GPU) and saved as an ordinary
diffusers folder, so it loads through exactly the same code as a real model.
Its pictures are abstract noise; it exists so that anyone can try the whole app.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

DEMO_SEED = 0
DEMO_SIZE = 64
_TOKENIZER_MAX_LENGTH = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte-to-printable-character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def write_tokenizer_files(folder: Path) -> int:
    """A byte-level CLIP BPE vocabulary that can encode any text; returns its size."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    # A few merges so that common words become single tokens, as with real vocabularies.
    merges = ["t h", "th e</w>", "a n", "an d</w>", "c a", "ca t</w>", "o f</w>", "i n"]
    for merge in merges:
        tokens.append(merge.replace(" ", ""))
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    return len(vocab)


def build_demo_pipeline(folder: str | os.PathLike[str]) -> Path:
    """Create the tiny random-weight pipeline and `save_pretrained` it into `folder`."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(DEMO_SEED)
    unet = UNet2DConditionModel(
        sample_size=DEMO_SIZE // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    # Four blocks give the usual 8x latent downscale of real SD VAEs.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=DEMO_SIZE,
    )
    with tempfile.TemporaryDirectory() as tmp:
        vocab_size = write_tokenizer_files(Path(tmp))
        tokenizer = CLIPTokenizer(
            str(Path(tmp) / "vocab.json"),
            str(Path(tmp) / "merges.txt"),
            model_max_length=_TOKENIZER_MAX_LENGTH,
        )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=_TOKENIZER_MAX_LENGTH,
            projection_dim=32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    # Write to a sibling folder and rename, so a crash never leaves a half-made model.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=folder.parent))
    try:
        # mypy reads `diffusers.StableDiffusionPipeline` as diffusers' placeholder class.
        pipe.save_pretrained(staging, safe_serialization=True)  # type: ignore[attr-defined]
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def demo_model_folder(cache_dir: Path) -> Path:
    """The demo model's folder under `cache_dir`, built on first use."""
    folder = cache_dir / "demo-model"
    if not (folder / "model_index.json").exists():
        build_demo_pipeline(folder)
    return folder
