"""LoRAs and embeddings on the demo pipeline: weights, switching, removal, refusals."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import lora_files
import numpy as np
import pytest

from sdtui.addons import AddonError, AddonFolders, AddonLibrary, HashCache, scan_folder
from sdtui.errors import UnsafeCheckpointError, ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.loras import find_lora_tags, strip_lora_tags


@pytest.fixture(scope="module")
def addon_dirs(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> AddonFolders:
    root = tmp_path_factory.mktemp("addons")
    loras, embeddings = root / "loras", root / "embeddings"
    lora_files.write_diffusers_lora(demo_model_dir, loras / "alpha.safetensors", seed=1)
    lora_files.write_kohya_lora(demo_model_dir, loras / "styles" / "inkwash.safetensors", seed=2)
    lora_files.write_sdxl_lora(loras / "xlonly.safetensors")
    lora_files.write_embedding(embeddings / "badhands.safetensors", vectors=2)
    lora_files.write_embedding(embeddings / "plainstyle.safetensors", style="diffusers", seed=4)
    lora_files.write_embedding(embeddings / "xlemb.safetensors", style="sdxl")
    return AddonFolders(loras, embeddings)


@pytest.fixture(scope="module")
def engine(
    addon_dirs: AddonFolders, demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
):
    from sdtui.engine import Engine

    cache = HashCache(tmp_path_factory.mktemp("hashes") / "hashes.json")
    engine = Engine(device="cpu", addons=AddonLibrary(addon_dirs, cache))
    with pytest.MonkeyPatch.context() as patch:
        # Built before the per-test folders: the demo model comes from the session's cache.
        patch.setenv("SDTUI_CACHE_DIR", str(demo_model_dir.parent))
        engine.load("demo")
    return engine


def _pixels(engine, prompt: str, negative: str = "") -> np.ndarray:
    request = GenerationRequest(
        prompt=prompt, negative_prompt=negative, model="demo", steps=4, width=64, height=64, seed=7
    )
    return np.asarray(engine.generate(request).images[0].image).astype(int)


def test_tags_are_read_anywhere_and_taken_out_of_the_encoded_text() -> None:
    prompt = "<lora:alpha:0.8> a cat, <lora:ink wash:-1.5>, at night <lora:beta>"
    tags = find_lora_tags(prompt)
    assert [(t.name, t.weight) for t in tags] == [("alpha", 0.8), ("ink wash", -1.5), ("beta", 1.0)]
    assert strip_lora_tags(prompt) == "a cat, at night"
    assert strip_lora_tags("a cat") == "a cat"


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("a <lora:alpha:7>", "from -5 to 5"),
        ("a <lora:alpha:lots>", "give a number"),
        ("a <lora::1>", "has no name"),
        ("a <lora:alpha:1> <lora:Alpha:0.5>", "appears twice"),
        ("a <lora:alpha:1:0.5>", "more than one weight"),
    ],
)
def test_malformed_tags_are_refused_with_a_message(prompt: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        find_lora_tags(prompt)


def test_weight_zero_is_the_base_model_and_removal_restores_it_exactly(engine) -> None:
    base = _pixels(engine, "a cat")
    assert (_pixels(engine, "a cat <lora:alpha:0>") == base).all()
    with_lora = _pixels(engine, "a cat <lora:alpha:1>")
    assert np.abs(with_lora - base).mean() > 0.5
    assert (_pixels(engine, "a cat") == base).all()
    from sdtui.engine.adapters import loaded_adapters

    assert loaded_adapters(engine.pipeline) == ([], [])


def test_two_loras_combine_and_switching_keeps_the_base_model(engine) -> None:
    loads = engine.load_count
    alpha = _pixels(engine, "a cat <lora:alpha:1>")
    ink = _pixels(engine, "a cat <lora:inkwash:1>")  # kohya key names, in a subfolder
    both = _pixels(engine, "a cat <lora:alpha:1> <lora:inkwash:1>")
    assert np.abs(ink - alpha).mean() > 0.5
    assert np.abs(both - alpha).mean() > 0.5 and np.abs(both - ink).mean() > 0.5
    negative = _pixels(engine, "a cat <lora:alpha:-1>")
    assert np.abs(negative - alpha).mean() > 0.5
    # Back to one LoRA: the same pixels as before, from the adapters kept loaded.
    assert (_pixels(engine, "a cat <lora:alpha:1>") == alpha).all()
    assert engine.load_count == loads


def test_a_lora_for_another_family_is_refused_naming_both(engine) -> None:
    with pytest.raises(AddonError, match="made for SDXL; the loaded model is SD 1.x") as caught:
        _pixels(engine, "a cat <lora:xlonly:1>")
    assert caught.value.exit_code == 2


def test_an_unknown_name_gives_the_closest_names(engine) -> None:
    with pytest.raises(ValidationError, match="closest: alpha"):
        _pixels(engine, "a cat <lora:alpah:1>")


def test_damaged_and_pickle_files_are_refused(
    engine, addon_dirs: AddonFolders, tmp_path: Path
) -> None:
    from sdtui.engine import adapters

    broken = addon_dirs.loras / "broken.safetensors"
    broken.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    pickled = addon_dirs.loras / "old.pt"
    pickled.write_bytes(b"not really a pickle")
    try:
        with pytest.raises(AddonError, match="damaged"):
            _pixels(engine, "a cat <lora:broken:1>")
        with pytest.raises(UnsafeCheckpointError, match="pickle"):
            _pixels(engine, "a cat <lora:old:1>")
        # Allowed, a bad pickle is still refused in one line, not a traceback.
        item = next(f for f in scan_folder(addon_dirs.loras, "lora") if f.name == "old")
        with pytest.raises(AddonError, match="could not be read"):
            adapters.apply_loras(engine.pipeline, [(item, 1.0)], "sd1", allow_pickle=True)
    finally:
        broken.unlink()
        pickled.unlink()
    assert _pixels(engine, "a cat").shape == (64, 64, 3)  # the engine still works


def test_a_lora_whose_layers_do_not_fit_is_refused_and_leaves_nothing_behind(
    engine, addon_dirs: AddonFolders
) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(addon_dirs.loras / "alpha.safetensors"))
    key = next(k for k in tensors if "attn2.to_k.lora_A" in k)
    tensors[key] = tensors[key].new_zeros(tensors[key].shape[0], 48)  # no family has 48
    odd = addon_dirs.loras / "odd.safetensors"
    save_file(tensors, str(odd))
    try:
        base = _pixels(engine, "a cat")
        with pytest.raises(AddonError, match="'odd' does not fit this model"):
            _pixels(engine, "a cat <lora:odd:1>")
        assert (_pixels(engine, "a cat") == base).all()
        assert not any(engine.pipeline.get_list_adapters().values())
    finally:
        odd.unlink()


def _encoding(engine, prompt: str):
    import torch

    pipe = engine.pipeline
    ids = pipe.tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        return pipe.text_encoder(ids.input_ids)[0]


def test_an_embedding_token_changes_the_encoding(engine) -> None:
    from sdtui.engine import adapters
    from sdtui.engine.adapters import loaded_adapters

    base = _pixels(engine, "a cat")
    plain = _encoding(engine, "a cat badhands")
    with_embedding = _pixels(engine, "a cat badhands")  # loads the embedding
    assert loaded_adapters(engine.pipeline)[1] == ["badhands"]
    request = GenerationRequest(prompt="a cat badhands", model="demo")
    recorded, text, _ = adapters.prepare_pipeline(engine.pipeline, request, engine.addons, "sd1")
    assert recorded.prompt == "a cat badhands"  # the recorded prompt is as written
    assert text == "a cat badhands badhands#1"  # one token per vector of the file
    ids = engine.pipeline.tokenizer(text, add_special_tokens=False).input_ids
    added = engine.pipeline.tokenizer.get_added_vocab()
    assert ids[-2:] == [added["badhands"], added["badhands#1"]]
    embedded = _encoding(engine, text)
    assert not np.allclose(plain.numpy(), embedded.numpy())
    assert np.abs(with_embedding - base).mean() > 0.1
    # In the negative prompt too (a diffusers-format file), and gone when no longer named.
    assert np.abs(_pixels(engine, "a cat", "PlainStyle") - base).mean() > 0.1
    assert (_pixels(engine, "a cat") == base).all()
    assert loaded_adapters(engine.pipeline)[1] == []


def test_an_embedding_in_a_weighted_prompt_uses_all_its_vectors(engine) -> None:
    without = _pixels(engine, "(a cat:1.2)")
    weighted = _pixels(engine, "(a cat:1.2) badhands")
    assert np.abs(weighted - without).mean() > 0.1
    # Only the first vector would give other pixels: the second one is used too.
    vectors = engine.pipeline.text_encoder.get_input_embeddings().weight
    added = engine.pipeline.tokenizer.get_added_vocab()
    import torch

    with torch.no_grad():
        saved = vectors[added["badhands#1"]].clone()
        # (not a constant shift: the encoder's layer norm takes that out)
        vectors[added["badhands#1"]] = torch.randn(
            saved.shape, generator=torch.Generator().manual_seed(9)
        )
        try:
            assert np.abs(_pixels(engine, "(a cat:1.2) badhands") - weighted).mean() > 0.1
        finally:
            vectors[added["badhands#1"]] = saved


def test_an_sdxl_embedding_is_refused_on_sd1(engine) -> None:
    with pytest.raises(AddonError, match="made for SDXL"):
        _pixels(engine, "a cat xlemb")


def test_folders_are_scanned_with_family_and_training_tags(addon_dirs: AddonFolders) -> None:
    found = {f.name: f for f in scan_folder(addon_dirs.loras, "lora")}
    assert set(found) == {"alpha", "inkwash", "xlonly"}
    assert found["inkwash"].family == "sd1"
    assert found["inkwash"].triggers[:2] == ("1girl", "ink wash")
    assert found["xlonly"].family == "sdxl"
    embeddings = {f.name: f.family for f in scan_folder(addon_dirs.embeddings, "embedding")}
    assert embeddings["xlemb"] == "sdxl"


def test_recorded_hashes_are_a1111s(addon_dirs: AddonFolders, tmp_path: Path) -> None:
    library = AddonLibrary(addon_dirs, HashCache(tmp_path / "h.json"))
    request = GenerationRequest(prompt="a cat <lora:alpha:0.8> badhands", model="demo")
    recorded = dict(library.record(request).extras)
    data = (addon_dirs.loras / "alpha.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    lora_hash = hashlib.sha256(data[8 + length :]).hexdigest()[:12]
    ti_hash = hashlib.sha256(
        (addon_dirs.embeddings / "badhands.safetensors").read_bytes()
    ).hexdigest()[:12]
    assert recorded["Lora hashes"] == f"alpha: {lora_hash}"
    assert recorded["TI hashes"] == f"badhands: {ti_hash}"
    with pytest.raises(ValidationError, match="negative prompt"):
        library.record(request.replace(negative_prompt="<lora:alpha:1>"))


def test_the_syntax_highlighter_marks_lora_tags() -> None:
    from sdtui.prompts.syntax import highlight

    prompt = "(a cat:1.2) <lora:alpha:0.5>"
    spans = [(s.start, s.end) for s in highlight(prompt) if s.kind == "lora"]
    assert spans == [(12, len(prompt))]
