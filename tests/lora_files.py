"""Tiny random LoRAs and embeddings for the demo pipeline, written in the formats people
download: diffusers/peft keys, kohya keys (`lora_unet_...`, `lora_te_...`), A1111 and
SDXL embeddings. Made at test time, never stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def _lora_state_dicts(model_dir: Path, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(unet, text encoder) LoRA layers in peft form, random (not the usual zero B)."""
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    text_encoder = CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder")
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=UNET_TARGETS)
    )
    from peft import get_peft_model

    text_encoder = get_peft_model(
        text_encoder,
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=TEXT_TARGETS),
    )
    unet_layers = get_peft_model_state_dict(unet)
    text_layers = {
        k.replace("base_model.model.", ""): v
        for k, v in get_peft_model_state_dict(text_encoder).items()
    }
    return unet_layers, text_layers


def write_diffusers_lora(
    model_dir: Path, path: Path, seed: int = 1, metadata: dict[str, str] | None = None
) -> Path:
    """A LoRA as `save_lora_weights` writes it (keys `unet.…lora_A.weight`)."""
    from safetensors.torch import save_file

    unet_layers, text_layers = _lora_state_dicts(model_dir, seed)
    tensors = {f"unet.{k}": v.contiguous() for k, v in unet_layers.items()}
    tensors.update({f"text_encoder.{k}": v.contiguous() for k, v in text_layers.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def write_kohya_lora(
    model_dir: Path, path: Path, seed: int = 2, metadata: dict[str, str] | None = None
) -> Path:
    """The same kind of LoRA under kohya's key names, with `ss_*` training metadata."""
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    unet_layers, text_layers = _lora_state_dicts(model_dir, seed)
    peft_dict = {f"unet.{k}": v for k, v in unet_layers.items()}
    peft_dict.update({f"text_encoder.{k}": v for k, v in text_layers.items()})
    kohya = convert_state_dict_to_kohya(peft_dict)
    # SD 1.x kohya files call the one text encoder `lora_te`.
    tensors = {k.replace("lora_te1_", "lora_te_"): v.contiguous() for k, v in kohya.items()}
    meta = {
        "ss_base_model_version": "sd_v1",
        "ss_output_name": path.stem,
        "ss_tag_frequency": json.dumps({"10_ink": {"ink wash": 12, "1girl": 30, "sketch": 5}}),
    }
    meta.update(metadata or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def write_sdxl_lora(path: Path) -> Path:
    """A small file shaped like an SDXL kohya LoRA (two text encoders), for refusals."""
    import torch
    from safetensors.torch import save_file

    tensors = {
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(
            4, 32
        ),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(
            4, 32
        ),
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(
            4, 2048
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    return path


def write_embedding(
    path: Path,
    width: int = 32,
    vectors: int = 2,
    seed: int = 3,
    style: str = "a1111",
    widths: tuple[int, int] = (768, 1280),
) -> Path:
    """A textual-inversion file: A1111 `emb_params`, diffusers `{token: vectors}`, or SDXL
    `clip_l`/`clip_g` (`style="sdxl"`, vectors `widths` wide)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    if style == "a1111":
        tensors = {"emb_params": torch.randn(vectors, width, generator=generator)}
    elif style == "diffusers":
        tensors = {f"<{path.stem}>": torch.randn(vectors, width, generator=generator)}
    else:
        tensors = {
            "clip_l": torch.randn(vectors, widths[0], generator=generator),
            "clip_g": torch.randn(vectors, widths[1], generator=generator),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def build_tiny_sdxl(folder: Path) -> Path:
    """A tiny random SDXL pipeline (two text encoders, text-time conditioning) saved as a
    diffusers folder, so SDXL LoRAs and clip_l/clip_g embeddings can be tried on it."""
    import tempfile

    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    from sdtui.engine.demo import write_tokenizer_files

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + the second encoder's 32
        cross_attention_dim=64,  # both encoders' 32 side by side
        norm_num_groups=1,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
    )
    with tempfile.TemporaryDirectory() as tmp:
        vocab = write_tokenizer_files(Path(tmp))
        files = (str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"))
        tokenizer = CLIPTokenizer(*files, model_max_length=77)
        tokenizer_2 = CLIPTokenizer(*files, model_max_length=77)
    config = CLIPTextConfig(
        vocab_size=vocab,
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
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(config),
        text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
        ),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def write_sdxl_diffusers_lora(model_dir: Path, path: Path, seed: int = 5) -> Path:
    """A random LoRA for the tiny SDXL pipeline: UNet and both text encoders, kohya names."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_kohya
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=UNET_TARGETS)
    )
    peft_dict = {f"unet.{k}": v for k, v in get_peft_model_state_dict(unet).items()}
    for sub, cls in (
        ("text_encoder", CLIPTextModel),
        ("text_encoder_2", CLIPTextModelWithProjection),
    ):
        model = get_peft_model(
            cls.from_pretrained(model_dir, subfolder=sub),
            LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=TEXT_TARGETS),
        )
        for key, value in get_peft_model_state_dict(model).items():
            peft_dict[f"{sub}.{key.replace('base_model.model.', '')}"] = value
    tensors = {k: v.contiguous() for k, v in convert_state_dict_to_kohya(peft_dict).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    return path
