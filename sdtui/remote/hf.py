"""Hugging Face Inference Providers and Inference Endpoints, through `InferenceClient`.

The user's hub token is whatever huggingface_hub finds (HF_TOKEN, `hf auth login`);
sdtui never reads it into a setting nor writes it anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sdtui.errors import SdtuiError
from sdtui.params import GenerationRequest
from sdtui.schedulers import SCHEDULERS

if TYPE_CHECKING:
    from huggingface_hub.inference._providers import PROVIDER_OR_POLICY_T

# Settings each provider's text-to-image call is known not to take, from
# huggingface_hub's provider helpers (nscale drops the steps) and the providers'
# own parameter lists (none but diffusers behind hf-inference takes a scheduler).
NOT_USED: dict[str, tuple[str, ...]] = {
    "hf-inference": (),
    "fal-ai": ("scheduler",),
    "nscale": ("steps", "scheduler"),
    "replicate": ("scheduler",),
    "together": ("scheduler",),
    "wavespeed": ("scheduler",),
    "zai-org": ("steps", "scheduler", "seed"),
}
UNKNOWN_PROVIDER_NOT_USED = ("scheduler",)


def is_endpoint_url(model: str) -> bool:
    return model.startswith(("http://", "https://"))


def scheduler_class(name: str) -> str | None:
    """The diffusers class HF's `scheduler` parameter names; None when options are needed
    (Karras sigmas, SDE) that a class name cannot carry."""
    spec = SCHEDULERS.get(name)
    return spec.class_name if spec is not None and not spec.options else None


def not_used(provider: str, model: str, request: GenerationRequest) -> list[str]:
    """The request's settings this provider will not use, to tell the user."""
    key = "hf-inference" if is_endpoint_url(model) else provider
    unused = list(NOT_USED.get(key, UNKNOWN_PROVIDER_NOT_USED))
    if "scheduler" not in unused and scheduler_class(request.scheduler) is None:
        unused.append("scheduler")
    return unused


class HFBackend:
    """Makes the images of a request one call at a time (seeds base, base+1, ...)."""

    def __init__(self, model: str, provider: str | None = None, timeout: float = 600.0) -> None:
        from huggingface_hub import InferenceClient

        self.model = model
        self.provider = "hf-inference" if is_endpoint_url(model) else (provider or "auto")
        if is_endpoint_url(model):
            self._client = InferenceClient(base_url=model, timeout=timeout)
        else:
            # The library checks the name against the providers it knows.
            self._client = InferenceClient(
                model=model, provider=cast("PROVIDER_OR_POLICY_T", self.provider), timeout=timeout
            )

    def text_to_image(self, request: GenerationRequest, seed: int, unused: list[str]) -> Any:
        try:
            return self._client.text_to_image(
                request.prompt,
                negative_prompt=request.negative_prompt or None,
                width=request.width,
                height=request.height,
                num_inference_steps=None if "steps" in unused else request.steps,
                guidance_scale=request.cfg,
                scheduler=None if "scheduler" in unused else scheduler_class(request.scheduler),
                seed=None if "seed" in unused else seed,
            )
        except Exception as exc:  # hub HTTP errors, timeouts, an answer that is no image
            text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise SdtuiError(f"{self.provider} could not make the image: {text}") from None
