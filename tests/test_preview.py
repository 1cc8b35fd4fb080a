"""Step previews: the latent->RGB projection per family, TAESD fallback, throttling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdtui.engine import preview
from sdtui.engine.preview import Previewer, latents_to_rgb, make_previewer
from sdtui.errors import ValidationError

torch.set_num_threads(1)


def _expected_colour(family: str, channel: int, value: float = 1.0) -> np.ndarray:
    factors, bias = preview.latent_rgb_factors(family)
    rgb = np.array(factors[channel]) * value + np.array(bias)
    return np.round((np.clip(rgb, -1, 1) + 1) * 127.5)


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "demo"])
@pytest.mark.parametrize("channel", [0, 1, 2, 3])
def test_one_hot_latent_gives_the_colour_of_that_row(family: str, channel: int) -> None:
    latents = torch.zeros(1, 4, 8, 12)
    latents[0, channel] = 1.0
    image = latents_to_rgb(latents, family, upscale=1)
    pixels = np.asarray(image)
    assert image.mode == "RGB"
    assert pixels.shape == (8, 12, 3)
    assert (pixels == pixels[0, 0]).all()  # a uniform latent is a uniform colour
    assert np.abs(pixels[0, 0] - _expected_colour(family, channel)).max() <= 1


def test_sdxl_bias_shows_in_a_zero_latent_and_sd_has_none() -> None:
    zero = torch.zeros(4, 4, 4)
    sd = np.asarray(latents_to_rgb(zero, "sd1", upscale=1))
    sdxl = np.asarray(latents_to_rgb(zero, "sdxl", upscale=1))
    assert (sd == 128).all()  # 0 maps to mid-grey
    assert tuple(sdxl[0, 0]) == tuple(_expected_colour("sdxl", 0, 0.0))
    assert sdxl[0, 0, 0] > 128 > sdxl[0, 0, 1]  # red bias up, green bias down


def test_projection_is_linear_per_channel_and_clipped() -> None:
    latents = torch.zeros(1, 4, 2, 2)
    latents[0, 3] = -0.5  # channel 3 pushes blue up when negative
    pixels = np.asarray(latents_to_rgb(latents, "sd1", upscale=1))
    assert np.abs(pixels[0, 0] - _expected_colour("sd1", 3, -0.5)).max() <= 1
    huge = torch.full((1, 4, 2, 2), 50.0)
    pixels = np.asarray(latents_to_rgb(huge, "sd1", upscale=1))
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert set(np.unique(pixels)) <= {0, 255}  # saturated, not wrapped around


def test_preview_size_is_latent_size_upscaled_and_uses_the_first_image() -> None:
    latents = torch.zeros(2, 4, 64, 96)
    latents[1] = 5.0  # the second image of a batch must not leak into the preview
    image = latents_to_rgb(latents, "sd1")
    assert image.size == (96 * preview.DEFAULT_UPSCALE, 64 * preview.DEFAULT_UPSCALE)
    assert (np.asarray(image) == 128).all()


def test_random_latents_spread_over_the_colour_range() -> None:
    torch.manual_seed(0)
    pixels = np.asarray(latents_to_rgb(torch.randn(1, 4, 32, 32), "sdxl"))
    assert pixels.std() > 20 and pixels.min() < 60 and pixels.max() > 200


def test_half_precision_latents_work() -> None:
    latents = torch.zeros(1, 4, 4, 4, dtype=torch.float16)
    latents[0, 0] = 1.0
    pixels = np.asarray(latents_to_rgb(latents, "sd1", upscale=1))
    assert np.abs(pixels[0, 0] - _expected_colour("sd1", 0)).max() <= 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_previews_are_throttled_to_max_fps() -> None:
    clock = FakeClock()
    previewer = make_previewer("sd1", "latent", max_fps=4.0, clock=clock)
    assert previewer is not None
    latents = torch.zeros(1, 4, 8, 8)
    shown = []
    # 20 steps, 0.1 s apart: 2 s at 4 frames a second is 1 frame every 0.25 s.
    for step in range(1, 21):
        shown.append(previewer(latents, step, 20) is not None)
        clock.now += 0.1
    assert shown[0]  # the first step always shows something
    assert shown.count(True) == 7  # at 0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8 s
    gaps = np.diff([i for i, s in enumerate(shown) if s])
    assert (gaps >= 3).all()
    assert previewer.frames == 7


def test_slow_steps_get_a_preview_every_step() -> None:
    clock = FakeClock()
    previewer = make_previewer("sdxl", max_fps=4.0, clock=clock)
    latents = torch.zeros(1, 4, 8, 8)
    for step in range(1, 6):
        assert previewer(latents, step, 5) is not None
        clock.now += 1.0


def test_missing_latents_give_no_frame() -> None:
    previewer = make_previewer("sd1", max_fps=1.0, clock=FakeClock())
    assert previewer(None, 1, 4) is None
    assert previewer(torch.zeros(1, 4, 8, 8), 2, 4) is not None  # the skip used no frame


def test_off_mode_and_bad_mode() -> None:
    assert make_previewer("sd1", "off") is None
    assert make_previewer("sd1", "latent", max_fps=0) is None
    with pytest.raises(ValidationError, match="preview"):
        make_previewer("sd1", "vae")


def test_taesd_not_cached_falls_back_to_projection_with_a_note(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import huggingface_hub.constants

    # An empty hub cache, whatever this machine has downloaded.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(preview, "_taesd_cache", {})
    previewer = make_previewer("sdxl", "taesd")
    latents = torch.zeros(1, 4, 8, 8)
    latents[0, 0] = 1.0
    image = previewer(latents, 1, 10)
    assert image is not None
    assert "madebyollin/taesdxl" in previewer.note and "not downloaded" in previewer.note
    assert previewer.mode == "latent"
    assert np.abs(np.asarray(image)[0, 0] - _expected_colour("sdxl", 0)).max() <= 1


def test_taesd_decodes_when_it_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    tiny = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    ).eval()
    loads = []

    def fake_load(family, device, dtype):
        loads.append(family)
        return tiny

    monkeypatch.setattr(preview, "load_taesd", fake_load)
    previewer = Previewer("sd1", "taesd", max_fps=1000.0)
    latents = torch.randn(1, 4, 8, 8)
    image = previewer(latents, 1, 2)
    # The tiny autoencoder upsamples 8x: full image size, unlike the projection.
    assert image.size == (64, 64)
    expected = tiny.decode(latents).sample[0].clamp(-1, 1)
    expected = ((expected + 1) * 127.5).round().permute(1, 2, 0).to(torch.uint8).numpy()
    assert np.abs(np.asarray(image).astype(int) - expected.astype(int)).max() <= 1
    previewer(latents, 2, 2)
    assert loads == ["sd1"]  # loaded once per previewer
    assert previewer.note == ""


def test_latents_of_another_shape_switch_previews_off_without_failing() -> None:
    # 16-channel (SD 3-like) latents reaching an SD 1.x previewer do not fit its projection.
    previewer = make_previewer("sd1", max_fps=1000.0)
    assert previewer(torch.zeros(1, 16, 8, 8), 1, 4) is None
    assert "previews off" in previewer.note
    assert previewer(torch.zeros(1, 16, 8, 8), 2, 4) is None


def test_flux_packed_latents_unpack_to_the_image_grid() -> None:
    # 16 channels, a 4x6 latent image packed 2x2 into 2x3 = 6 tokens of 64 values.
    latents = torch.arange(16 * 4 * 6, dtype=torch.float32).reshape(1, 16, 4, 6)
    packed = latents.reshape(1, 16, 2, 2, 3, 2).permute(0, 2, 4, 1, 3, 5).reshape(1, 6, 64)
    unpacked = preview.unpack_latents(packed, image_size=(48, 32))
    assert torch.equal(unpacked, latents)
    image = latents_to_rgb(packed, "flux", upscale=1, image_size=(48, 32))
    assert image.size == (6, 4)


def test_taesd_for_flux_gets_unpacked_unscaled_latents(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    seen = []

    class FakeTiny:
        config = SimpleNamespace(scaling_factor=2.0, shift_factor=0.5)

        def decode(self, latents):  # noqa: ANN001, ANN201
            seen.append(latents.clone())
            return SimpleNamespace(sample=torch.zeros(1, 3, 32, 48))

    monkeypatch.setattr(preview, "load_taesd", lambda family, device, dtype: FakeTiny())
    previewer = Previewer("flux", "taesd", max_fps=1000.0)
    previewer.image_size = (48, 32)
    frame = previewer(torch.ones(1, 6, 64), 1, 4)
    assert frame is not None and frame.size == (48, 32)
    assert seen[0].shape == (1, 16, 4, 6)
    assert torch.allclose(seen[0], torch.full((1, 16, 4, 6), 1.0))  # 1 / 2 + 0.5
