"""Human-readable rendering of an artifact's manifest."""

from __future__ import annotations

from trtcompile.artifact import MODEL_ONNX, Artifact


def _files(files: dict) -> list[str]:
    """name (size) of each file but the tokenizer's; the weight files as one entry."""
    data = [k for k in files if k.startswith(MODEL_ONNX + ".data")]
    out = [f"{k} ({v['bytes'] / 2**20:.1f} MiB)" for k, v in files.items()
           if not k.startswith("tokenizer/") and (k not in data or len(data) == 1)]
    if len(data) > 1:
        size = sum(files[k]["bytes"] for k in data) / 2**20
        out.append(f"{MODEL_ONNX}.data, .data.1 .. .data.{len(data) - 1} ({size:.1f} MiB in {len(data)} files)")
    return out


def render(art: Artifact) -> str:
    m = art.manifest
    model = m["model"]
    lines = [
        f"artifact     {art.path}",
        f"schema       v{m['schema_version']}, backend {m['backend']}, "
        f"engines: {', '.join(m.get('engines') or {}) or 'none (torch executes model.onnx)'}",
        f"model        {model['source']} [{model['family']}], dtype {model['dtype']}, "
        f"{model['num_layers']} layers, heads {model['num_heads']}/{model['num_kv_heads']} x "
        f"{model['head_dim']}, hidden {model['hidden_size']}, vocab {model['vocab_size']}",
        f"kv cache     block {m['kv_cache']['block_size']} tokens, {m['kv_cache']['dtype']}",
        f"limits       " + ", ".join(f"{k} {v}" for k, v in m["build_config"]["limits"].items()),
        "inputs       " + "; ".join(f"{i['name']} {i['dtype']}{i['shape']}" for i in m["io"]["inputs"]),
        "outputs      " + "; ".join(f"{o['name']} {o['dtype']}{o['shape']}" for o in m["io"]["outputs"]),
        "passes",
        *[f"  {p}" for p in m["passes"]],
        "ops (final)  " + ", ".join(f"{k} {v}" for k, v in
                                    sorted(m["op_histogram"]["final"].items(), key=lambda kv: -kv[1])),
        f"ops          {sum(m['op_histogram']['exported'].values())} exported -> "
        f"{sum(m['op_histogram']['final'].values())} final",
        "files        " + ", ".join(_files(m["files"])),
        "tools        " + ", ".join(f"{k} {v}" for k, v in m["tool_versions"].items()),
    ]
    return "\n".join(lines)
