"""Prompt expansion: a small causal language model grows a short prompt into detailed ones.

The default model is MagicPrompt (GPT-2 trained on Stable Diffusion prompts);
any causal LM on the hub or in a local folder works (`[prompts] expander` in
the config). Sampling is seeded: the same prompt, seed and settings give the
same candidates. The call is synchronous; the TUI runs it in a worker thread.
torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.errors import (
    GatedModelError,
    ModelNotFoundError,
    ModelOfflineError,
    SdtuiError,
    ValidationError,
)
from sdtui.params import MAX_SEED

DEFAULT_EXPANDER = "Gustavosta/MagicPrompt-Stable-Diffusion"
COUNT_RANGE = (1, 16)
NEW_TOKENS_RANGE = (1, 256)


@dataclass(frozen=True)
class ExpandSettings:
    """What `[prompts]` in the config file says about expansion."""

    model: str = DEFAULT_EXPANDER
    count: int = 4
    max_new_tokens: int = 60
    temperature: float = 0.9
    top_k: int = 50
    device: str = "cpu"  # a GPT-2 is quick on a CPU and leaves the GPU to the images

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> ExpandSettings:
        """Build from the `[prompts]` table; bad values raise ValidationError."""
        values: dict[str, Any] = {}
        names = {
            "expander": "model",
            "expand_count": "count",
            "expand_max_new_tokens": "max_new_tokens",
            "expand_temperature": "temperature",
            "expand_top_k": "top_k",
            "expander_device": "device",
        }
        for key, name in names.items():
            if key in section:
                values[name] = section[key]
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValidationError("prompts expander", "must be a hub id or a folder")
        _check_int("expand count", self.count, *COUNT_RANGE)
        _check_int("expand max_new_tokens", self.max_new_tokens, *NEW_TOKENS_RANGE)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)):
            raise ValidationError("expand temperature", "must be a number above 0")
        if not 0 < self.temperature <= 5:
            raise ValidationError("expand temperature", "must be above 0 and at most 5")
        _check_int("expand top_k", self.top_k, 0, 1000)
        if not isinstance(self.device, str) or not re.fullmatch(
            r"cpu|mps|cuda(:\d+)?", self.device
        ):
            raise ValidationError(
                "expander_device", f"must be cpu, cuda, cuda:N or mps, got {self.device!r}"
            )


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationError(name, f"must be a whole number from {lo} to {hi}, got {value!r}")
    return value


@dataclass(frozen=True)
class Expansion:
    prompt: str
    seed: int
    model: str
    candidates: list[str] = field(default_factory=list)


def _looks_like_path(model: str) -> bool:
    """Hub ids are `name` or `owner/name`; anything else is a folder."""
    return (
        model.startswith(("/", ".", "~"))
        or "\\" in model
        or model.count("/") > 1
        or Path(model).expanduser().exists()
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.upper() in ("1", "ON", "YES", "TRUE")


def _explain(exc: BaseException, model: str) -> SdtuiError:
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    for cause in _causes(exc):
        if isinstance(cause, GatedRepoError):
            return GatedModelError(
                f"the expander model {model} needs an accepted licence",
                "accept it on its hub page and log in with `hf auth login`",
            )
        if isinstance(cause, (RepositoryNotFoundError, HFValidationError)):
            return ModelNotFoundError(f"no expander model {model!r} on the hub")
        if isinstance(cause, (ConnectionError, TimeoutError)) or type(cause).__name__ in (
            "ConnectError",
            "ConnectTimeout",
            "ReadTimeout",
            "NetworkError",
        ):
            return _offline(model)
    if "couldn't connect" in str(exc).lower():  # transformers' wording for no network
        return _offline(model)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelNotFoundError(f"cannot load the expander model {model}: {first}")


def _offline(model: str) -> ModelOfflineError:
    return ModelOfflineError(
        f"the expander model {model} is not downloaded and the hub cannot be reached",
        "download it once while online, or set [prompts] expander to a local folder",
    )


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed sampling without disturbing anyone else's random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


_SPACES = re.compile(r"\s+")


def clean_candidate(text: str) -> str:
    """One line of ordinary text: first line only, no control characters, tidy ends."""
    text = text.replace("\r", "\n").split("\n", 1)[0]
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    text = _SPACES.sub(" ", text.replace("\ufffd", ""))
    return text.strip(" ,;")


class PromptExpander:
    """One loaded causal LM, ready to expand prompts; load once, expand many times."""

    def __init__(self, model: str = DEFAULT_EXPANDER, device: str = "cpu") -> None:
        self.model_name = model.strip()
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                self._tokenizer, self._model = self._load()

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        name = self.model_name
        if _looks_like_path(name):
            folder = Path(name).expanduser()
            if not folder.is_dir():
                raise ModelNotFoundError(f"no expander model folder at {folder}")
            try:
                tokenizer = AutoTokenizer.from_pretrained(folder)
                model = AutoModelForCausalLM.from_pretrained(folder)
            except (OSError, ValueError) as exc:
                raise ModelNotFoundError(
                    f"{folder} is not a causal language model folder",
                    "it needs config.json, tokenizer files and weights (save_pretrained)",
                ) from exc
        else:
            try:
                tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True)
            except (OSError, ValueError) as exc:
                if _hub_offline():
                    raise _offline(name) from exc
                try:
                    tokenizer = AutoTokenizer.from_pretrained(name)
                    model = AutoModelForCausalLM.from_pretrained(name)
                except Exception as exc2:  # the hub's failures arrive wrapped in OSError
                    raise _explain(exc2, name) from exc2
        # transformers' decorated `to` reads to mypy as taking the model, not a device.
        model.to(self.device).eval()  # type: ignore[arg-type]
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer, model

    def expand(
        self,
        prompt: str,
        count: int = 4,
        seed: int | None = None,
        max_new_tokens: int = 60,
        temperature: float = 0.9,
        top_k: int = 50,
    ) -> Expansion:
        """`count` continuations of `prompt` (fewer if some come out the same)."""
        prompt = " ".join(str(prompt).split())
        if not prompt:
            raise ValidationError("prompt", "is empty; write a few words to expand")
        _check_int("count", count, *COUNT_RANGE)
        _check_int("max new tokens", max_new_tokens, *NEW_TOKENS_RANGE)
        seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
        _check_int("seed", seed, 0, MAX_SEED)
        self.load()
        import torch

        tokenizer, model = self._tokenizer, self._model
        inputs = tokenizer(prompt, return_tensors="pt").to(self.device)
        length = inputs["input_ids"].shape[1]
        window = getattr(model.config, "n_positions", None) or getattr(
            model.config, "max_position_embeddings", 1024
        )
        if length + max_new_tokens > window:
            raise ValidationError(
                "prompt",
                f"is {length} tokens; with {max_new_tokens} new tokens it passes the "
                f"expander's limit of {window}",
            )
        with self._lock, _seeded(seed), torch.no_grad():
            output = model.generate(
                **inputs,
                do_sample=True,
                temperature=float(temperature),
                top_k=int(top_k),
                max_new_tokens=max_new_tokens,
                num_return_sequences=count,
                pad_token_id=tokenizer.pad_token_id,
            )
        candidates: list[str] = []
        for sequence in output:
            tail = tokenizer.decode(sequence[length:], skip_special_tokens=True)
            text = clean_candidate(prompt + tail)
            if text and text != prompt and text not in candidates:
                candidates.append(text)
        return Expansion(prompt, seed, self.model_name, candidates)


_EXPANDERS: dict[tuple[str, str], PromptExpander] = {}
_EXPANDERS_LOCK = threading.Lock()


def get_expander(model: str = DEFAULT_EXPANDER, device: str = "cpu") -> PromptExpander:
    """A shared expander per model, so the TUI loads it once."""
    with _EXPANDERS_LOCK:
        key = (model.strip(), device)
        if key not in _EXPANDERS:
            _EXPANDERS.clear()  # keep one model in memory at a time
            _EXPANDERS[key] = PromptExpander(model, device)
        return _EXPANDERS[key]


def expand_prompt(
    prompt: str,
    settings: ExpandSettings | None = None,
    seed: int | None = None,
    **overrides: Any,
) -> Expansion:
    """Expand with the configured model and settings; `overrides` replace settings fields."""
    settings = settings or ExpandSettings()
    if overrides:
        import dataclasses

        settings = dataclasses.replace(
            settings, **{k: v for k, v in overrides.items() if v is not None}
        )
    settings.check()
    expander = get_expander(settings.model, settings.device)
    return expander.expand(
        prompt,
        count=settings.count,
        seed=seed,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k,
    )
