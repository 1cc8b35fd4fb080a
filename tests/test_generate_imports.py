"""`sdtui generate` imports only what the request uses: its start-up is part of every image."""

from __future__ import annotations

import subprocess
import sys

# Everything `sdtui generate` does before the model loads: the parser, the settings,
# the request, styles/wildcards/LoRA tags, the engine and gallery classes.
_BEFORE_LOAD = """
import sys
from sdtui.cli import build_parser, common, generate, prompt_options
from sdtui.engine import performance
args = build_parser().parse_args([{args}])
settings = common.settings_from_args(args)
request = generate.build_request(args, settings.model, settings)
prompt_options.prepare_job(args, request, settings)
performance.performance_from_settings(settings, args)
from sdtui.engine import Engine
from sdtui.gallery import Gallery
print(" ".join(sorted(sys.modules)))
"""

# Libraries of other features (the app, the server, remote engines, upscalers, prompt
# weighting), and torch itself, which loads with the model and not before.
NOT_BEFORE_LOAD = (
    "textual",
    "rich",
    "starlette",
    "uvicorn",
    "httpx",
    "spandrel",
    "peft",
    "compel",
    "torch",
    "diffusers",
    "transformers",
)
# sdtui's own code for other commands and other requests.
OTHER_SDTUI = (
    "sdtui.tui",
    "sdtui.server",
    "sdtui.service",
    "sdtui.remote",
    "sdtui.bench",
    "sdtui.cli.bench",
    "sdtui.cli.serve",
    "sdtui.cli.gallery",
    "sdtui.cli.upscale",
    "sdtui.cli.info",
    "sdtui.cli.app",
    "sdtui.prompts.grid",
    "sdtui.gallery.readers.a1111",  # other tools' image readers: sdtui saves its own
    "sdtui.gallery.readers.comfyui",
)


def _modules_before_load(*argv: str) -> set[str]:
    code = _BEFORE_LOAD.format(args=", ".join(repr(a) for a in argv))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def _unwanted(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if name.split(".")[0] in NOT_BEFORE_LOAD
        or any(name == other or name.startswith(other + ".") for other in OTHER_SDTUI)
    )


def test_generate_loads_no_other_features_before_the_model() -> None:
    modules = _modules_before_load("generate", "a lighthouse", "--model", "demo", "--steps", "2")
    assert "sdtui.cli.generate" in modules and "sdtui.gallery.gallery" in modules
    assert _unwanted(modules) == []


def test_a_grid_request_loads_the_grid_code() -> None:
    modules = _modules_before_load("generate", "a lighthouse", "--xy", "seed=1,2")
    assert "sdtui.prompts.grid" in modules
    assert _unwanted(modules) == ["sdtui.prompts.grid"]
