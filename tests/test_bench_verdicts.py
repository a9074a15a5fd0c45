"""The benchmark tables' verdicts: a ratio just above its target reads as missed, and a run on
another card than the targets' says so."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_kernels import target_card_note, verdict  # noqa: E402


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
