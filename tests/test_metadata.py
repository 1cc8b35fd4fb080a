"""The settings an image carries: ours written and read back, other tools' read."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.errors import ValidationError
from sdtui.gallery.metadata import (
    ImageReadError,
    metadata_from_texts,
    png_info,
    read_metadata,
)
from sdtui.params import GenerationRequest, parse_parameters
from sdtui.results import GeneratedImage, GenerationResult


def make_generated(request: GenerationRequest, seed: int = 1234, index: int = 0):
    image = Image.new("RGB", (request.width, request.height), (200, 40, 90))
    generated = GeneratedImage(image=image, seed=seed, index=index, request=request)
    result = GenerationResult(
        request=request,
        images=[generated],
        model_id="builtin:demo",
        device="cpu",
        dtype="fp32",
        load_seconds=0.25,
        generate_seconds=1.5,
    )
    return generated, result


def write_png(path: Path, texts: dict[str, str], size: tuple[int, int] = (64, 48)) -> Path:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", size, (1, 2, 3)).save(path, pnginfo=info)
    return path


# -- ours ---------------------------------------------------------------------------


def test_our_png_carries_the_settings_and_reads_back_equal(tmp_path: Path) -> None:
    request = GenerationRequest(
        prompt="oil painting of a cat, (sitting:1.2) on a rainbow\nsecond line",
        negative_prompt="blurry, low quality",
        model="demo",
        scheduler="Euler a",
        steps=12,
        cfg=6.5,
        seed=77,
        width=64,
        height=64,
        count=3,
        extras={"Style": "watercolor: soft", "Wildcard": "colour=red"},
    )
    generated, result = make_generated(request, seed=79, index=2)
    path = tmp_path / "ours.png"
    generated.image.save(path, pnginfo=png_info(generated, result))

    meta = read_metadata(path)
    assert meta.source == "sdtui"
    assert meta.request() == generated.image_request()
    assert meta.request().seed == 79 and meta.request().count == 1
    assert meta.to_json_dict() == {
        "prompt": request.prompt,
        "negative_prompt": "blurry, low quality",
        "steps": 12,
        "sampler": "Euler a",
        "cfg_scale": 6.5,
        "seed": 79,
        "width": 64,
        "height": 64,
        "model": "demo",
        "extras": {"Style": "watercolor: soft", "Wildcard": "colour=red"},
        "source": "sdtui",
    }
    assert meta.info["device"] == "cpu" and meta.info["index"] == 2
    assert meta.info["model_id"] == "builtin:demo"

    # Other tools read the A1111 `parameters` chunk: it must hold the same settings.
    with Image.open(path) as im:
        parsed = parse_parameters(im.info["parameters"])
    assert parsed.prompt == request.prompt
    assert parsed.negative_prompt == "blurry, low quality"
    assert parsed.settings["Seed"] == "79"
    assert parsed.settings["Sampler"] == "Euler a"
    assert parsed.settings["Style"] == "watercolor: soft"


def test_non_latin_prompt_is_stored_as_utf8_itxt(tmp_path: Path) -> None:
    request = GenerationRequest(
        prompt="富士山の夕焼け 🌅, ñandú", model="demo", width=64, height=64
    )
    generated, result = make_generated(request, seed=5)
    path = tmp_path / "utf8.png"
    generated.image.save(path, pnginfo=png_info(generated, result))

    raw = path.read_bytes()
    assert b"iTXtparameters" in raw  # a tEXt chunk would have mangled the text
    assert "富士山の夕焼け 🌅".encode() in raw
    with Image.open(path) as im:
        assert im.info["parameters"].startswith("富士山の夕焼け 🌅, ñandú")
    meta = read_metadata(path)
    assert meta.prompt == "富士山の夕焼け 🌅, ñandú"
    # Without our chunk, the parameters chunk alone still gives the prompt back.
    assert metadata_from_texts({"parameters": meta_parameters(path)}).prompt == meta.prompt


def meta_parameters(path: Path) -> str:
    with Image.open(path) as im:
        return im.info["parameters"]


# -- AUTOMATIC1111 / Forge -------------------------------------------------------------

A1111_TEXT = (
    "masterpiece, best quality, 1girl, (blue hair:1.2), looking at viewer\n"
    "Negative prompt: lowres, bad anatomy, (worst quality:1.4)\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3052467845, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    "Denoising strength: 0.45, Hires upscale: 2, Hires steps: 15, Hires upscaler: Latent, "
    'Lora hashes: "add_detail: 7c6bad76eb54, epiNoiseoffset_v2: d1131f7207d6", '
    "Version: v1.10.1"
)


def test_reads_automatic1111_parameters(tmp_path: Path) -> None:
    # A hires-fix image: the file is 2x the Size the settings give.
    path = write_png(tmp_path / "a1111.png", {"parameters": A1111_TEXT}, size=(1024, 1536))
    meta = read_metadata(path)
    assert meta.source == "a1111"
    assert meta.prompt == "masterpiece, best quality, 1girl, (blue hair:1.2), looking at viewer"
    assert meta.negative_prompt == "lowres, bad anatomy, (worst quality:1.4)"
    assert (meta.steps, meta.cfg_scale, meta.seed) == (28, 7.0, 3052467845)
    assert meta.sampler == "DPM++ 2M Karras"
    assert (meta.width, meta.height) == (512, 768)
    assert meta.model == "v1-5-pruned-emaonly"
    assert meta.extras["Model hash"] == "6ce0161689"
    assert meta.extras["Hires upscale"] == "2"
    assert meta.extras["Lora hashes"] == "add_detail: 7c6bad76eb54, epiNoiseoffset_v2: d1131f7207d6"

    request = meta.request()
    assert request.scheduler == "DPM++ 2M Karras"
    assert (request.width, request.height, request.seed) == (512, 768, 3052467845)
    assert dict(request.extras)["Version"] == "v1.10.1"


def test_unknown_sampler_is_kept_and_default_used(tmp_path: Path) -> None:
    text = "a fox\nSteps: 20, Sampler: Restart, CFG scale: 5, Seed: 9, Size: 512x512"
    meta = read_metadata(write_png(tmp_path / "r.png", {"parameters": text}))
    request = meta.request()
    assert meta.sampler == "Restart"
    assert dict(request.extras)["Sampler"] == "Restart"
    assert request.steps == 20 and request.seed == 9


def test_fooocus_json_parameters(tmp_path: Path) -> None:
    data = {
        "prompt": "a castle on a hill",
        "negative_prompt": "fog",
        "steps": 30,
        "sampler": "dpmpp_2m_sde_gpu",
        "guidance_scale": 4,
        "seed": "12345",
        "resolution": "(1024, 1024)",
        "base_model": "juggernautXL_v8Rundiffusion",
        "styles": ["Fooocus V2"],
    }
    meta = read_metadata(write_png(tmp_path / "f.png", {"parameters": json.dumps(data)}))
    assert (meta.prompt, meta.negative_prompt, meta.steps, meta.seed) == (
        "a castle on a hill",
        "fog",
        30,
        12345,
    )
    assert (meta.width, meta.height, meta.cfg_scale) == (1024, 1024, 4.0)
    assert meta.model == "juggernautXL_v8Rundiffusion"


# -- ComfyUI -------------------------------------------------------------------------

COMFY_PROMPT = {
    "3": {
        "inputs": {
            "seed": 8566257,
            "steps": 20,
            "cfg": 8,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
        "class_type": "KSampler",
        "_meta": {"title": "KSampler"},
    },
    "4": {
        "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"},
        "class_type": "CheckpointLoaderSimple",
    },
    "5": {
        "inputs": {"width": 512, "height": 768, "batch_size": 1},
        "class_type": "EmptyLatentImage",
    },
    "6": {
        "inputs": {
            "text": "beautiful scenery nature glass bottle landscape, purple galaxy bottle",
            "clip": ["4", 1],
        },
        "class_type": "CLIPTextEncode",
    },
    "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"},
}

COMFY_WORKFLOW = {
    "last_node_id": 9,
    "last_link_id": 9,
    "nodes": [
        {
            "id": 3,
            "type": "KSampler",
            "inputs": [
                {"name": "model", "type": "MODEL", "link": 1},
                {"name": "positive", "type": "CONDITIONING", "link": 4},
                {"name": "negative", "type": "CONDITIONING", "link": 6},
                {"name": "latent_image", "type": "LATENT", "link": 2},
            ],
            "widgets_values": [8566257, "randomize", 20, 8, "euler", "normal", 1],
        },
        {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["v1-5.safetensors"]},
        {"id": 5, "type": "EmptyLatentImage", "widgets_values": [512, 768, 1]},
        {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["glass bottle landscape"]},
        {"id": 7, "type": "CLIPTextEncode", "widgets_values": ["text, watermark"]},
    ],
    "links": [
        [1, 4, 0, 3, 0, "MODEL"],
        [2, 5, 0, 3, 3, "LATENT"],
        [4, 6, 0, 3, 1, "CONDITIONING"],
        [6, 7, 0, 3, 2, "CONDITIONING"],
    ],
    "version": 0.4,
}


def test_reads_comfyui_prompt_graph(tmp_path: Path) -> None:
    texts = {"prompt": json.dumps(COMFY_PROMPT), "workflow": json.dumps(COMFY_WORKFLOW)}
    meta = read_metadata(write_png(tmp_path / "comfy.png", texts))
    assert meta.source == "comfyui"
    assert meta.prompt == "beautiful scenery nature glass bottle landscape, purple galaxy bottle"
    assert meta.negative_prompt == "text, watermark"
    assert (meta.seed, meta.steps, meta.cfg_scale) == (8566257, 20, 8.0)
    assert meta.sampler == "DPM++ 2M Karras"
    assert (meta.width, meta.height) == (512, 768)
    assert meta.model == "v1-5-pruned-emaonly.safetensors"
    request = meta.request()
    assert request.scheduler == "DPM++ 2M Karras" and request.seed == 8566257


def test_comfyui_text_through_a_primitive_node_and_64_bit_seed(tmp_path: Path) -> None:
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["6"]["inputs"]["text"] = ["10", 0]
    graph["10"] = {"inputs": {"value": "a lighthouse at dusk"}, "class_type": "PrimitiveString"}
    graph["3"]["inputs"]["seed"] = 156680208700286  # ComfyUI seeds go past 2**32
    meta = read_metadata(write_png(tmp_path / "c.png", {"prompt": json.dumps(graph)}))
    assert meta.prompt == "a lighthouse at dusk"
    assert meta.seed == 156680208700286
    # Beyond the seeds sdtui can use: remix keeps every other value and the seed as text.
    request = meta.request()
    assert request.seed is None and request.prompt == "a lighthouse at dusk"
    assert dict(request.extras)["Original seed"] == "156680208700286"


def test_comfyui_workflow_only(tmp_path: Path) -> None:
    meta = read_metadata(write_png(tmp_path / "w.png", {"workflow": json.dumps(COMFY_WORKFLOW)}))
    assert meta.source == "comfyui"
    assert (meta.prompt, meta.negative_prompt) == ("glass bottle landscape", "text, watermark")
    assert (meta.seed, meta.steps, meta.sampler) == (8566257, 20, "Euler")
    assert (meta.width, meta.height, meta.model) == (512, 768, "v1-5.safetensors")


# -- InvokeAI ------------------------------------------------------------------------


def test_reads_invokeai_metadata(tmp_path: Path) -> None:
    data = {
        "generation_mode": "txt2img",
        "positive_prompt": "a red fox in snow",
        "negative_prompt": "blurry",
        "width": 768,
        "height": 512,
        "seed": 2887466981,
        "rand_device": "cpu",
        "cfg_scale": 7.5,
        "steps": 30,
        "scheduler": "dpmpp_2m_k",
        "model": {
            "key": "9d5b4c1e",
            "hash": "blake3:abc",
            "name": "stable-diffusion-v1-5",
            "base": "sd-1",
            "type": "main",
        },
        "app_version": "4.2.9",
    }
    meta = read_metadata(write_png(tmp_path / "i.png", {"invokeai_metadata": json.dumps(data)}))
    assert meta.source == "invokeai"
    assert (meta.prompt, meta.negative_prompt) == ("a red fox in snow", "blurry")
    assert (meta.width, meta.height, meta.seed, meta.steps) == (768, 512, 2887466981, 30)
    assert meta.sampler == "DPM++ 2M Karras"
    assert meta.model == "stable-diffusion-v1-5"
    assert meta.extras["app_version"] == "4.2.9"
    assert meta.request().cfg == 7.5


# -- anything else ---------------------------------------------------------------------


def test_png_without_metadata(tmp_path: Path) -> None:
    meta = read_metadata(write_png(tmp_path / "plain.png", {}, size=(33, 21)))
    assert meta.source == "none"
    assert (meta.width, meta.height, meta.prompt) == (33, 21, "")
    with pytest.raises(ValidationError, match="no prompt"):
        meta.request()


@pytest.mark.parametrize(
    "texts",
    [
        {"sdtui": "{not json"},
        {"sdtui": json.dumps({"request": "nope"}), "parameters": "a cat\nSteps: 3"},
        {"prompt": "[1, 2"},
        {"prompt": json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": "x"}}})},
        {"prompt": json.dumps({"3": {"class_type": "KSampler", "inputs": {"positive": [3]}}})},
        {"invokeai_metadata": json.dumps([1, 2, 3])},
        {"invokeai_metadata": json.dumps({"seed": 1e400, "model": 5})},
        {"workflow": json.dumps({"nodes": [{"type": "KSampler", "widgets_values": [1]}]})},
        {"parameters": "Steps: x, Sampler: , Seed: 99999999999999999999999999999"},
        {"parameters": "{" * 100_000},
    ],
)
def test_malformed_metadata_never_crashes(tmp_path: Path, texts: dict[str, str]) -> None:
    meta = read_metadata(write_png(tmp_path / "bad.png", texts))
    assert meta.source in ("sdtui", "a1111", "comfyui", "invokeai", "none")
    assert (meta.width, meta.height) == (64, 48)


def test_not_a_png_named_png(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("this is a shell script, not an image\n")
    with pytest.raises(ImageReadError, match="not an image"):
        read_metadata(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError):
        read_metadata(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="no such file"):
        read_metadata(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_metadata(tmp_path)


def test_truncated_png(tmp_path: Path) -> None:
    path = write_png(tmp_path / "t.png", {"parameters": A1111_TEXT})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # cut inside the image data
    assert read_metadata(path).prompt.startswith("masterpiece")  # the settings survive
    with pytest.raises(ImageReadError, match="truncated"):
        read_metadata(path, require_complete=True)
    path.write_bytes(data[:20])  # cut inside the header
    with pytest.raises(ImageReadError):
        read_metadata(path)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    # A valid PNG header claiming 100,000 x 100,000 pixels.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    png += _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    with pytest.raises(ImageReadError, match="too large"):
        read_metadata(path)


def test_compressed_text_bomb_and_huge_chunks(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("parameters", "x" * 50_000_000, zip=True)  # 50 MB that compresses to ~50 KB
    path = tmp_path / "ztxt.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    with pytest.raises(ImageReadError):
        read_metadata(path)

    huge = write_png(tmp_path / "huge.png", {"parameters": "a cat, " * 400_000})
    meta = read_metadata(huge)  # 2.8 MB of text: ignored, the file itself still reads
    assert meta.source == "none" and meta.prompt == ""


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400))
def test_random_bytes_after_the_signature(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "fuzz.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + tail)
    try:
        read_metadata(path, require_complete=True)
    except ImageReadError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["sdtui", "parameters", "prompt", "workflow", "invokeai_metadata"]),
        st.one_of(
            st.text(max_size=200),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4)
                ),
                max_leaves=20,
            ).map(json.dumps),
        ),
    )
)
def test_any_text_chunks_give_metadata(texts: dict[str, str]) -> None:
    meta = metadata_from_texts(texts)
    assert meta.source in ("sdtui", "a1111", "comfyui", "invokeai", "none")
    try:
        meta.request()
    except ValidationError:
        pass


def test_a1111_jpeg_with_exif_user_comment(tmp_path: Path) -> None:
    # A1111 saves JPEG/WebP settings as an EXIF UserComment in UTF-16 ("UNICODE" prefix).
    for suffix, fmt in ((".jpg", "JPEG"), (".webp", "WEBP")):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + A1111_TEXT.encode("utf-16-be")
        path = tmp_path / f"a1111{suffix}"
        Image.new("RGB", (512, 768)).save(path, format=fmt, exif=exif)
        meta = read_metadata(path)
        assert meta.source == "a1111", fmt
        assert meta.seed == 3052467845 and meta.extras["Model hash"] == "6ce0161689"


def test_incomplete_sdtui_record_falls_back_to_parameters() -> None:
    record = json.dumps({"request": {"steps": 5}, "seed": 3})
    meta = metadata_from_texts({"sdtui": record, "parameters": A1111_TEXT})
    assert meta.source == "a1111" and meta.seed == 3052467845
    hand_edited = json.dumps({"request": {"prompt": "x", "steps": 5000}, "seed": 3})
    with pytest.raises(ValidationError, match="steps"):
        metadata_from_texts({"sdtui": hand_edited}).request()
