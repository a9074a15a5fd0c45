"""Optimization profile shapes and engine selection by architecture (pure Python)."""

import pytest

from trtcompile.backends.tensorrt.arch import check_arch_covered, engine_for_gpu, normalize_arch
from trtcompile.backends.tensorrt.profiles import EngineLimits, make_profiles, pick_profile
from trtcompile.errors import ConfigError, HardwareError

LIMITS = EngineLimits(max_num_seqs=8, max_num_tokens=256, max_model_len=100, block_size=16)
# What the parsed network reports: -1 on dynamic axes ([L=2, 2, N, b=16, Hkv=2, D=64] pool).
NETWORK = {"input_ids": (-1,), "positions": (-1,), "query_start_loc": (-1,), "seq_lens": (-1,),
           "block_tables": (-1, -1), "slot_mapping": (-1,), "kv_cache": (2, 2, -1, 16, 2, 64)}


def test_decode_then_prefill_profiles():
    decode, prefill = make_profiles(LIMITS)
    assert (decode.name, prefill.name) == ("decode", "prefill")
    shapes = decode.shapes(NETWORK)
    assert shapes["input_ids"] == ((1,), (8,), (8,))
    assert shapes["query_start_loc"] == ((2,), (9,), (9,))
    assert shapes["block_tables"] == ((1, 1), (8, 7), (8, 7))          # ceil(100 / 16) = 7
    pool_max = (2**31 - 1) // 16
    assert shapes["kv_cache"] == ((2, 2, 1, 16, 2, 64), (2, 2, 56, 16, 2, 64),
                                  (2, 2, pool_max, 16, 2, 64))
    assert prefill.shapes(NETWORK)["slot_mapping"] == ((1,), (256,), (256,))


def test_pick_profile_prefers_decode():
    profiles = make_profiles(LIMITS)
    assert pick_profile(profiles, tokens=8, seqs=8) == 0
    assert pick_profile(profiles, tokens=9, seqs=2) == 1
    assert pick_profile(profiles, tokens=257, seqs=1) is None
    assert pick_profile(profiles, tokens=4, seqs=9) is None


def test_one_profile_when_budget_is_decode_sized():
    limits = EngineLimits(max_num_seqs=8, max_num_tokens=8, max_model_len=32, block_size=16)
    assert [p.name for p in make_profiles(limits)] == ["prefill"]


def test_unknown_dynamic_axis_is_a_bug():
    with pytest.raises(ValueError, match="extra axis 0"):
        make_profiles(LIMITS)[0].shapes({"extra": (-1,)})


def test_limits_validation():
    with pytest.raises(ConfigError, match="max_num_tokens must be >= limits.max_num_seqs"):
        EngineLimits(max_num_seqs=8, max_num_tokens=4, max_model_len=32, block_size=16)
    with pytest.raises(ConfigError, match="block_size must be >= 1"):
        EngineLimits(max_num_seqs=1, max_num_tokens=4, max_model_len=32, block_size=0)


def test_arch_names():
    assert [normalize_arch(a) for a in ("sm90", "sm_90", "sm90a", "90", "SM89")] == \
        ["sm90", "sm90", "sm90", "sm90", "sm89"]
    with pytest.raises(ConfigError, match="sm<major><minor>"):
        normalize_arch("hopper")


def test_other_arch_needs_a_compatibility_level():
    check_arch_covered("sm90", "sm90", None)
    check_arch_covered("sm80", "sm90", "ampere_plus")
    with pytest.raises(HardwareError, match="cannot build an engine for sm80 on this sm90 GPU"):
        check_arch_covered("sm80", "sm90", None)
    with pytest.raises(HardwareError):
        check_arch_covered("sm80", "sm90", "same_compute_capability")
    with pytest.raises(HardwareError):
        check_arch_covered("sm75", "sm90", "ampere_plus")


def test_engine_for_gpu():
    engines = {"sm90": {"hardware_compatibility": None}, "sm80": {"hardware_compatibility": None}}
    assert engine_for_gpu(engines, "sm90") == "sm90"
    assert engine_for_gpu(engines, "sm89") is None
    assert engine_for_gpu({"sm80": {"hardware_compatibility": "ampere_plus"}}, "sm89") == "sm80"
