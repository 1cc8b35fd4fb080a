"""The Protocols front ends annotate with: cheap to import, and met by the real classes."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from sdtui.engine.engine import Engine
from sdtui.engine.protocols import EngineLike
from sdtui.gallery.gallery import Gallery
from sdtui.gallery.store import GalleryStore

HEAVY = ("torch", "diffusers", "transformers", "numpy", "PIL", "textual")


def test_protocol_modules_import_nothing_heavy() -> None:
    # A front end imports these at start-up to annotate with: they must cost nothing.
    code = (
        "import sys, sdtui.engine.protocols, sdtui.gallery.store\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def _members(protocol: type) -> dict[str, object]:
    """What the Protocol asks for: its methods and properties, and its annotated attributes."""
    found: dict[str, object] = {
        name: value
        for name, value in vars(protocol).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }
    for name in vars(protocol).get("__annotations__", {}):
        found.setdefault(name, None)
    return found


@pytest.mark.parametrize(
    ("protocol", "cls"), [(EngineLike, Engine), (GalleryStore, Gallery)], ids=["engine", "gallery"]
)
def test_real_classes_offer_what_the_protocols_name(protocol: type, cls: type) -> None:
    members = _members(protocol)
    assert members  # the Protocol is not empty
    for name, wanted in members.items():
        if wanted is None:  # a plain attribute: set in __init__, so check the signature's class
            continue
        have = getattr(cls, name, None)
        assert have is not None, f"{cls.__name__} has no {name}"
        if isinstance(wanted, property):
            assert isinstance(have, property), f"{cls.__name__}.{name} is not a property"
            continue
        # Same parameter names, in the same order, with the same defaults.
        want_params = list(inspect.signature(wanted).parameters.values())
        have_params = list(inspect.signature(have).parameters.values())
        assert [(p.name, p.default) for p in want_params] == [
            (p.name, p.default) for p in have_params
        ], f"{cls.__name__}.{name} differs from {protocol.__name__}.{name}"


def test_plain_attributes_are_set_by_the_real_classes(tmp_path) -> None:
    gallery = Gallery(tmp_path / "gallery")
    try:
        assert gallery.root == tmp_path / "gallery"
    finally:
        gallery.close()
    engine = Engine(device="cpu")
    assert (engine.device, engine.dtype) == ("cpu", "fp32")
