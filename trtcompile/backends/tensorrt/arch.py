"""GPU architecture names (sm90) and which engine may serve which GPU."""

from __future__ import annotations

import re

from trtcompile.errors import ConfigError, HardwareError


def normalize_arch(name: str) -> str:
    """'sm90', 'sm_90', 'sm90a', '90' -> 'sm90'."""
    m = re.fullmatch(r"(?:sm_?)?(\d{2,3})a?", str(name).strip().lower())
    if not m:
        raise ConfigError(f"GPU architecture '{name}' is not valid; write it as sm<major><minor>, "
                          "e.g. sm80, sm89, sm90")
    return f"sm{m.group(1)}"


def arch_major(arch: str) -> int:
    return int(normalize_arch(arch)[2:]) // 10


def current_arch() -> str:
    import torch

    if not torch.cuda.is_available():
        raise HardwareError("no CUDA GPU is visible; TensorRT engines are built and run on one")
    major, minor = torch.cuda.get_device_capability()
    return f"sm{major}{minor}"


def check_arch_covered(target: str, here: str, hardware_compatibility: str | None) -> None:
    """An engine is built on `here`; refuse `target` unless the compatibility level covers it."""
    if target == here:
        return
    if hardware_compatibility == "ampere_plus" and arch_major(target) >= 8 and arch_major(here) >= 8:
        return
    raise HardwareError(f"cannot build an engine for {target} on this {here} GPU: TensorRT builds "
                        f"for the GPU it runs on. Build on a {target} machine, or use "
                        "hardware_compatibility 'ampere_plus' (sm80 and newer, some speed lost)")


def engine_for_gpu(engines: dict, here: str) -> str | None:
    """The manifest key of the engine to run on `here`: an exact match, else an Ampere+ one."""
    if here in engines:
        return here
    if arch_major(here) >= 8:
        return next((a for a, e in engines.items()
                     if e.get("hardware_compatibility") == "ampere_plus"), None)
    return None
