"""The readers on real files written by other tools (tests/data/readers, see its README).

Expected values are those of the source projects' own tests, quoted where each
row says: sd-metadata = enslo/sd-metadata packages/core/tests/samples/parsers/
<tool>.test.ts, sd-parsers = d3x-at/sd-parsers tests/test_<tool>.py and
tests/resources/parsers/<Tool>/<file>.py. Where a source test has none (noted),
the value is the one the writer put in the file's own record (node or key named).
Samplers are the source's sampler and scheduler in the A1111 spelling sdtui uses.
Prompts are compared as sdtui shows them: CRLF as a newline, outer blanks trimmed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sdtui.gallery.metadata import read_metadata

CORPUS = Path(__file__).parent / "data" / "readers"

MIKU = "general, masterpiece, best quality, amazing quality, \n1girl, solo, hatsune miku, "
NEG = "bad quality, worst quality, worst detail, sketch, censor,"
DUCK = ("photo of a duck", "monochrome")  # sd-parsers test_automatic1111.py PARAMETERS
INVOKE2_PROMPT = (
    "professional full body photo of young woman, hyper long brunette hair, elegant hair, "
    "wearing a bikini top and asymmetric short skirt, curvy body, long legs, (imperfect skin), "
    "detailed skin, intense freckles, super long eye lashes, at night, outside, "
    "city background, 8k ultra detailed, realistic, high quality, film grain, low contrast"
)  # sd-parsers InvokeAI/invokeai_sdmeta1.py and invokeai_dream1.py

# file: (source, prompt or None, negative or None, seed, steps, cfg, sampler, width, height, model)
EXPECTED = {
    # sd-metadata a1111.test.ts
    "sd-webui.png": ("a1111", MIKU + "テスト", NEG, 3782896554, 20, 7, "DPM++ 2M Karras",
                     1024, 1024, "waiIllustriousSDXL_v160"),
    "sd-webui-hires.png": ("a1111", MIKU + "テスト", NEG, 3888671826, 20, 5.5,
                           "DPM++ 2M Karras", 1024, 1024, "waiIllustriousSDXL_v160"),
    "sd-webui.jpg": ("a1111", MIKU + "テスト", NEG, 3623174757, 20, 5.5, "DPM++ 2M Karras",
                     1024, 1024, "waiIllustriousSDXL_v160"),
    "forge-classic.png": ("a1111", MIKU + "テスト", NEG, 1239240392, 20, 6, "DPM++ 2M Karras",
                          1024, 1024, "waiIllustriousSDXL_v160"),
    "forge-neo.png": ("a1111", MIKU.replace(", \n", ",\n") + "テスト", NEG, 4179307297, 24, 6,
                      "Euler a", 1024, 1024, "waiIllustriousSDXL_v160"),
    "forge-neo.jpeg": ("a1111", None, NEG, 2417156106, 24, 6, "Euler a", 1024, 1024,
                       "waiIllustriousSDXL_v160"),
    "reforge.png": ("a1111", MIKU + "テスト", NEG, 270740395, 20, 6, "DPM++ 2M Karras",
                    1024, 1024, "waiIllustriousSDXL_v160"),
    "sd-next.png": ("a1111", MIKU + "#テスト", NEG, 2427651458, 20, 6, "DDIM", 1024, 1024,
                    "waiIllustriousSDXL_v160"),
    "sd-next.jpg": ("a1111", None, None, 899700607, 20, 6, "Euler a", 1024, 1024,
                    "waiIllustriousSDXL_v160"),
    "civitai.jpeg": ("a1111", MIKU + "#テスト", NEG, 1311178179, 25, 5, "Euler a", 1024, 1024,
                     None),
    # No source test for these WebP copies: the EXIF UserComment's settings line.
    "sd-webui.webp": ("a1111", MIKU + "テスト", NEG, 1028435836, 20, 5.5, "DPM++ 2M Karras",
                      1024, 1024, "waiIllustriousSDXL_v160"),
    "forge-neo.webp": ("a1111", None, NEG, 2056443400, 24, 6, "Euler a", 1024, 1024,
                       "waiIllustriousSDXL_v160"),
    # sd-parsers test_automatic1111.py (SAMPLERS, and automatic1111_stealth.py)
    "sdparsers-automatic1111_cropped.png": ("a1111", *DUCK, 235284042, 15, 5, "UniPC", 512,
                                            400, "realistic_realisticVisionV20_v20"),
    "sdparsers-automatic1111_cropped.jpg": ("a1111", *DUCK, 235284042, 15, 5, "UniPC", 512,
                                            400, "realistic_realisticVisionV20_v20"),
    "sdparsers-automatic1111_stealth.png": ("a1111", "a circle", "a square", 2015833630, 20, 7,
                                            "Euler", 64, 64, "realisticVisionV51_v51VAE"),
    # sd-parsers test_fooocus.py: the seed is above 2**53 and must stay exact.
    "sdparsers-fooocus1_cropped.png": ("fooocus", "a smiling goldfish", "", 6952411511246973023,
                                       30, 4, "DPM++ 2M SDE Karras", 768, 1280,
                                       "juggernautXL_v8Rundiffusion"),
    # sd-metadata ruined-fooocus.test.ts
    "ruined-fooocus.png": ("ruinedfooocus", MIKU + "#テスト", NEG, 2020047614, 30, 8,
                           "DPM++ 2M SDE Karras", 1024, 1024,
                           "waiNSFWIllustrious_v150.safetensors"),
    # sd-metadata comfyui.test.ts
    "comfyui.png": ("comfyui", MIKU + "テスト,", NEG, 422847914351919, 20, 5, "Euler a Karras",
                    1024, 1024, "waiIllustriousSDXL_v160.safetensors"),
    "comfyui-hires.png": ("comfyui", None, NEG, 1116526567339338, 20, 5, "Euler a Karras", 1024,
                          1024, "waiIllustriousSDXL_v160.safetensors"),
    "comfyui-upscale.png": ("comfyui", None, NEG, 511796159331902, 20, 5, "Euler a Karras",
                            1024, 1024, "waiIllustriousSDXL_v160.safetensors"),
    "comfyui-low-denoise.png": ("comfyui", None, None, 667022537790957, 40, 5, "Euler a Karras",
                                1024, 1024, "novaPixelsXL_v30.safetensors"),
    "comfyui-comfyroll.png": ("comfyui", MIKU + "#テスト", NEG, 942975376742792, 30, 6,
                              "Euler a", 1024, 1024, "waiNSFWIllustrious_v140.safetensors"),
    "comfyui-rgthree.png": ("comfyui", MIKU + "テスト,", NEG, 963381484256655, 20, 5,
                            "Euler a Karras", 1024, 1024, "waiIllustriousSDXL_v160.safetensors"),
    "comfyui-saveimage-plus.webp": ("comfyui", MIKU.rstrip(", ") + ",", NEG, 453851843419278,
                                    20, 5, "Euler a Karras", 1024, 1024,
                                    "waiIllustriousSDXL_v160.safetensors"),
    # No source test for the JPEG copy: KSampler and EmptyLatentImage of its EXIF graph.
    "comfyui-saveimage-plus.jpg": ("comfyui", None, NEG, 577723948579568, 20, 5,
                                   "Euler a Karras", 1024, 1024,
                                   "waiIllustriousSDXL_v160.safetensors"),
    # sd-parsers ComfyUI/img2img_cropped.py (img2img: no latent size, the pixels' size)
    "sdparsers-img2img_cropped.png": ("comfyui", None, None, 280823642470253, 20, 8, "DPM++ 2M",
                                      None, None, "v1-5-pruned-emaonly.ckpt"),
    # sd-parsers night_evening_day_morning_cropped.py: prompt 6 is the one without an area.
    "sdparsers-night_evening_day_morning_cropped.png": (
        "comfyui",
        "(masterpiece) (best quality) beautiful landscape breathtaking amazing view nature "
        "photograph forest mountains ocean (sky) national park scenery",
        None, 335608130539327, 13, 8.5, "DPM++ SDE", 704, 1280, "Anything-V3.0.ckpt",
    ),
    # sd-metadata tensorart.test.ts reads its ComfyUI graph (KSampler 11002).
    "tensorart.png": ("comfyui", MIKU + "#テスト", NEG.rstrip(","), 3036459311, 25, 7,
                      "Euler a Karras", 1024, 1024, "EMS-1401459-EMS.safetensors"),
    # sd-metadata swarmui.test.ts
    "swarmui.png": ("swarmui", MIKU + "#テスト", NEG, 2083100758, 20, 7, "Euler a Karras", 1024,
                    1024, "waiIllustriousSDXL_v160"),
    "swarmui.jpg": ("swarmui", MIKU + "#テスト", NEG, 697543491, 20, 7, "Euler a Karras", 1024,
                    1024, "waiIllustriousSDXL_v160"),
    "swarmui.webp": ("swarmui", MIKU + "#テスト", NEG, 830680752, 20, 7, "Euler a Karras", 1024,
                     1024, "waiIllustriousSDXL_v160"),
    # sd-metadata stability-matrix.test.ts (its prompt ends "\r\n" there)
    "stability-matrix.png": ("stabilitymatrix", MIKU + "#テスト", NEG, 395309383, 20, 5,
                             "Euler Ancestral Karras", 1024, 1024,
                             "waiIllustriousSDXL_v160.safetensors"),
    # sd-metadata invokeai.test.ts; sd-parsers invokeai_*.py
    "invokeai.png": ("invokeai", MIKU + "#テスト", NEG, 3951921344, 24, 6, "Euler a", 1024,
                     1024, "waiIllustriousSDXL_v160"),
    "sdparsers-invokeai_imeta1.png": (
        "invokeai", "digital artwork, oil painting. painterly brushstrokes, holidays,",
        "grainy+, photo, oversaturated, overexposed, blurry, compressed jpg+, noisy++, "
        "unfocused , black and white", 3293022630, 35, 8, "Euler", 1024, 1024, "juggernautXL",
    ),
    "sdparsers-invokeai_sdmeta1.png": ("invokeai", INVOKE2_PROMPT,
                                       "rendering, glowing eyes, skinny", 2980747362, 50, 5,
                                       "LMS", 512, 768, "deliberateForInvoke_v08"),
    "sdparsers-invokeai_dream1.png": ("invokeai", INVOKE2_PROMPT,
                                      "rendering, glowing eyes, skinny", 2980747362, 50, 5,
                                      "LMS", 512, 768, None),
    # sd-metadata novelai.test.ts; sd-parsers test_novelai.py
    "novelai-curated.png": ("novelai", None, None, 2156638429, 23, 5, "Euler a", 1024, 1024,
                            "NovelAI Diffusion V4.5 C02D4F98"),
    "novelai-full.png": ("novelai", "1girl, solo, hatsune miku, #テスト, very aesthetic, "
                         "masterpiece, no text", None, 2043807047, 28, 5, "Euler a", 832, 1216,
                         "NovelAI Diffusion V4.5 4BDE2A90"),
    # No source test for the WebP copy: the Comment JSON inside its EXIF.
    "novelai-curated.webp": ("novelai", None, None, 880673757, 23, 5, "Euler a", 1024, 1024,
                             "NovelAI Diffusion V4.5 C02D4F98"),
    "sdparsers-novelai1_cropped.png": ("novelai", "masterpiece, best quality,  cat, space, icon",
                                       None, 2253955223, 50, 10, "Euler a", None, None,
                                       "Stable Diffusion 1D44365E"),
}  # fmt: skip
# Graphs with passes after the first: the saved image's chain (ComfyUI nodes named).
HIRES = {
    "comfyui-hires.png": ("10", "0.3"),  # sd-metadata: hires steps 10, denoise 0.3
    "comfyui-comfyroll.png": ("10", "0.3"),  # SaveImage 128 <- SamplerCustom 126, sigmas 132
    "sdparsers-night_evening_day_morning_cropped.png": ("14", "0.5"),  # sd-parsers sampler 24
}


def test_every_corpus_image_has_expected_values() -> None:
    images = {p.name for p in CORPUS.iterdir() if p.suffix in (".png", ".jpg", ".jpeg", ".webp")}
    assert images == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_real_file(name: str) -> None:
    source, prompt, negative, seed, steps, cfg, sampler, width, height, model = EXPECTED[name]
    meta = read_metadata(CORPUS / name)
    assert meta.source == source
    if prompt is not None:
        assert meta.prompt == prompt
    else:
        assert meta.prompt  # a prompt was found; its exact text is not in the source test
    if negative is not None:
        assert meta.negative_prompt == negative
    assert meta.seed == seed and isinstance(meta.seed, int)
    assert (meta.steps, meta.cfg_scale, meta.sampler) == (steps, cfg, sampler)
    if width is not None:
        assert (meta.width, meta.height) == (width, height)
    assert meta.model == model
    assert "\r" not in meta.prompt + meta.negative_prompt


@pytest.mark.parametrize("name", sorted(HIRES))
def test_multi_pass_graphs_take_the_saved_images_chain(name: str) -> None:
    meta = read_metadata(CORPUS / name)
    hires_steps, denoise = HIRES[name]
    assert (meta.extras["Hires steps"], meta.extras["Denoising strength"]) == (hires_steps, denoise)
    assert any("first pass" in note for note in meta.notes)


def test_a1111_extra_keys_are_kept_whole() -> None:
    # civitai.jpeg's settings line ends in unquoted JSON (sd-metadata a1111.test.ts reads it).
    meta = read_metadata(CORPUS / "civitai.jpeg")
    assert meta.extras["Civitai resources"].startswith('[{"type":"checkpoint"')
    assert meta.extras["Civitai metadata"] == "{}"
    assert meta.extras["Clip skip"] == "2"
    hires = read_metadata(CORPUS / "sd-webui-hires.png")  # sd-metadata: hires block
    assert hires.extras["Hires upscale"] == "1.5" and hires.extras["Hires steps"] == "10"
    assert hires.extras["Hires upscaler"] == "R-ESRGAN 4x+ Anime6B"
    assert hires.extras["Denoising strength"] == "0.3"
