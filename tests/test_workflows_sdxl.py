"""The image workflows on a tiny random-weight SDXL pipeline (two text encoders, time ids)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sdtui.engine import Engine
from sdtui.engine import workflows as engine_workflows
from sdtui.params import GenerationRequest

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
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

    folder = tmp_path_factory.mktemp("tiny-sdxl")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=32,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=32, sample_size=64,
    )  # fmt: skip
    vocab = write_tokenizer_files(folder / "tok")
    config = dict(
        bos_token_id=vocab - 2, eos_token_id=vocab - 1, hidden_size=32, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab, projection_dim=32,
        hidden_act="gelu",
    )  # fmt: skip
    tokenizer = CLIPTokenizer(
        str(folder / "tok" / "vocab.json"), str(folder / "tok" / "merges.txt"), model_max_length=77
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**config)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**config)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", steps_offset=1),
    )
    pipe.save_pretrained(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def engine(sdxl_dir: Path) -> Engine:
    engine = Engine(device="cpu")
    engine.load(str(sdxl_dir))
    return engine


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    y, x = np.mgrid[0:64, 0:64]
    pixels = np.stack([x * 4, y * 4, np.full_like(x, 100)], axis=-1).astype(np.uint8)
    path = tmp_path / "start.png"
    Image.fromarray(pixels).save(path)
    return path


def make(sdxl_dir: Path, **changes) -> GenerationRequest:
    fields = dict(prompt="a boat", model=str(sdxl_dir), steps=2, width=64, height=64, seed=3,
                  scheduler="Euler")  # fmt: skip
    fields.update(changes)
    return GenerationRequest(**fields)


def test_sdxl_image_pipelines_share_the_weights(engine):
    pipe = engine.pipeline
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    for kind, name in (("img2img", "StableDiffusionXLImg2ImgPipeline"),
                       ("inpaint", "StableDiffusionXLInpaintPipeline")):  # fmt: skip
        derived = engine_workflows.image_pipeline(pipe, kind)
        assert type(derived).__name__ == name
        for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
            assert getattr(derived, part) is getattr(pipe, part)


def test_sdxl_img2img_inpaint_outpaint_and_hires(engine, sdxl_dir, picture, tmp_path):
    source = np.asarray(Image.open(picture).convert("RGB"))
    same = engine.generate(make(sdxl_dir, init_image=str(picture), strength=0.0))
    assert np.array_equal(np.asarray(same.images[0].image), source)
    changed = engine.generate(make(sdxl_dir, init_image=str(picture), strength=1.0))
    assert not np.array_equal(np.asarray(changed.images[0].image), source)
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 31, 63), fill=255)
    mask.save(tmp_path / "mask.png")
    inpainted = engine.generate(
        make(
            sdxl_dir,
            init_image=str(picture),
            mask=str(tmp_path / "mask.png"),
            mask_blur=0,
            strength=1.0,
        )  # fmt: skip
    )
    assert np.array_equal(np.asarray(inpainted.images[0].image)[:, 32:], source[:, 32:])
    wider = engine.generate(make(sdxl_dir, init_image=str(picture), outpaint=("left:32",)))
    assert wider.images[0].image.size == (96, 64)
    hires = engine.generate(make(sdxl_dir, hires_scale=1.5, hires_denoise=0.5, hires_steps=2))
    assert hires.images[0].image.size == (96, 96)
