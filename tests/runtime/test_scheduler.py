"""Scheduler policy: chunked prefill under the budget, decode first, preemption, joins."""

import pytest
from factories import make_request

from trtcompile.errors import RequestError
from trtcompile.runtime.request import PLACEHOLDER, FinishReason, RequestStatus
from trtcompile.runtime.scheduler import Scheduler, SchedulerConfig


def config(**kw):
    base = dict(max_num_seqs=8, max_num_tokens=16, block_size=4, num_blocks=64,
                max_model_len=256, enable_prefix_caching=True)
    base.update(kw)
    return SchedulerConfig(**base)


def run_step(sched, token=7):
    out = sched.schedule()
    sched.check_invariants()
    sampled = {s.request_id: [token] for s in out.scheduled if s.sample}
    updated = sched.update_from_output(out, sampled)
    sched.check_invariants()
    return out, updated


def plan(out):
    return [(s.request_id, s.start_pos, len(s.token_ids), s.sample) for s in out.scheduled]


def test_chunked_prefill_under_token_budget():
    sched = Scheduler(config(max_num_tokens=16))
    sched.add_request(make_request("a", list(range(40)), max_tokens=2))
    out, _ = run_step(sched)
    assert plan(out) == [("a", 0, 16, False)]
    first = out.scheduled[0]
    assert list(first.block_ids) == [1, 2, 3, 4]
    assert out.total_num_tokens == 16
    out, _ = run_step(sched)
    assert plan(out) == [("a", 16, 16, False)]
    # each step's table is a snapshot: the next step's blocks do not show in the first's
    assert list(out.scheduled[0].block_ids) == list(range(1, 9))
    assert list(first.block_ids) == [1, 2, 3, 4]
    out, updated = run_step(sched)
    assert plan(out) == [("a", 32, 8, True)]
    assert updated[0].output_token_ids == [7]
    out, updated = run_step(sched)
    assert plan(out) == [("a", 40, 1, True)]
    assert out.scheduled[0].token_ids == [7]
    assert updated[0].status == RequestStatus.FINISHED_LENGTH
    assert not sched.has_unfinished()
    assert sched.kv.num_free_blocks == 63
    out = sched.schedule()
    assert out.finished_ids == ["a"] and out.is_empty


def test_no_chunking_when_disabled_waits_for_budget():
    sched = Scheduler(config(max_num_tokens=16, enable_chunked_prefill=False))
    sched.add_request(make_request("a", list(range(10)), max_tokens=4))
    sched.add_request(make_request("b", list(range(100, 110)), max_tokens=4))
    out, _ = run_step(sched)
    assert plan(out) == [("a", 0, 10, True)]           # b (10) does not fit the 6 left
    out, _ = run_step(sched)
    assert plan(out) == [("a", 10, 1, True), ("b", 0, 10, True)]
    with pytest.raises(RequestError, match="max_num_tokens"):
        sched.add_request(make_request("c", list(range(20)), max_tokens=1))


def test_decode_first_then_new_request_joins_mid_flight():
    sched = Scheduler(config(max_num_tokens=10))
    sched.add_request(make_request("a", list(range(6)), max_tokens=5))
    run_step(sched)
    run_step(sched)
    sched.add_request(make_request("b", list(range(100, 130)), max_tokens=3))
    out, _ = run_step(sched)
    assert plan(out) == [("a", 7, 1, True), ("b", 0, 9, False)]
    out, _ = run_step(sched)
    assert plan(out) == [("a", 8, 1, True), ("b", 9, 9, False)]


def test_max_num_seqs_caps_the_batch():
    sched = Scheduler(config(max_num_seqs=2, max_num_tokens=100))
    for i in range(3):
        sched.add_request(make_request(f"r{i}", [i] * 5, max_tokens=2))
    out, _ = run_step(sched)
    assert [s.request_id for s in out.scheduled] == ["r0", "r1"]
    out, _ = run_step(sched)                            # both finish this step
    assert [s.request_id for s in out.scheduled] == ["r0", "r1"]
    out, _ = run_step(sched)
    assert plan(out) == [("r2", 0, 5, True)]


def test_preemption_of_newest_when_pool_is_tiny():
    # 6 usable blocks of 4 tokens; two requests of 8 + 12 tokens need 5 blocks each.
    sched = Scheduler(config(num_blocks=7, max_num_tokens=64, enable_prefix_caching=False))
    sched.add_request(make_request("old", list(range(8)), max_tokens=12))
    sched.add_request(make_request("new", list(range(100, 108)), max_tokens=12))
    out, _ = run_step(sched)
    assert plan(out) == [("old", 0, 8, True), ("new", 0, 8, True)]
    preempted_at = None
    for step in range(40):
        out, _ = run_step(sched)
        if out.preempted_ids:
            preempted_at = step
            assert out.preempted_ids == ["new"]
            assert [s.request_id for s in out.scheduled] == ["old"]
            assert sched.waiting[0].request_id == "new"
            assert sched.waiting[0].status == RequestStatus.PREEMPTED
            break
    assert preempted_at is not None and sched.stats.num_preemptions == 1
    new = sched.requests["new"]
    generated = len(new.output_token_ids)
    while sched.has_unfinished():
        out, _ = run_step(sched)
        if any(s.request_id == "new" and s.start_pos == 0 for s in out.scheduled):
            # recomputes its prompt and the tokens it had generated before the preemption
            (s,) = [s for s in out.scheduled if s.request_id == "new"]
            assert s.token_ids == new.all_token_ids[:len(s.token_ids)]
            assert len(s.token_ids) >= 8 + generated - 1
    assert new.status == RequestStatus.FINISHED_LENGTH and len(new.output_token_ids) == 12
    assert sched.kv.num_free_blocks == 6


def test_preempted_request_reuses_its_cached_prefix():
    sched = Scheduler(config(num_blocks=7, max_num_tokens=64))
    sched.add_request(make_request("old", list(range(8)), max_tokens=12))
    sched.add_request(make_request("new", list(range(100, 108)), max_tokens=12))
    while sched.has_unfinished():
        run_step(sched)
    assert sched.stats.num_preemptions >= 1
    assert sched.kv.stats.hit_tokens > 0


def test_abort_frees_blocks_and_reports_finished():
    sched = Scheduler(config())
    sched.add_request(make_request("a", list(range(10))))
    sched.add_request(make_request("b", list(range(10))))
    run_step(sched)
    sched.abort_request("a")
    sched.abort_request("zzz")                          # unknown id: nothing happens
    assert sched.kv.get_block_ids(sched.requests["b"]) != []
    out, _ = run_step(sched)
    assert out.finished_ids == ["a"]
    assert [s.request_id for s in out.scheduled] == ["b"]
    sched.abort_request("b")
    assert sched.kv.num_free_blocks == 63 and not sched.has_unfinished()


def test_stop_conditions():
    sched = Scheduler(config(), eos_token_id=7)
    sched.add_request(make_request("eos", [1, 2], max_tokens=5))
    sched.add_request(make_request("ign", [1, 2], max_tokens=2, ignore_eos=True))
    sched.add_request(make_request("stop", [1, 2], max_tokens=5, stop_token_ids=(7,),
                                   ignore_eos=True))
    _, updated = run_step(sched)
    assert {r.request_id: r.status.finish_reason for r in updated} == {
        "eos": FinishReason.STOP, "ign": None, "stop": FinishReason.STOP}
    _, updated = run_step(sched)
    assert [(r.request_id, r.status.finish_reason) for r in updated] == [
        ("ign", FinishReason.LENGTH)]


@pytest.mark.parametrize("prompt_len, max_tokens, match", [
    (200, 57, "max_model_len"),          # 257 > 256
    (0, 5, "prompt_token_ids"),
])
def test_rejects_requests_that_can_never_run(prompt_len, max_tokens, match):
    sched = Scheduler(config())
    with pytest.raises(RequestError, match=match):
        sched.add_request(make_request("x", list(range(prompt_len)), max_tokens=max_tokens))
    assert not sched.has_unfinished()


def test_rejects_request_larger_than_pool():
    sched = Scheduler(config(num_blocks=5))              # 4 usable blocks = 16 tokens
    with pytest.raises(RequestError, match="KV blocks"):
        sched.add_request(make_request("x", list(range(10)), max_tokens=7))
    sched.add_request(make_request("y", list(range(10)), max_tokens=6))
    with pytest.raises(RequestError, match="already in use"):
        sched.add_request(make_request("y", [1]))


def test_expect_tokens_schedules_the_next_step_before_the_tokens_are_back():
    sched = Scheduler(config())
    sched.add_request(make_request("a", [1, 2, 3], max_tokens=2))
    sched.add_request(make_request("b", [4, 5, 6, 7], max_tokens=5))
    out1 = sched.schedule()
    expected1 = sched.expect_tokens(out1)
    assert expected1 == {"a", "b"}
    out2 = sched.schedule()
    assert plan(out2) == [("a", 3, 1, True), ("b", 4, 1, True)]
    assert [s.token_ids for s in out2.scheduled] == [[PLACEHOLDER], [PLACEHOLDER]]
    updated = sched.update_from_output(out1, {"a": [8], "b": [9]}, expected1)
    assert [r.all_token_ids for r in updated] == [[1, 2, 3, 8], [4, 5, 6, 7, 9]]
    expected2 = sched.expect_tokens(out2)
    assert expected2 == {"b"}                              # a's next token is its last
    out3 = sched.schedule()
    assert plan(out3) == [("b", 5, 1, True)]               # a is not fed again
    updated = sched.update_from_output(out2, {"a": [10], "b": [11]}, expected2)
    assert updated[0].status == RequestStatus.FINISHED_LENGTH
    assert updated[1].output_token_ids == [9, 11]
    sched.check_invariants()


def test_a_request_preempted_while_its_token_is_in_flight_gets_the_token():
    sched = Scheduler(config(num_blocks=4))                # 3 usable blocks of 4 tokens
    sched.add_request(make_request("a", [1, 2, 3, 4], max_tokens=5))
    sched.add_request(make_request("b", [5, 6, 7, 8], max_tokens=5))
    out1 = sched.schedule()
    expected = sched.expect_tokens(out1)
    out2 = sched.schedule()                                # a takes the last block; b yields
    assert plan(out2) == [("a", 4, 1, True)] and out2.preempted_ids == ["b"]
    sched.update_from_output(out1, {"a": [9], "b": [10]}, expected)
    b = sched.requests["b"]
    assert b.status == RequestStatus.PREEMPTED and b.all_token_ids == [5, 6, 7, 8, 10]
    sched.check_invariants()
