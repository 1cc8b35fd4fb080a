"""Timings of prompt craft on this machine, with real-size architectures and random weights.

- Prompt encoding with a CLIP ViT-L/14 text encoder (SD 1.5's): prompt and empty
  negative as diffusers encodes a plain prompt vs `encode_prompt_kwargs` for a weighted
  prompt and for a 150-token prompt (chunked).
- Expansion with a GPT-2 small (MagicPrompt's architecture): 4 candidates of
  60 new tokens.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prompt_craft.py [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def clip_pipe(folder: Path):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from sdtui.engine.demo import write_tokenizer_files

    write_tokenizer_files(folder)
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    )
    torch.manual_seed(0)
    encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            max_position_embeddings=77,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
    ).eval()

    class Pipe:
        pass

    pipe = Pipe()
    pipe.tokenizer, pipe.text_encoder = tokenizer, encoder

    def plain(prompt: str):
        # What diffusers does with guidance: the prompt and the (empty) negative prompt.
        ids = tokenizer(
            [prompt, ""],
            padding="max_length",
            max_length=77,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        with torch.no_grad():
            return encoder(ids)[0]

    return pipe, plain


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from sdtui.prompts.weighting import encode_prompt_kwargs, token_count

    results: dict[str, float | int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pipe, plain = clip_pipe(Path(tmp) / "clip")
        short = "a cat on a mat"  # the demo vocabulary is byte-level: ~1 token per letter
        weighted = "a (cat:1.3) on a [mat]"
        long = "a cat on a mat, " * 10
        results["long_prompt_tokens"] = token_count(pipe, long)[0]
        results["plain_encode_s"] = median_seconds(lambda: plain(short), args.repeats)
        assert encode_prompt_kwargs(pipe, short, "") is None
        results["plain_path_check_s"] = median_seconds(
            lambda: encode_prompt_kwargs(pipe, short, ""), args.repeats
        )
        results["weighted_encode_s"] = median_seconds(
            lambda: encode_prompt_kwargs(pipe, weighted, ""), args.repeats
        )
        out = encode_prompt_kwargs(pipe, long, "")
        results["long_embeds_tokens"] = int(out["prompt_embeds"].shape[1])
        results["long_encode_s"] = median_seconds(
            lambda: encode_prompt_kwargs(pipe, long, ""), args.repeats
        )

        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from test_expand import build_tiny_gpt2
        from transformers import GPT2Config, GPT2LMHeadModel

        from sdtui.prompts.expand import PromptExpander

        folder = build_tiny_gpt2(Path(tmp) / "gpt2")
        torch.manual_seed(0)
        config = GPT2LMHeadModel.config_class.from_pretrained(folder)
        small = GPT2Config(
            vocab_size=50257,  # the real vocabulary size, so the output layer costs what it does
            n_positions=1024,
            n_embd=768,
            n_layer=12,
            n_head=12,
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
        )
        GPT2LMHeadModel(small).save_pretrained(folder)
        expander = PromptExpander(str(folder))
        start = time.perf_counter()
        expander.load()
        results["gpt2_small_load_s"] = time.perf_counter() - start
        results["gpt2_small_expand_4x60_s"] = median_seconds(
            lambda: expander.expand("a cat", count=4, seed=1, max_new_tokens=60),
            max(1, args.repeats // 2),
        )
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:28} {value:.4f}" if isinstance(value, float) else f"{key:28} {value}")


if __name__ == "__main__":
    main()
