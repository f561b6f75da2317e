"""Turn a GGUF file into a Hugging Face model folder (config.json + safetensors + tokenizer), with
transformers itself (through the lab's in-kernel loader), for the ``engine = "transformers"`` catalogue entries.

Nothing is downloaded: transformers reads config, tokenizer and (de-quantised) weights from the
GGUF.  Also builds a tiny random-weight model with a real tokenizer, for fast API-shape tests.

    python -m donghaeng.services.model.hfconvert GGUF OUT_DIR [--dtype bfloat16|float32]
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

#: Files a folder needs before the transformers engine accepts it (see settings.ModelEntry).
COMPLETE_MARKER = "config.json"


def _publish(tmp: Path, out: Path) -> Path:
    """Move a finished folder into place in one step (a crash never leaves half a model), readable
    by the service's own account (safetensors writes its file 0600)."""
    tmp.chmod(0o755)
    for item in tmp.iterdir():
        item.chmod(0o644)
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def convert_gguf(gguf: Path, out: Path, *, dtype: str = "bfloat16") -> Path:
    """Write *gguf* as an HF folder at *out* (reused when it already has a config.json)."""
    if (out / COMPLETE_MARKER).is_file():
        return out
    import torch

    from donghaeng.toolkit.model_client import InKernelClient

    # The lab's in-kernel loader: transformers' GGUF reader without its hard need for accelerate.
    client = InKernelClient(gguf)
    model = client.model
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.to(getattr(torch, dtype)).save_pretrained(tmp)
    client.tokenizer.save_pretrained(tmp)
    return _publish(tmp, out)


def tiny_random(tokenizer_dir: Path, out: Path, *, seed: int = 0, chat_template: str | None = None) -> Path:
    """A 2-layer random-weight model with the architecture and tokenizer of *tokenizer_dir*
    (and *chat_template*, when given)."""
    if (out / COMPLETE_MARKER).is_file():
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(tokenizer_dir)
    for key, value in {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                       "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
                       "layer_types": ["sliding_attention", "full_attention"]}.items():
        if hasattr(config, key):
            setattr(config, key, value)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(tmp)
    return _publish(tmp, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    args = parser.parse_args(argv)
    print(convert_gguf(args.gguf, args.out, dtype=args.dtype))


if __name__ == "__main__":
    main()
