"""Random allocate/append/fork/free/preempt sequences keep the KV cache invariants, keep
every request's K/V readable through its block table, and leak nothing."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trtcompile.runtime.kv_cache_manager import KVCacheManager
from trtcompile.runtime.request import Request
from trtcompile.runtime.sampling_params import SamplingParams

BLOCK_SIZE = 4
NUM_BLOCKS = 12


class KVCacheMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.kv = KVCacheManager(BLOCK_SIZE, NUM_BLOCKS, enable_prefix_caching=True)
        self.live: list[Request] = []          # requests holding blocks or waiting to
        self.slots: dict[int, int] = {}        # fake K/V: slot -> token id written there
        self.next_id = 0

    def _new_id(self) -> str:
        self.next_id += 1
        return f"r{self.next_id}"

    def _run(self, req: Request, num_new: int, hits=None, num_hit: int = 0) -> bool:
        """allocate_slots + the step: do pending copies, write K/V, publish full blocks."""
        if self.kv.allocate_slots(req, num_new, hits, num_hit) is None:
            return False
        for src, dst in self.kv.take_pending_copies():
            for off in range(BLOCK_SIZE):
                if src * BLOCK_SIZE + off in self.slots:
                    self.slots[dst * BLOCK_SIZE + off] = self.slots[src * BLOCK_SIZE + off]
        table = self.kv.get_block_ids(req)
        start = req.num_computed_tokens + num_hit
        for p in range(start, start + num_new):
            self.slots[table[p // BLOCK_SIZE] * BLOCK_SIZE + p % BLOCK_SIZE] = req.all_token_ids[p]
        req.num_computed_tokens = start + num_new
        self.kv.cache_blocks(req, req.num_computed_tokens)
        return True

    @rule(prompt=st.lists(st.integers(0, 2), min_size=1, max_size=20))
    def add(self, prompt):
        # A tiny vocabulary makes identical blocks, so prefix hits are common.
        self.live.append(Request(self._new_id(), prompt, SamplingParams()))

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def prefill(self, data):
        req = data.draw(st.sampled_from(self.live))
        remaining = req.num_tokens - req.num_computed_tokens
        if remaining == 0:
            return
        chunk = data.draw(st.integers(1, remaining))
        if req.num_computed_tokens == 0 and not self.kv.get_block_ids(req):
            hits, num_hit = self.kv.get_computed_blocks(req)
            chunk = min(chunk, req.num_tokens - num_hit)
            self._run(req, chunk, hits, num_hit)
        else:
            self._run(req, chunk)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), token=st.integers(0, 2))
    def decode(self, data, token):
        req = data.draw(st.sampled_from(self.live))
        if req.num_computed_tokens != req.num_tokens or req.num_tokens >= 40:
            return
        req.append_output(token)
        if not self._run(req, 1):
            req.output_token_ids.pop()
            req.all_token_ids.pop()

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def fork(self, data):
        parent = data.draw(st.sampled_from(self.live))
        if not self.kv.get_block_ids(parent) or parent.num_computed_tokens != parent.num_tokens:
            return
        child = Request(self._new_id(), parent.prompt_token_ids, parent.params,
                        output_token_ids=list(parent.output_token_ids),
                        num_computed_tokens=parent.num_computed_tokens)
        self.kv.fork(parent, child)
        self.live.append(child)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        req = data.draw(st.sampled_from(self.live))
        self.kv.free(req)
        self.live.remove(req)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def preempt(self, data):
        req = data.draw(st.sampled_from(self.live))
        self.kv.free(req)
        req.num_computed_tokens = 0        # recomputes prompt + output later

    @invariant()
    def invariants_hold(self):
        self.kv.check_invariants()
        for req in self.live:
            table = self.kv.get_block_ids(req)
            assert len(table) == -(-req.num_computed_tokens // BLOCK_SIZE)
            for p in range(req.num_computed_tokens):
                slot = table[p // BLOCK_SIZE] * BLOCK_SIZE + p % BLOCK_SIZE
                assert self.slots.get(slot) == req.all_token_ids[p], \
                    f"{req.request_id} position {p} reads the wrong K/V"

    def teardown(self):
        for req in self.live:
            self.kv.free(req)
        self.kv.check_invariants()
        assert self.kv.num_free_blocks == NUM_BLOCKS - 1


KVCacheMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                            deadline=None)
TestKVCacheMachine = KVCacheMachine.TestCase
