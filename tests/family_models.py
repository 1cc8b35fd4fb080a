"""Tiny random-weight pipelines of each family, saved as diffusers folders for the tests.

SD 3 and FLUX come from `sdtui.bench.flow_models` (the same builders the
benchmark uses); SDXL is a two-encoder UNet pipeline with SDXL's 1024 native
size; the few-step one is that SDXL folder under a "turbo" name.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch


def _tiny_sdxl(tokenizer_dir: Path) -> Any:
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from sdtui.bench.flow_models import clip_tokenizer

    tokenizer = clip_tokenizer(tokenizer_dir)
    unet = UNet2DConditionModel(
        sample_size=128,  # 1024 px native, as SDXL base
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 32 pooled + 6 * 8 time ids
        cross_attention_dim=64,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=1024,
        scaling_factor=0.13025,
    )
    config = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return StableDiffusionXLPipeline(
        unet=unet,
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**config)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**config)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
        ),
    )


def _tiny_refiner(tokenizer_dir: Path) -> Any:
    """SDXL's refiner layout: only the big text encoder, and an aesthetic score in the time ids."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel

    base = _tiny_sdxl(tokenizer_dir)
    unet = UNet2DConditionModel(
        sample_size=128,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=72,  # 32 pooled + 5 * 8 time ids
        cross_attention_dim=32,  # the second text encoder alone
        norm_num_groups=32,
    )
    return StableDiffusionXLImg2ImgPipeline(
        vae=base.vae,
        text_encoder=None,
        text_encoder_2=base.text_encoder_2,
        tokenizer=None,
        tokenizer_2=base.tokenizer_2,
        unet=unet,
        scheduler=base.scheduler,
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )


def _build(kind: str, tokenizer_dir: Path) -> Any:
    from sdtui.bench.flow_models import build_flux, build_sd3

    if kind == "sd3":
        return build_sd3(tokenizer_dir)
    if kind == "flux":
        return build_flux(tokenizer_dir)
    if kind == "flux-schnell":
        return build_flux(tokenizer_dir, guidance_embeds=False)
    if kind == "sdxl":
        return _tiny_sdxl(tokenizer_dir)
    if kind == "sdxl-refiner":
        return _tiny_refiner(tokenizer_dir)
    raise ValueError(kind)


def model_folder(kind: str, cache_dir: Path) -> Path:
    """The tiny `kind` pipeline saved under `cache_dir` (built once per test session)."""
    folder = cache_dir / "family-models" / kind
    if (folder / "model_index.json").exists():
        return folder
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        pipe = _build(kind, Path(tmp))
        staging = Path(tmp) / "out"
        pipe.save_pretrained(staging, safe_serialization=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), folder)
    return folder


def transformer_file(folder: Path, target: Path) -> Path:
    """The folder's transformer alone as one .safetensors file, as FLUX/SD 3.5 files come."""
    from safetensors.torch import load_file, save_file

    weights = {}
    for shard in sorted((folder / "transformer").glob("*.safetensors")):
        weights.update(load_file(shard))
    save_file(weights, target)
    return target
