"""Model sources: short names, moved ids, folders, single files, pickles, and load failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from sdtui.engine import Engine
from sdtui.engine.loader import (
    explain_load_errors,
    family_from_state_dict_keys,
    resolve_source,
)
from sdtui.errors import (
    BadCheckpointError,
    GatedModelError,
    ModelNotFoundError,
    ModelOfflineError,
    UnsafeCheckpointError,
)
from sdtui.params import GenerationRequest

try:  # the HTTP client huggingface_hub is built on
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older huggingface_hub
    import httpx

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))


# -- resolving names -----------------------------------------------------------


def test_short_names_and_hub_ids(demo_model_dir: Path):
    demo = resolve_source("demo")
    assert demo.kind == "demo" and Path(demo.location) == demo_model_dir.resolve()
    sd15 = resolve_source("sd15")
    assert (sd15.kind, sd15.location) == ("hub", "stable-diffusion-v1-5/stable-diffusion-v1-5")
    other = resolve_source("someone/some-model")
    assert (other.kind, other.location, other.notice) == ("hub", "someone/some-model", "")


def test_moved_hub_id_loads_the_new_id_with_a_notice():
    source = resolve_source("runwayml/stable-diffusion-v1-5")
    assert source.location == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert "no longer on the hub" in source.notice
    assert source.entry is not None and source.entry.family == "sd1"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/no/such/model", "no such file or folder"),
        ("./missing.safetensors", "no such file or folder"),
        ("a b c", "not a short model name"),
    ],
)
def test_unknown_models_are_explained(text: str, words: str):
    with pytest.raises(ModelNotFoundError) as info:
        resolve_source(text)
    assert words in str(info.value)


def test_folder_without_model_index_is_refused(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        resolve_source(str(tmp_path / "empty"))


def test_family_from_checkpoint_keys():
    assert family_from_state_dict_keys(["conditioner.embedders.1.model.ln_final.weight"]) == "sdxl"
    assert family_from_state_dict_keys(["cond_stage_model.model.ln_final.weight"]) == "sd2"
    assert family_from_state_dict_keys(["cond_stage_model.transformer.text_model.x"]) == "sd1"


# -- loading -------------------------------------------------------------------


def request(model: str, seed: int = 5) -> GenerationRequest:
    return GenerationRequest(
        "a lighthouse at dusk", model=model, steps=3, width=64, height=64, seed=seed
    )


def test_local_folder_loads_and_generates(demo_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "my model"
    shutil.copytree(demo_model_dir, folder)
    engine = Engine(device="cpu")
    statuses: list[str] = []
    loaded = engine.load(str(folder), on_status=statuses.append)
    assert loaded.model_id == str(folder.resolve())
    assert (loaded.family, loaded.device, loaded.dtype) == ("sd1", "cpu", "fp32")
    assert loaded.native_size == (64, 64) and loaded.load_seconds > 0
    assert any("loading" in s for s in statuses)
    result = engine.generate(request(str(folder)))
    assert result.model_id == str(folder.resolve()) and result.load_seconds == 0.0


# Original (LDM) checkpoint layout of the demo model, written from its diffusers
# folder, so the single-file path is exercised as with a real downloaded checkpoint.
_RESNET = [
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("time_emb_proj.", "emb_layers.1."),
    ("conv_shortcut.", "skip_connection."),
]
_VAE_ATTENTION = [
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]


def _unet_prefixes(config: dict) -> list[tuple[str, str]]:
    blocks, per_block = len(config["block_out_channels"]), config["layers_per_block"]
    up_attention = ["CrossAttn" in kind for kind in config["up_block_types"]]
    pairs = [
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.1.", "middle_block.2."),
    ]
    index = 1
    for i in range(blocks):
        for j in range(per_block):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{index}.0."))
            pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{index}.1."))
            index += 1
        if i < blocks - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{index}.0.op."))
            index += 1
    index = 0
    for i in range(blocks):
        for j in range(per_block + 1):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{index}.0."))
            pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{index}.1."))
            if j == per_block and i < blocks - 1:
                slot = 2 if up_attention[i] else 1
                pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{index}.{slot}."))
            index += 1
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def _rename(rest: str, table: list[tuple[str, str]]) -> str:
    for ours, theirs in table:
        if rest.startswith(ours):
            return theirs + rest[len(ours) :]
    return rest


def _unet_to_ldm(weights: dict, config: dict) -> dict:
    out = {}
    prefixes = _unet_prefixes(config)
    for key, value in weights.items():
        prefix, ldm = next(pair for pair in prefixes if key.startswith(pair[0]))
        rest = key[len(prefix) :]
        if ".resnets." in prefix:
            rest = _rename(rest, _RESNET)
        out[f"model.diffusion_model.{ldm}{rest}"] = value
    return out


def _vae_to_ldm(weights: dict, config: dict) -> dict:
    last = len(config["block_out_channels"]) - 1
    out = {}
    for key, value in weights.items():
        parts = key.split(".")
        new = key
        if key.startswith("encoder.down_blocks."):
            inner = f"block.{parts[4]}" if parts[3] == "resnets" else "downsample"
            new = f"encoder.down.{parts[2]}.{inner}." + ".".join(parts[5:])
        elif key.startswith("decoder.up_blocks."):
            inner = f"block.{parts[4]}" if parts[3] == "resnets" else "upsample"
            new = f"decoder.up.{last - int(parts[2])}.{inner}." + ".".join(parts[5:])
        elif ".mid_block.resnets." in key:
            new = f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:])
        elif ".mid_block.attentions.0." in key:
            new = f"{parts[0]}.mid.attn_1." + _rename(".".join(parts[4:]), _VAE_ATTENTION)
            if value.ndim == 2:  # LDM stores these projections as 1x1 convolutions
                value = value[:, :, None, None]
        new = new.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        out[f"first_stage_model.{new}"] = value
    return out


def write_ldm_checkpoint(folder: Path, path: Path) -> Path:
    def config(name: str) -> dict:
        return json.loads((folder / name / "config.json").read_text())

    weights = {}
    unet = load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
    weights.update(_unet_to_ldm(unet, config("unet")))
    vae = load_file(folder / "vae" / "diffusion_pytorch_model.safetensors")
    weights.update(_vae_to_ldm(vae, config("vae")))
    text = load_file(folder / "text_encoder" / "model.safetensors")
    prefix = "cond_stage_model.transformer."
    for key, value in text.items():
        key = key if key.startswith("text_model.") else f"text_model.{key}"
        weights[prefix + key] = value
    save_file({k: v.contiguous() for k, v in weights.items()}, path)
    return path


def test_single_safetensors_file_with_local_config(demo_model_dir: Path, tmp_path: Path):
    checkpoint = write_ldm_checkpoint(demo_model_dir, tmp_path / "tiny-sd.safetensors")
    from_folder = Engine(device="cpu").generate(request(str(demo_model_dir)))
    engine = Engine(device="cpu")
    loaded = engine.load(str(checkpoint), config=str(demo_model_dir))
    assert loaded.pipeline_class == "StableDiffusionPipeline" and loaded.family == "sd1"
    # Same weights as the folder, so the same seed paints the same pixels.
    engine_request = request(str(checkpoint))
    result = engine.generate(engine_request)
    assert engine.load_count == 1
    assert np.array_equal(
        np.asarray(result.images[0].image), np.asarray(from_folder.images[0].image)
    )


def test_single_file_without_config_needs_the_hub(demo_model_dir: Path, tmp_path: Path):
    checkpoint = write_ldm_checkpoint(demo_model_dir, tmp_path / "tiny-sd.safetensors")
    with pytest.raises(ModelOfflineError) as info:
        Engine(device="cpu").load(str(checkpoint))
    assert "--model-config" in str(info.value)


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth"])
def test_pickle_checkpoints_are_refused_without_opt_in(tmp_path: Path, suffix: str):
    checkpoint = tmp_path / f"model{suffix}"
    checkpoint.write_bytes(b"not read at all")
    with pytest.raises(UnsafeCheckpointError) as info:
        Engine(device="cpu").load(str(checkpoint))
    assert info.value.exit_code == 2
    assert "--allow-pickle" in str(info.value)


def test_pickle_opt_in_loads_the_checkpoint(demo_model_dir: Path, tmp_path: Path):
    safe = write_ldm_checkpoint(demo_model_dir, tmp_path / "tiny.safetensors")
    checkpoint = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(safe)}, checkpoint)
    engine = Engine(device="cpu", allow_pickle=True)
    loaded = engine.load(str(checkpoint), config=str(demo_model_dir))
    assert loaded.family == "sd1" and loaded.model_id == str(checkpoint.resolve())
    from_folder = Engine(device="cpu").generate(request(str(demo_model_dir)))
    from_pickle = engine.generate(request(str(checkpoint)))
    assert np.array_equal(
        np.asarray(from_pickle.images[0].image), np.asarray(from_folder.images[0].image)
    )
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"garbage, not a pickle")
    with pytest.raises(BadCheckpointError):
        Engine(device="cpu", allow_pickle=True).load(str(garbage))


def test_damaged_checkpoints_are_explained(demo_model_dir: Path, tmp_path: Path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(BadCheckpointError, match="damaged"):
        Engine(device="cpu").load(str(garbage))
    truncated = tmp_path / "truncated"
    shutil.copytree(demo_model_dir, truncated)
    weights = truncated / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    engine = Engine(device="cpu")
    with pytest.raises(BadCheckpointError):
        engine.load(str(truncated))
    assert engine.pipeline is None and engine.load_count == 0


def cache_hub_snapshot(hub: Path, repo_id: str, folder: Path) -> None:
    """Lay `folder` out as the hub cache would after a download of `repo_id`."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_cached_hub_model_loads_offline(demo_model_dir: Path, tmp_path: Path):
    cache_hub_snapshot(tmp_path / "hub", "someone/tiny-sd", demo_model_dir)
    engine = Engine(device="cpu")
    loaded = engine.load("someone/tiny-sd")
    assert (loaded.model_id, loaded.family, loaded.native_size) == (
        "someone/tiny-sd",
        "sd1",
        (64, 64),
    )
    result = engine.generate(request("someone/tiny-sd"))
    assert result.load_seconds == 0.0 and engine.load_count == 1


def test_moved_id_loads_the_new_id_from_the_cache(demo_model_dir: Path, tmp_path: Path):
    new_id = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    cache_hub_snapshot(tmp_path / "hub", new_id, demo_model_dir)
    loaded = Engine(device="cpu").load("runwayml/stable-diffusion-v1-5")
    assert loaded.model_id == new_id
    assert loaded.requested == "runwayml/stable-diffusion-v1-5"
    assert "no longer on the hub" in loaded.notice


def test_uncached_hub_id_offline():
    statuses: list[str] = []
    with pytest.raises(ModelOfflineError) as info:
        Engine(device="cpu").load("runwayml/stable-diffusion-v1-5", on_status=statuses.append)
    assert "HF_HUB_OFFLINE" in str(info.value)
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in str(info.value)
    assert any("no longer on the hub" in s for s in statuses)


def _http_error(kind, status: int, message: str):
    url = "https://huggingface.co/api/models/owner/name"
    response = httpx.Response(status, request=httpx.Request("GET", url))
    return kind(message, response=response)


def test_hub_failures_are_typed_and_never_show_the_token():
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    source = resolve_source("owner/name")
    token = "hf_secretsecretsecret"
    cases = [
        (_http_error(GatedRepoError, 403, "gated"), GatedModelError),
        (_http_error(RepositoryNotFoundError, 404, "missing"), ModelNotFoundError),
        (httpx.ConnectError("no route to host"), ModelOfflineError),
    ]
    for raised, expected in cases:
        with pytest.raises(expected) as info:
            with explain_load_errors(source, token):
                try:
                    raise raised
                except Exception as exc:
                    # diffusers wraps hub errors in OSError; the cause is kept.
                    raise OSError(f"cannot fetch with token {token}") from exc
        assert token not in str(info.value)
    with pytest.raises(Exception) as info:
        with explain_load_errors(resolve_source("owner/name"), token):
            raise RuntimeError(f"odd failure, Authorization: Bearer {token}")
    assert token not in str(info.value)


def test_single_files_are_routed_by_their_keys(tmp_path: Path, monkeypatch):
    import diffusers

    calls: list[tuple[str, dict]] = []

    def recorder(name: str):
        def from_single_file(path, **kwargs):
            calls.append((name, kwargs))
            raise RuntimeError("stop after routing")

        return from_single_file

    for name in ("StableDiffusionPipeline", "StableDiffusionXLPipeline"):
        monkeypatch.setattr(getattr(diffusers, name), "from_single_file", recorder(name))
    xl = tmp_path / "xl.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(2)}, xl)
    sd2 = tmp_path / "sd2.safetensors"
    save_file({"cond_stage_model.model.ln_final.weight": torch.zeros(2)}, sd2)
    config = tmp_path / "config"
    config.mkdir()
    (config / "model_index.json").write_text("{}")
    for path in (xl, sd2):
        with pytest.raises(BadCheckpointError, match="stop after routing"):
            Engine(device="cpu").load(str(path), config=str(config))
    assert [name for name, _ in calls] == ["StableDiffusionXLPipeline", "StableDiffusionPipeline"]
    assert all(kwargs["config"] == str(config.resolve()) for _, kwargs in calls)
    assert all(kwargs["local_files_only"] is True for _, kwargs in calls)


def test_family_of_loaded_pipelines():
    from types import SimpleNamespace

    from sdtui.engine.loader import family_of_pipeline, native_size

    def pipe(cross: int, sample: int):
        config = SimpleNamespace(cross_attention_dim=cross, sample_size=sample)
        unet = SimpleNamespace(config=config)
        return SimpleNamespace(unet=unet, vae_scale_factor=8)

    class StableDiffusionXLPipeline:
        unet = None

    assert family_of_pipeline(pipe(768, 64)) == "sd1"
    assert family_of_pipeline(pipe(1024, 96)) == "sd2"
    assert family_of_pipeline(StableDiffusionXLPipeline()) == "sdxl"
    assert native_size(pipe(1024, 96)) == (768, 768)
