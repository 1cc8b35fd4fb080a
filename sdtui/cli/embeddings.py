"""`sdtui embeddings`: the textual-inversion files in the embeddings folder."""

from __future__ import annotations

import argparse

from sdtui.cli.loras import add_listing_arguments, list_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_listing_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return list_files(args, "embedding")
