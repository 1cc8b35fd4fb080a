"""Real Stable Diffusion architectures with random weights, for benchmarks without a download.

The layer sizes are those of the published models (SD 1.5, SD 2.1, SDXL base,
SD 3.5 Large and Medium, FLUX.1 dev), so a step costs what it costs with the
real weights; the pictures are noise. `sd3-tiny` and `flux-tiny` keep the
SD 3 / FLUX pipelines whole at a size a CPU runs in milliseconds.
Each pipeline is built once, saved as an ordinary diffusers folder in the
cache, and then loaded through the same code as any model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sdtui.bench import flow_models
from sdtui.engine.demo import demo_model_folder, write_tokenizer_files

ARCHITECTURES = (
    "demo",
    "sd15",
    "sd21",
    "sdxl",
    "sd35",
    "sd35-medium",
    "flux",
    "sd3-tiny",
    "flux-tiny",
)
NATIVE_SIZE = {
    "demo": 64,
    "sd15": 512,
    "sd21": 768,
    "sdxl": 1024,
    "sd35": 1024,
    "sd35-medium": 1024,
    "flux": 1024,
    "sd3-tiny": 64,
    "flux-tiny": 64,
}
CLIP_VOCAB_SIZE = 49408  # the real CLIP vocabulary: the embedding tables have their real size
_MAX_TOKENS = 77

_SD_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    act_fn="silu",
)

_SD_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    steps_offset=1,
)


def _unet(**config: Any) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(in_channels=4, out_channels=4, norm_num_groups=32, **config)


def _vae(sample_size: int, scaling_factor: float, force_upcast: bool = False) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        **_SD_VAE,
        sample_size=sample_size,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    )


def _tokenizer(folder: Path) -> Any:
    """A byte-level CLIP tokenizer; its ids all fall inside the 49408-row embedding."""
    from transformers import CLIPTokenizer

    write_tokenizer_files(folder)
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=_MAX_TOKENS
    )


def _clip_config(tokenizer: Any, **config: Any) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        max_position_embeddings=_MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config,
    )


def _clip_l(tokenizer: Any, with_projection: bool = False) -> Any:
    """OpenAI CLIP ViT-L/14's text tower: 12 layers, 768 wide."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    config = _clip_config(
        tokenizer,
        hidden_size=768,
        intermediate_size=3072,
        num_attention_heads=12,
        num_hidden_layers=12,
        hidden_act="quick_gelu",
        projection_dim=768,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def build_sd15(tokenizer_dir: Path) -> Any:
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    tokenizer = _tokenizer(tokenizer_dir)
    unet = _unet(
        sample_size=64,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=_vae(512, 0.18215),
        text_encoder=_clip_l(tokenizer),
        tokenizer=tokenizer,
        scheduler=PNDMScheduler(**_SD_SCHEDULER, skip_prk_steps=True),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sd21(tokenizer_dir: Path) -> Any:
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    tokenizer = _tokenizer(tokenizer_dir)
    unet = _unet(
        sample_size=96,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True,
    )
    # OpenCLIP ViT-H/14's text tower, minus its last layer as SD 2.x ships it.
    text_encoder = CLIPTextModel(
        _clip_config(
            tokenizer,
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=23,
            hidden_act="gelu",
            projection_dim=512,
        )
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=_vae(768, 0.18215),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(
            **_SD_SCHEDULER,
            prediction_type="v_prediction",
            clip_sample=False,
            set_alpha_to_one=False,
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sdxl(tokenizer_dir: Path) -> Any:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModelWithProjection

    tokenizer = _tokenizer(tokenizer_dir)
    unet = _unet(
        sample_size=128,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(320, 640, 1280),
        layers_per_block=2,
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
    )
    # OpenCLIP ViT-bigG/14's text tower.
    text_encoder_2 = CLIPTextModelWithProjection(
        _clip_config(
            tokenizer,
            hidden_size=1280,
            intermediate_size=5120,
            num_attention_heads=20,
            num_hidden_layers=32,
            hidden_act="gelu",
            projection_dim=1280,
        )
    )
    return StableDiffusionXLPipeline(
        unet=unet,
        vae=_vae(1024, 0.13025, force_upcast=True),
        text_encoder=_clip_l(tokenizer),
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler(**_SD_SCHEDULER),
    )


def build_sd35(tokenizer_dir: Path) -> Any:
    return flow_models.build_sd3(tokenizer_dir, tiny=False, config=flow_models.SD35_LARGE)


def build_sd35_medium(tokenizer_dir: Path) -> Any:
    return flow_models.build_sd3(tokenizer_dir, tiny=False, config=flow_models.SD35_MEDIUM)


def build_flux(tokenizer_dir: Path) -> Any:
    return flow_models.build_flux(tokenizer_dir, tiny=False)


_BUILDERS = {
    "sd15": build_sd15,
    "sd21": build_sd21,
    "sdxl": build_sdxl,
    "sd35": build_sd35,
    "sd35-medium": build_sd35_medium,
    "flux": build_flux,
    "sd3-tiny": flow_models.build_sd3,
    "flux-tiny": flow_models.build_flux,
}


def build_pipeline(arch: str, seed: int = 0) -> Any:
    """The pipeline of `arch` with random weights, in float32 on the CPU."""
    import torch

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        return _BUILDERS[arch](Path(tmp))


def architecture_folder(arch: str, cache_dir: Path) -> Path:
    """A diffusers folder holding `arch` with random weights, built and saved on first use."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if arch == "demo":
        return demo_model_folder(cache_dir)
    folder = cache_dir / "bench-models" / arch
    if (folder / "model_index.json").exists():
        return folder
    import torch

    pipe = build_pipeline(arch)
    if not arch.endswith("-tiny"):
        pipe.to(torch.float16)  # half the disk; loading casts to the dtype asked for
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Save beside the final folder and rename, so an interrupted build leaves nothing half-made.
    staging = Path(tempfile.mkdtemp(prefix=f".{arch}-", dir=folder.parent))
    try:
        pipe.save_pretrained(staging, safe_serialization=True)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
