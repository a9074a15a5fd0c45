"""QuantMode (user-facing) -> QuantFlag (what it switches on): one table, plus the checks
that follow from the flags (hardware, which passes, whether calibration is needed)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trtcompile.config import QuantMode
from trtcompile.errors import HardwareError


class QuantFlag(enum.Flag):
    NONE = 0
    WEIGHT_INT8 = enum.auto()      # int8 weights, per output channel scales
    WEIGHT_INT4 = enum.auto()      # int4 weights, packed two per byte
    WEIGHT_FP8 = enum.auto()       # float8 E4M3 weights, per output channel scales
    GROUPWISE = enum.auto()        # weight scales per group of `group_size` input channels
    ACT_INT8 = enum.auto()         # GEMM inputs quantized to int8 (W8A8)
    ACT_FP8 = enum.auto()          # GEMM inputs quantized to float8 E4M3 (W8A8)
    SMOOTHQUANT = enum.auto()      # per-channel smoothing folded into the producers


MODE_FLAGS: dict[QuantMode, QuantFlag] = {
    QuantMode.NONE: QuantFlag.NONE,
    QuantMode.INT8_WEIGHT_ONLY: QuantFlag.WEIGHT_INT8,
    QuantMode.INT4_WEIGHT_ONLY: QuantFlag.WEIGHT_INT4 | QuantFlag.GROUPWISE,
    QuantMode.FP8: QuantFlag.WEIGHT_FP8 | QuantFlag.ACT_FP8,
    QuantMode.INT8_SQ: QuantFlag.WEIGHT_INT8 | QuantFlag.ACT_INT8 | QuantFlag.SMOOTHQUANT,
}

ACTIVATION = QuantFlag.ACT_INT8 | QuantFlag.ACT_FP8
FP8 = QuantFlag.WEIGHT_FP8 | QuantFlag.ACT_FP8
MIN_FP8_CAPABILITY = (8, 9)

# Quant passes run between these two passes of the default pipeline.
INSERT_BEFORE = "cast_to_dtype"


def flags_of(mode: QuantMode) -> QuantFlag:
    return MODE_FLAGS[QuantMode(mode)]


@dataclass(frozen=True)
class QuantPlan:
    """What the quant passes read from PassContext.quant."""
    mode: QuantMode
    flags: QuantFlag
    group_size: int = 128
    activation: str = "dynamic"             # dynamic (per token) | static (calibrated per tensor)
    smoothquant_alpha: float = 0.5
    act_absmax: dict | None = None          # GEMM weight name -> float32 [K] input absmax

    @property
    def needs_calibration(self) -> bool:
        return bool(self.flags & QuantFlag.SMOOTHQUANT) or \
            bool(self.flags & ACTIVATION and self.activation == "static")


def quant_passes(flags: QuantFlag) -> tuple[str, ...]:
    """The passes a flag set asks for, in order."""
    if flags & ACTIVATION:
        return ("quantize_gemms",)         # smoothing (SMOOTHQUANT) happens inside it
    if flags & (QuantFlag.WEIGHT_INT8 | QuantFlag.WEIGHT_INT4):
        return ("quantize_weights",)
    return ()


KV_CACHE_PASS = "quantize_kv_cache"


def pipeline_for(passes: tuple[str, ...], flags: QuantFlag,
                 kv_quantized: bool = False) -> tuple[str, ...]:
    """`passes` with the quant passes (then the KV cache pass) inserted before cast_to_dtype
    (or appended)."""
    extra = quant_passes(flags) + ((KV_CACHE_PASS,) if kv_quantized else ())
    if not extra:
        return tuple(passes)
    at = passes.index(INSERT_BEFORE) if INSERT_BEFORE in passes else len(passes)
    return tuple(passes[:at]) + extra + tuple(passes[at:])


def arch_capability(arch: str) -> tuple[int, int]:
    """'sm89' -> (8, 9); 'sm90a' -> (9, 0); 'sm100' -> (10, 0)."""
    digits = arch[2:].rstrip("a")
    return int(digits[:-1]), int(digits[-1])


def check_hardware(mode: QuantMode, capability: tuple[int, int], gpu_name: str) -> None:
    """Raise HardwareError when a GPU of `capability` cannot run `mode`."""
    if flags_of(mode) & FP8 and tuple(capability) < MIN_FP8_CAPABILITY:
        major, minor = capability
        raise HardwareError(
            f"quantization.mode '{mode}' needs FP8 tensor cores (sm_89 or newer: Ada, Hopper, "
            f"Blackwell); {gpu_name} is sm_{major}{minor}. Choose int8_sq or int8_weight_only, "
            "or drop this GPU from build.gpu_archs")


def check_archs(mode: QuantMode, gpu_archs) -> None:
    """check_hardware for every architecture a TensorRT build targets."""
    for arch in gpu_archs:
        check_hardware(mode, arch_capability(arch), f"build.gpu_archs entry '{arch}'")
