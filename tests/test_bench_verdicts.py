"""The benchmark tables' verdicts: a ratio just above its target reads as missed, and a run on
another card than the targets' says so."""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOGS = REPO / "docs/session15_gpu_logs"     # this session's H200 rows
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_kernels import (DECODE_TARGETS, print_table, print_verdicts, target_card_note,  # noqa: E402
                           tuning_env, verdict)
from bench_quant import gemv_target_lines  # noqa: E402
from bench_w1 import w1_target_lines  # noqa: E402
from bench_w8a8 import fp8_target_lines  # noqa: E402


def test_ratio_targets_are_upper_bounds_compared_unrounded():
    assert verdict(dict(ratio=1.0541, target=1.05)) == "missed"   # printed 1.05 before
    assert verdict(dict(ratio=1.05, target=1.05)) == "met"
    assert verdict(dict(ratio=0.955, target=1.2)) == "met"


def test_share_of_copy_targets_are_lower_bounds():
    assert verdict(dict(pct_copy=97.9, target_pct=80)) == "met"
    assert verdict(dict(pct_copy=79.9, target_pct=80)) == "missed"
    assert verdict(dict(ours_us=65.5, GBps=4096.5)) == ""


def test_runs_on_another_card_carry_a_note():
    assert target_card_note("NVIDIA H100 80GB HBM3") == ""
    note = target_card_note("NVIDIA H200")
    assert "NVIDIA H200" in note and "H100 80GB HBM3" in note


def test_kernel_table_prints_each_row_with_its_verdict(capsys):
    rows = json.loads((LOGS / "01_bench_kernels.json").read_text())["rows"]
    rows.append(dict(bench="decode_step", error="RuntimeError('boom')"))
    print_table(rows, "NVIDIA H200")
    out = capsys.readouterr().out.splitlines()
    decode = next(line for line in out if line.startswith("decode B=64 ctx=2048"))
    assert " 1.054   1.05  missed  ref=SDPA" in decode
    assert any(line.startswith("rmsnorm+residual") and "    met  " in line for line in out)
    assert set(DECODE_TARGETS) == {(64, 2048), (256, 1024), (1, 4096)}   # not W1's ctx 512
    assert "decode_step" in out[-2] and "ERROR" in out[-2]
    assert out[-1].startswith("note: the targets were set on an NVIDIA H100 80GB HBM3")


def test_gemv_targets_take_the_lowest_ratio_over_1_to_16_tokens():
    def row(variant, m, speedup, shape="up/gate 4096->14336"):
        return dict(shape=shape, m=m, variant=variant, speedup=speedup)
    rows = [row("int8", 1, 1.71), row("int8", 16, 1.50), row("int8", 32, 0.9),
            row("int4 g128", 1, 3.1), row("int4 g128", 8, 3.05), row("int4 g128", 24, 1.2),
            row("int4 g128", 1, 1.0, shape="down 14336->4096")]
    int8, int4 = gemv_target_lines(rows)
    assert int8.endswith("lowest 1.50x (M = 16): missed")
    assert int4.endswith("lowest 3.05x (M = 8): met")      # M = 24 and other shapes not judged
    assert gemv_target_lines([row("int8", 24, 2.0)]) == []


def test_fp8_gemm_target_judges_both_accumulations_at_1024_rows_and_more():
    rows = [dict(shape="qkv", M=128, bf16=10.0, fp8_gemm=10.0, fp8_gemm_fast_accum=10.0),
            dict(shape="qkv", M=1024, bf16=68.3, fp8_gemm=41.4, fp8_gemm_fast_accum=41.3),
            dict(shape="gate_up", M=1024, bf16=311.0, fp8_gemm=209.1, fp8_gemm_fast_accum=182.8)]
    fast, plain = fp8_target_lines(rows)
    assert "fast accumulation (default): lowest 1.65x (qkv, M = 1024): met" in fast
    assert plain.endswith("lowest 1.49x (gate_up, M = 1024): missed")


def test_w1_targets_follow_shape_and_quantization_mode():
    small = w1_target_lines("llama-3.2-1b", [], 47_691.0, 2.17)
    assert small == ["target W1 llama-3.2-1b >= 30,000 output tok/s: 47,691: met",
                     "target start-up to the first token <= 10 s: 2.2 s: met"]
    fp8 = w1_target_lines("llama-3.1-8b", ["kv_cache.dtype=fp8", "quantization.mode=fp8"],
                          14_082.0, 6.3)
    assert fp8 == ["target W1 llama-3.1-8b fp8 >= 24,000 output tok/s: 14,082: missed"]
    assert w1_target_lines("llama-3.1-8b", [], 9_828.0, 7.6) == []       # bf16 8B: no target
    assert w1_target_lines("llama-3.2-1b", ["quantization.mode=int8_weight_only"], 36_354.0,
                           1.25) == ["target start-up to the first token <= 10 s: 1.2 s: met"]


def test_tuning_overrides_hold_for_their_block_only():
    key = "TRTC_BENCH_TEST_OVERRIDE"
    os.environ.pop(key, None)
    try:
        with tuning_env({key: "1"}):
            assert os.environ[key] == "1"
            raise RuntimeError("a failed timing")
    except RuntimeError:
        pass
    assert key not in os.environ
    with tuning_env({}):           # the default kernel: nothing set
        assert key not in os.environ


def test_copy_micro_benchmark_refuses_bad_options_without_a_gpu():
    """kv_stride_micro.py checks its options before it imports cupy: a wrong one exits 2 with
    the valid choices, on any machine."""
    import subprocess

    script = REPO / "benchmarks/kv_stride_micro.py"
    cases = {"--hints=none,bogus": "choose from none, 128B, 256B, evict_first",
             "--pools=fp16": "choose from fp8, bf16",
             "--stages=4": "3 or 6",
             "--heads-per-cta=3": "dividing --kv-heads 8"}
    for arg, message in cases.items():
        r = subprocess.run([sys.executable, str(script), arg], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2 and message in r.stderr, (arg, r.returncode, r.stderr)


def test_verdict_lines_carry_the_card_note_only_when_there_are_some(capsys):
    print_verdicts(["target x >= 2x: lowest 1.50x: missed"], "NVIDIA H200")
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("missed") and out[1].startswith("note: the targets were set")
    print_verdicts([], "NVIDIA H200")
    print_verdicts(["target x >= 2x: lowest 2.10x: met"], "NVIDIA H100 80GB HBM3")
    assert capsys.readouterr().out.splitlines() == ["target x >= 2x: lowest 2.10x: met"]
