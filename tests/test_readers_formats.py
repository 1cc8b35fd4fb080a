"""Formats as their writers produce them, where the corpus has no file of that kind.

Each test builds the file the way the tool's own writer code does (named in the
test) and checks the values that writer put in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.gallery.metadata import metadata_from_texts, read_metadata
from sdtui.gallery.readers.base import exact_int

CORPUS = Path(__file__).parent / "data" / "readers"


def write_png(path: Path, texts: dict[str, str], image: Image.Image | None = None) -> Path:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    (image or Image.new("RGB", (64, 64))).save(path, pnginfo=info)
    return path


# -- A1111 text ------------------------------------------------------------------


def test_a1111_hashes_json_value_keeps_the_settings_line() -> None:
    # sd-parsers tests/test_automatic1111.py::test_hashes: the same text and values.
    text = (
        "photo of a duck\nNegative prompt: monochrome\n"
        "Steps: 15, Sampler: UniPC, CFG scale: 5, Seed: 235284042, Size: 512x400, "
        "Model hash: c0d1994c73, Model: realistic_realisticVisionV20_v20"
        ', Hashes: {"vae": "c6a580b13a", "model": "c0d1994c73"}'
    )
    meta = metadata_from_texts({"parameters": text})
    assert (meta.prompt, meta.negative_prompt) == ("photo of a duck", "monochrome")
    assert (meta.steps, meta.sampler, meta.cfg_scale, meta.seed) == (15, "UniPC", 5.0, 235284042)
    assert (meta.width, meta.height, meta.model) == (512, 400, "realistic_realisticVisionV20_v20")
    assert json.loads(meta.extras["Hashes"]) == {"vae": "c6a580b13a", "model": "c0d1994c73"}


def test_a1111_quoted_values_and_a_json_list_in_the_middle() -> None:
    # A1111 modules/infotext_utils.py quote(): values with , : or " are JSON strings.
    text = (
        'a cat\nSteps: 20, Sampler: Euler a, Lora hashes: "a: 1, b: 2", '
        'Civitai resources: [{"type":"lora","weight":0.8}], CFG scale: 7, Seed: 3'
    )
    meta = metadata_from_texts({"parameters": text})
    assert meta.prompt == "a cat" and meta.negative_prompt == ""
    assert (meta.steps, meta.cfg_scale, meta.seed) == (20, 7.0, 3)
    assert meta.extras["Lora hashes"] == "a: 1, b: 2"
    assert json.loads(meta.extras["Civitai resources"]) == [{"type": "lora", "weight": 0.8}]


def test_a1111_prompt_with_two_pairs_is_not_a_settings_line() -> None:
    # A1111 parse_generation_parameters: fewer than 3 pairs on the last line = prompt.
    meta = metadata_from_texts({"parameters": "portrait\nstyle: oil, mood: calm"})
    assert meta.prompt == "portrait\nstyle: oil, mood: calm" and meta.steps is None


# -- seeds --------------------------------------------------------------------------


@given(st.integers(0, 2**64 - 1))
def test_every_seed_stays_exact_through_every_text_form(seed: int) -> None:
    a1111 = metadata_from_texts({"parameters": f"x\nSteps: 2, Seed: {seed}, CFG scale: 7"})
    graph = {"1": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 2, "cfg": 7}}}
    comfy = metadata_from_texts({"prompt": json.dumps(graph)})
    fooocus = metadata_from_texts({"parameters": json.dumps({"prompt": "x", "seed": str(seed)})})
    assert a1111.seed == comfy.seed == fooocus.seed == seed


def test_exact_int_refuses_what_is_not_an_exact_integer() -> None:
    assert exact_int("6952411511246973023") == 6952411511246973023
    assert exact_int(2.0**60) is None  # a float that large may already be rounded
    assert [exact_int(v) for v in (1.5, "1e3", True, float("nan"), "12a")] == [None] * 5
    assert exact_int(" 42 ") == 42 and exact_int("7.0") == 7


# -- Fooocus in JPEG and WebP -------------------------------------------------------


def _fooocus_exif_image(
    path: Path, fmt: str, metadata: str, scheme: str, encode: bool = False
) -> Path:
    # Fooocus modules/meta_parser.py get_exif(): UserComment, Software and MakerNote
    # in the main EXIF block (not the EXIF sub-block A1111 uses); some forks store
    # `metadata.encode("utf-8")` there instead of the text.
    exif = Image.Exif()
    exif[0x9286] = metadata.encode() if encode else metadata
    exif[0x0131] = "Fooocus v2.4.3"
    exif[0x927C] = scheme
    Image.new("RGB", (64, 96), "gray").save(path, fmt, exif=exif.tobytes())
    return path


@pytest.mark.parametrize(
    "fmt,suffix,encode", [("JPEG", ".jpg", False), ("WEBP", ".webp", False), ("JPEG", ".jpg", True)]
)
def test_fooocus_json_scheme_in_main_exif(
    tmp_path: Path, fmt: str, suffix: str, encode: bool
) -> None:
    texts = read_metadata(CORPUS / "sdparsers-fooocus1_cropped.png")  # its real JSON
    from sdtui.gallery.readers.container import read_text_chunks

    raw, _, _ = read_text_chunks(CORPUS / "sdparsers-fooocus1_cropped.png")
    path = _fooocus_exif_image(tmp_path / f"f{suffix}", fmt, raw["parameters"], "fooocus", encode)
    meta = read_metadata(path)
    # sd-parsers tests/test_fooocus.py
    assert meta.source == "fooocus" and meta.prompt == "a smiling goldfish"
    assert meta.seed == 6952411511246973023 == texts.seed
    assert (meta.steps, meta.cfg_scale, meta.width, meta.height) == (30, 4.0, 768, 1280)
    assert meta.model == "juggernautXL_v8Rundiffusion"


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_fooocus_a1111_scheme_in_main_exif(tmp_path: Path, fmt: str, suffix: str) -> None:
    # Fooocus A1111MetadataParser.to_string(): full prompt, negative, sorted `Key: value`s.
    text = (
        "a smiling goldfish, deep focus\nNegative prompt: blurry, text\n"
        "CFG scale: 4, Model: juggernautXL_v8Rundiffusion, Sampler: DPM++ 2M SDE Karras, "
        "Seed: 6952411511246973023, Size: 768x1280, Steps: 30, Version: Fooocus v2.4.3"
    )
    meta = read_metadata(_fooocus_exif_image(tmp_path / f"f{suffix}", fmt, text, "a1111"))
    assert meta.source == "fooocus"
    assert (meta.prompt, meta.negative_prompt) == ("a smiling goldfish, deep focus", "blurry, text")
    assert meta.seed == 6952411511246973023
    assert (meta.steps, meta.cfg_scale, meta.sampler) == (30, 4.0, "DPM++ 2M SDE Karras")
    assert (meta.width, meta.height) == (768, 1280)


def test_a1111_text_in_jpeg_user_comment_either_byte_order(tmp_path: Path) -> None:
    # A1111 images.py save_image_with_geninfo: piexif UserComment "unicode" (UTF-16 BE);
    # SwarmUI writes the little-endian form (see swarmui.jpg in the corpus).
    text = "a red fox\nNegative prompt: dog\nSteps: 9, Sampler: Euler, CFG scale: 5, Seed: 77"
    for order in ("utf-16-be", "utf-16-le"):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode(order)
        path = tmp_path / f"{order}.jpg"
        Image.new("RGB", (32, 32)).save(path, "JPEG", exif=exif.tobytes())
        meta = read_metadata(path)
        assert (meta.prompt, meta.negative_prompt, meta.seed) == ("a red fox", "dog", 77)


# -- ComfyUI beyond KSampler ---------------------------------------------------------


def _save(graph: dict, last: str) -> dict:
    graph["90"] = {"class_type": "VAEDecode", "inputs": {"samples": [last, 0], "vae": ["1", 2]}}
    graph["91"] = {"class_type": "SaveImage", "inputs": {"images": ["90", 0]}}
    return graph


def test_comfy_flux_sampler_custom_advanced() -> None:
    # ComfyUI's Flux example graph (comfy_extras nodes_custom_sampler.py, nodes_flux.py).
    graph = _save(
        {
            "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors"}},
            "2": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "t5xxl.safetensors"}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["2", 0]}},
            "4": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["3", 0],
                                                            "guidance": 3.5}},
            "5": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0],
                                                           "conditioning": ["4", 0]}},
            "6": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
            "7": {"class_type": "BasicScheduler", "inputs": {"scheduler": "simple", "steps": 28,
                                                              "denoise": 1.0, "model": ["1", 0]}},
            "8": {"class_type": "RandomNoise", "inputs": {"noise_seed": 2**60 + 5}},
            "9": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 768,
                                                                   "batch_size": 1}},
            "10": {"class_type": "SamplerCustomAdvanced", "inputs": {
                "noise": ["8", 0], "guider": ["5", 0], "sampler": ["6", 0],
                "sigmas": ["7", 0], "latent_image": ["9", 0]}},
        },
        "10",
    )  # fmt: skip
    meta = metadata_from_texts({"prompt": json.dumps(graph)})
    assert (meta.prompt, meta.negative_prompt) == ("a fox", "")
    assert (meta.seed, meta.steps, meta.sampler, meta.cfg_scale) == (2**60 + 5, 28, "Euler", 3.5)
    assert (meta.width, meta.height, meta.model) == (1024, 768, "flux1-dev.safetensors")
    assert meta.extras["Guidance"] == "3.5"


def _ksampler_advanced(negative: list, positive: list | None = None) -> dict:
    return {
        "class_type": "KSamplerAdvanced",
        "inputs": {
            "noise_seed": 11, "steps": 30, "cfg": 4.5, "sampler_name": "dpmpp_2m",
            "scheduler": "karras", "positive": positive or ["3", 0], "negative": negative,
            "latent_image": ["5", 0], "model": ["1", 0], "start_at_step": 0,
        },
    }  # fmt: skip


def _base(text: object = "a castle") -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["1", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216}},
    }


def test_comfy_zeroed_negative_is_no_negative() -> None:
    graph = _base()
    graph["4"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["3", 0]}}
    graph["6"] = _ksampler_advanced(["4", 0])
    meta = metadata_from_texts({"prompt": json.dumps(_save(graph, "6"))})
    assert (meta.prompt, meta.negative_prompt) == ("a castle", "")
    assert (meta.seed, meta.steps, meta.cfg_scale, meta.sampler) == (11, 30, 4.5, "DPM++ 2M Karras")


def test_comfy_prompt_through_primitives_concat_and_gligen() -> None:
    graph = _base(["12", 0])
    graph["10"] = {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "a castle"}}
    graph["11"] = {"class_type": "String Literal", "inputs": {"string": "at dawn"}}
    graph["12"] = {"class_type": "StringConcatenate", "inputs": {
        "string_a": ["10", 0], "string_b": ["11", 0], "delimiter": ", "}}  # fmt: skip
    graph["13"] = {"class_type": "GLIGENTextBoxApply", "inputs": {
        "conditioning_to": ["3", 0], "text": "a flag", "width": 64, "height": 64}}  # fmt: skip
    graph["14"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a tree", "clip": ["1", 1]}}
    graph["15"] = {"class_type": "ConditioningSetArea", "inputs": {"conditioning": ["14", 0]}}
    graph["16"] = {"class_type": "ConditioningCombine", "inputs": {
        "conditioning_1": ["15", 0], "conditioning_2": ["13", 0]}}  # fmt: skip
    graph["17"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}}
    graph["6"] = _ksampler_advanced(["17", 0], positive=["16", 0])
    meta = metadata_from_texts({"prompt": json.dumps(_save(graph, "6"))})
    assert (meta.prompt, meta.negative_prompt) == ("a castle, at dawn", "blurry")


def test_comfy_graph_not_understood_still_shows_what_it_can(tmp_path: Path) -> None:
    from sdtui.cli import main

    graph = _base()
    graph["7"] = {"class_type": "MysterySampler", "inputs": {"positive": ["3", 0]}}
    path = write_png(tmp_path / "odd.png", {"prompt": json.dumps(graph)})
    meta = read_metadata(path)
    assert meta.source == "comfyui" and meta.prompt == "a castle"
    assert meta.model == "sdxl.safetensors" and (meta.width, meta.height) == (832, 1216)
    assert meta.notes and "without a sampler" in meta.notes[0]
    assert main(["info", str(path)]) == 0


def test_comfy_info_names_the_note(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sdtui.cli import main

    graph = _base()
    path = write_png(tmp_path / "odd.png", {"prompt": json.dumps(graph)})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no generation settings" not in out
    assert "Note: ComfyUI graph without a sampler" in out and "Prompt: a castle" in out


def test_comfy_workflow_only_through_ui_widgets() -> None:
    # The UI workflow ComfyUI writes beside `prompt` (litegraph serialisation).
    workflow = {
        "nodes": [
            {"id": 3, "type": "KSamplerAdvanced", "inputs": [
                {"name": "positive", "link": 1}, {"name": "negative", "link": 2},
                {"name": "latent_image", "link": 3}],
             "widgets_values": ["enable", 5, "fixed", 12, 6, "euler", "normal", 0, 1000,
                                "disable"]},
            {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["a boat"]},
            {"id": 7, "type": "CLIPTextEncode", "widgets_values": ["fog"]},
            {"id": 5, "type": "EmptyLatentImage", "widgets_values": [640, 448, 1]},
        ],
        "links": [[1, 6, 0, 3, 0, "CONDITIONING"], [2, 7, 0, 3, 1, "CONDITIONING"],
                  [3, 5, 0, 3, 3, "LATENT"]],
    }  # fmt: skip
    meta = metadata_from_texts({"workflow": json.dumps(workflow)})
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps) == ("a boat", "fog", 5, 12)
    assert (meta.cfg_scale, meta.sampler, meta.width, meta.height) == (6.0, "Euler", 640, 448)


# -- A1111 stealth in RGB --------------------------------------------------------------


def _stealth_rgb(text: str, size: tuple[int, int] = (40, 40)) -> Image.Image:
    # stealth-pnginfo's add_stealth_pnginfo (mode "rgb", not compressed): signature,
    # 32-bit length in bits, the UTF-8 text; bits column by column, R G B of each pixel.
    import numpy as np

    body = text.encode()
    payload = b"stealth_rgbinfo" + (len(body) * 8).to_bytes(4, "big") + body
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    pixels = np.full((size[1], size[0], 3), 200, dtype=np.uint8)
    columns = pixels.transpose(1, 0, 2).reshape(-1).copy()
    columns[: bits.size] = (columns[: bits.size] & 0xFE) | bits
    return Image.fromarray(columns.reshape(size[0], size[1], 3).transpose(1, 0, 2).copy())


def test_stealth_metadata_in_rgb_low_bits(tmp_path: Path) -> None:
    text = "a lighthouse\nNegative prompt: people\nSteps: 12, Sampler: Euler, CFG scale: 6, Seed: 9"
    path = tmp_path / "stealth.png"
    _stealth_rgb(text).save(path)
    meta = read_metadata(path)
    assert (meta.prompt, meta.negative_prompt, meta.steps, meta.seed) == (
        "a lighthouse", "people", 12, 9,
    )  # fmt: skip


def test_plain_image_without_metadata_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGBA", (32, 32), (1, 2, 3, 255)).save(path)
    assert read_metadata(path).source == "none"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
_CHUNKS = (
    "parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata", "Dream", "Comment",
    "Description", "Software", "parameters-json", "sdtui",
)  # fmt: skip


@given(
    st.dictionaries(
        st.sampled_from(_CHUNKS),
        st.one_of(st.text(max_size=60), _JSON.map(json.dumps)),
        max_size=4,
    )
)
def test_any_chunks_give_settings_or_nothing_never_an_error(texts: dict[str, str]) -> None:
    meta = metadata_from_texts(texts)
    assert meta.seed is None or isinstance(meta.seed, int)
    assert isinstance(meta.prompt, str) and "\r" not in meta.prompt
    for value in meta.extras.values():
        assert isinstance(value, str)


_FIELDS = st.sampled_from(
    ("prompt", "seed", "steps", "cfgscale", "width", "model", "Prompt", "software", "image",
     "positive_prompt", "uc", "PositivePrompt", "Seed", "nodes", "links", "inputs", "type")
)  # fmt: skip
_OBJECT = st.dictionaries(_FIELDS, _JSON, max_size=6)


@given(
    st.one_of(
        _OBJECT.map(lambda d: {"parameters": json.dumps({"sui_image_params": d})}),
        _OBJECT.map(lambda d: {"parameters": json.dumps({**d, "software": "RuinedFooocus"})}),
        _OBJECT.map(lambda d: {"parameters": json.dumps({**d, "metadata_scheme": "fooocus"})}),
        _OBJECT.map(lambda d: {"parameters-json": json.dumps({**d, "PositivePrompt": "x"})}),
        _OBJECT.map(lambda d: {"sd-metadata": json.dumps({"image": d})}),
        _OBJECT.map(lambda d: {"Comment": json.dumps(d), "Software": "NovelAI"}),
        st.fixed_dictionaries({"nodes": st.lists(_OBJECT, max_size=4), "links": _JSON}).map(
            lambda w: {"workflow": json.dumps(w)}
        ),
    )
)
def test_each_readers_shape_with_any_values_gives_clean_settings(texts: dict[str, str]) -> None:
    meta = metadata_from_texts(texts)
    numbers = (meta.seed, meta.steps, meta.width, meta.height)
    assert all(v is None or (type(v) is int) for v in numbers)
    assert meta.cfg_scale is None or isinstance(meta.cfg_scale, float)
    assert all(isinstance(v, str) for v in meta.extras.values())
    assert meta.model is None or isinstance(meta.model, str)
    json.dumps(meta.to_json_dict())


def test_utf8_written_into_latin1_text_is_repaired_but_ours_is_exact(tmp_path: Path) -> None:
    from sdtui.gallery.readers.container import read_text_chunks

    # Stability Matrix writes UTF-8 bytes into its tEXt `parameters` (sd-metadata's
    # stability-matrix test reads "#テスト" from the JSON copy of the same prompt).
    raw, _, _ = read_text_chunks(CORPUS / "stability-matrix.png")
    assert "#テスト" in raw["parameters"]
    # Our own iTXt record is exact, even where its text looks like such damage.
    record = {"request": {"prompt": "Ã© café", "seed": 3}, "seed": 3}
    info = PngInfo()
    info.add_itxt("sdtui", json.dumps(record, ensure_ascii=False))
    path = tmp_path / "ours.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    assert read_metadata(path).prompt == "Ã© café"
