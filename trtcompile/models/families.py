"""Supported model families and a tiny random-weight config for each."""

from __future__ import annotations

# model_type -> (transformers config class name, tiny config kwargs)
_TINY_COMMON = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                    tie_word_embeddings=False)

FAMILIES: dict[str, tuple[str, dict]] = {
    "llama": ("LlamaConfig", dict(_TINY_COMMON, rope_theta=10000.0, tie_word_embeddings=True)),
    "qwen2": ("Qwen2Config", dict(_TINY_COMMON, rope_theta=1000000.0)),
    "qwen3": ("Qwen3Config", dict(_TINY_COMMON, head_dim=16, rope_theta=1000000.0)),
    "mistral": ("MistralConfig", dict(_TINY_COMMON, sliding_window=16, rope_theta=10000.0)),
    "gpt2": ("GPT2Config", dict(vocab_size=512, n_embd=64, n_layer=2, n_head=4, n_positions=1024,
                                n_inner=128, bos_token_id=1, eos_token_id=1)),
}

SUPPORTED = tuple(FAMILIES)

# Examples of checkpoints each family covers (shown in errors and docs).
EXAMPLES = {"llama": "Llama 2/3, SmolLM2, TinyLlama", "qwen2": "Qwen2, Qwen2.5", "qwen3": "Qwen3",
            "mistral": "Mistral (sliding window)", "gpt2": "GPT-2"}


def tiny_config(family: str):
    import transformers

    cls_name, kwargs = FAMILIES[family]
    return getattr(transformers, cls_name)(**kwargs)
