"""SD 3 / 3.5 and FLUX.1 with random weights: the real layer sizes, or tiny ones.

The real sizes (`sd35`, `sd35-medium`, `flux`) are for parameter counts on the
meta device (nothing is allocated) and for benchmarks on a GPU. The tiny ones
(`sd3-tiny`, `flux-tiny`) keep every part of the real pipeline (two CLIP text
encoders and T5 for SD 3, CLIP and T5 for FLUX, a 16-channel VAE with the 8x
downscale, the flow-matching scheduler) at a size that runs on a CPU in
milliseconds, so tests and CPU benchmarks go through the same code as the
real models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdtui.engine.demo import write_tokenizer_files

CLIP_MAX_TOKENS = 77
T5_MAX_TOKENS = 512

# Transformer configs of the published models.
SD35_LARGE = dict(
    sample_size=128,
    patch_size=2,
    in_channels=16,
    num_layers=38,
    attention_head_dim=64,
    num_attention_heads=38,
    joint_attention_dim=4096,
    caption_projection_dim=2432,
    pooled_projection_dim=2048,
    out_channels=16,
    pos_embed_max_size=192,
    qk_norm="rms_norm",
)
SD35_MEDIUM = dict(
    SD35_LARGE,
    num_layers=24,
    num_attention_heads=24,
    caption_projection_dim=1536,
    pos_embed_max_size=384,
    dual_attention_layers=tuple(range(13)),
)
FLUX_DEV = dict(
    patch_size=1,
    in_channels=64,
    num_layers=19,
    num_single_layers=38,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=4096,
    pooled_projection_dim=768,
    guidance_embeds=True,
    axes_dims_rope=(16, 56, 56),
)
# Text towers: (hidden, intermediate, heads, layers, activation).
CLIP_L = (768, 3072, 12, 12, "quick_gelu")
CLIP_G = (1280, 5120, 20, 32, "gelu")
T5_XXL = dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24)
REAL_VOCAB = {"clip": 49408, "t5": 32128}

TINY_SIZE = 64  # default image size of the tiny models


def _tiny_vae(latent_channels: int = 16) -> Any:
    """Four blocks: the usual 8x downscale; 16 latent channels as SD 3 and FLUX."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=TINY_SIZE,
        scaling_factor=1.5305,
        shift_factor=0.0609,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def _real_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=16,
        layers_per_block=2,
        norm_num_groups=32,
        sample_size=1024,
        scaling_factor=1.5305,
        shift_factor=0.0609,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def clip_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    write_tokenizer_files(folder)
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=CLIP_MAX_TOKENS
    )


def t5_tokenizer(folder: Path) -> Any:
    """A T5 tokenizer over the printable ASCII characters (a Unigram model, as T5's own)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    # A lazily imported name transformers 5 keeps for the fast tokenizer; its stubs miss it.
    from transformers import T5TokenizerFast  # type: ignore[attr-defined]

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(chr(c), -1.0) for c in range(32, 127)] + [("\u2581", -1.0)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t5-tokenizer.json"
    tokenizer.save(str(path))
    return T5TokenizerFast(
        tokenizer_file=str(path),
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=T5_MAX_TOKENS,
    )


def _clip(tokenizer: Any, vocab: int, tower: tuple[Any, ...], projection: int) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    hidden, intermediate, heads, layers, act = tower
    return CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_attention_heads=heads,
            num_hidden_layers=layers,
            hidden_act=act,
            projection_dim=projection,
            max_position_embeddings=CLIP_MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def _t5(vocab: int, **config: Any) -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=vocab,
            feed_forward_proj="gated-gelu",
            is_encoder_decoder=False,
            use_cache=False,
            **config,
        )
    )


def build_sd3(tokenizer_dir: Path, tiny: bool = True, config: dict[str, Any] | None = None) -> Any:
    """A StableDiffusion3Pipeline with random weights (tiny, or `config` at real size)."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    clip_tok = clip_tokenizer(tokenizer_dir / "clip")
    t5_tok = t5_tokenizer(tokenizer_dir / "t5")
    if tiny:
        clip_vocab, t5_vocab = len(clip_tok), len(t5_tok)
        text_encoder = _clip(clip_tok, clip_vocab, (32, 37, 4, 2, "gelu"), 32)
        text_encoder_2 = _clip(clip_tok, clip_vocab, (32, 37, 4, 2, "gelu"), 32)
        text_encoder_3 = _t5(t5_vocab, d_model=64, d_ff=37, d_kv=8, num_heads=4, num_layers=2)
        transformer = SD3Transformer2DModel(
            sample_size=4,  # 32 px native: below sdtui's 64 minimum, as tests need
            patch_size=2,
            in_channels=16,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=64,
            caption_projection_dim=32,
            pooled_projection_dim=64,
            out_channels=16,
            pos_embed_max_size=32,
        )
        vae = _tiny_vae()
    else:
        text_encoder = _clip(clip_tok, REAL_VOCAB["clip"], CLIP_L, 768)
        text_encoder_2 = _clip(clip_tok, REAL_VOCAB["clip"], CLIP_G, 1280)
        text_encoder_3 = _t5(REAL_VOCAB["t5"], **T5_XXL)
        transformer = SD3Transformer2DModel(**(config or SD35_LARGE))
        vae = _real_vae()
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tok,
        text_encoder_2=text_encoder_2,
        tokenizer_2=clip_tok,
        text_encoder_3=text_encoder_3,
        tokenizer_3=t5_tok,
    )


def build_flux(tokenizer_dir: Path, tiny: bool = True, guidance_embeds: bool = True) -> Any:
    """A FluxPipeline with random weights; `guidance_embeds=False` is the schnell layout."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel

    clip_tok = clip_tokenizer(tokenizer_dir / "clip")
    t5_tok = t5_tokenizer(tokenizer_dir / "t5")
    if tiny:
        hidden, intermediate, heads, layers, act = (32, 37, 4, 2, "gelu")
        clip_vocab = len(clip_tok)
        text_encoder_2 = _t5(len(t5_tok), d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2)
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=64,  # 16 latent channels packed 2x2
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=(4, 4, 8),
        )
        vae = _tiny_vae()
    else:
        hidden, intermediate, heads, layers, act = CLIP_L
        clip_vocab = REAL_VOCAB["clip"]
        text_encoder_2 = _t5(REAL_VOCAB["t5"], **T5_XXL)
        transformer = FluxTransformer2DModel(**dict(FLUX_DEV, guidance_embeds=guidance_embeds))
        vae = _real_vae()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=clip_vocab,
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_attention_heads=heads,
            num_hidden_layers=layers,
            hidden_act=act,
            max_position_embeddings=CLIP_MAX_TOKENS,
            bos_token_id=clip_tok.bos_token_id,
            eos_token_id=clip_tok.eos_token_id,
            pad_token_id=clip_tok.pad_token_id,
        )
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_image_seq_len=256, max_image_seq_len=4096
    )
    return FluxPipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tok,
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tok,
    )


def parameter_counts(pipe: Any) -> dict[str, int]:
    """Parameters of each model component (works on the meta device)."""
    counts: dict[str, int] = {}
    for name, component in pipe.components.items():
        parameters = getattr(component, "parameters", None)
        if callable(parameters):
            counts[name] = sum(p.numel() for p in parameters())
    return counts


def describe(folder: Path) -> dict[str, Any]:
    """model_index.json of a saved pipeline (for tests and the bench report)."""
    return json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
