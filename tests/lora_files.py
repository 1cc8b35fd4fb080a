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
    path: Path, width: int = 32, vectors: int = 2, seed: int = 3, style: str = "a1111"
) -> Path:
    """A textual-inversion file: A1111 `emb_params`, diffusers `{token: vectors}`, or SDXL
    `clip_l`/`clip_g` (`style="sdxl"`)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    data = torch.randn(vectors, width, generator=generator)
    if style == "a1111":
        tensors = {"emb_params": data}
    elif style == "diffusers":
        tensors = {f"<{path.stem}>": data}
    else:
        tensors = {"clip_l": torch.randn(vectors, 768), "clip_g": torch.randn(vectors, 1280)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
