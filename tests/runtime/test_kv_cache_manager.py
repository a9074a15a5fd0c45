"""Exact block ids for allocation, prefix hits, LRU eviction and fork/copy-on-write."""

from factories import compute, make_request

from trtcompile.runtime.kv_cache_manager import KVCacheManager


def test_allocate_fresh_blocks_in_order():
    kv = KVCacheManager(block_size=4, num_blocks=8)
    req = make_request("a", list(range(10)))
    assert kv.get_computed_blocks(req) == ([], 0)
    assert compute(kv, req, 10) == [1, 2, 3]            # block 0 is the reserved null block
    assert kv.num_free_blocks == 4
    assert kv.usage == 3 / 7
    req.append_output(99)
    assert compute(kv, req, 1) == []                    # token 11 fits in block 3
    req.append_output(98)
    assert compute(kv, req, 1) == []                    # token 12 fills block 3
    req.append_output(97)
    assert compute(kv, req, 1) == [4]
    assert kv.get_block_ids(req) == [1, 2, 3, 4]
    kv.check_invariants()
    kv.free(req)
    assert kv.num_free_blocks == 7
    kv.check_invariants()


def test_allocate_returns_none_and_changes_nothing_when_pool_is_short():
    kv = KVCacheManager(block_size=4, num_blocks=4)     # 3 usable
    a = make_request("a", list(range(8)))
    b = make_request("b", list(range(100, 108)))
    assert compute(kv, a, 8) == [1, 2]
    assert kv.allocate_slots(b, 8) is None
    assert kv.get_block_ids(b) == [] and kv.num_free_blocks == 1
    kv.check_invariants()


def test_shared_200_token_prefix_allocates_only_unshared_blocks():
    kv = KVCacheManager(block_size=16, num_blocks=32)
    prefix = list(range(1000, 1200))                     # 200 tokens = 12 full blocks + 8
    a = make_request("a", prefix + list(range(10)))      # 210 tokens -> 14 blocks
    assert compute(kv, a, 210) == list(range(1, 15))
    assert kv.num_free_blocks == 31 - 14

    b = make_request("b", prefix + list(range(500, 520)))  # 220 tokens -> 14 blocks
    hits, num_hit = kv.get_computed_blocks(b)
    assert hits == list(range(1, 13)) and num_hit == 192  # block 13 diverges at token 200
    assert compute(kv, b, 220 - 192, hits, num_hit) == [15, 16]
    assert kv.get_block_ids(b) == list(range(1, 13)) + [15, 16]
    assert kv.num_free_blocks == 31 - 16
    assert [kv.pool.ref_cnt[i] for i in (1, 12, 13, 14, 15, 16)] == [2, 2, 1, 1, 1, 1]
    assert (kv.stats.queried_tokens, kv.stats.hit_tokens) == (210 + 220, 192)
    kv.check_invariants()
    kv.free(a)
    kv.free(b)
    assert kv.num_free_blocks == 31
    kv.check_invariants()


def test_full_prompt_hit_still_computes_last_token():
    kv = KVCacheManager(block_size=4, num_blocks=8)
    a = make_request("a", list(range(8)))
    compute(kv, a, 8)
    kv.free(a)
    b = make_request("b", list(range(8)))
    hits, num_hit = kv.get_computed_blocks(b)
    assert (hits, num_hit) == ([1], 4)                   # block 2 would leave nothing to run
    assert compute(kv, b, 4, hits, num_hit) == [3]       # free queue front is 3 (a freed 2, 1)
    kv.check_invariants()


def test_free_order_and_lru_eviction():
    kv = KVCacheManager(block_size=4, num_blocks=11)    # 10 usable
    a = make_request("a", list(range(12)))
    compute(kv, a, 12)                                   # [1, 2, 3], all full and cached
    kv.free(a)
    assert kv.pool.free_order() == [4, 5, 6, 7, 8, 9, 10, 3, 2, 1]   # tail evicted first
    b = make_request("b", list(range(100, 128)))         # 7 blocks
    assert compute(kv, b, 28) == [4, 5, 6, 7, 8, 9, 10]
    c = make_request("c", list(range(200, 204)))
    assert compute(kv, c, 4) == [3]                      # evicts a's last block
    assert kv.pool.num_evictions == 1
    again = make_request("a2", list(range(12)) + [7])
    hits, num_hit = kv.get_computed_blocks(again)
    assert (hits, num_hit) == ([1, 2], 8)                # blocks 1, 2 still cached
    assert compute(kv, again, 5, hits, num_hit) is None  # needs 2 blocks, 0 free
    assert kv.pool.ref_cnt[1] == 0                       # refused: nothing touched
    kv.free(c)
    kv.check_invariants()
    assert compute(kv, again, 5, hits, num_hit) is None  # 1 free block (3), needs 2
    kv.free(b)
    # free queue was [2, 1, 3(c), 10, 9, ..., 4(b, tail first)]; hits revive 2 and 1
    assert compute(kv, again, 5, hits, num_hit) == [3, 10]
    assert kv.get_block_ids(again) == [1, 2, 3, 10]
    assert kv.pool.num_evictions == 3                    # + cached blocks 3 (c) and 10 (b)
    kv.check_invariants()


def test_fork_shares_until_divergence_and_copies_partial_block_on_write():
    kv = KVCacheManager(block_size=4, num_blocks=10)
    parent = make_request("p", list(range(6)))           # blocks [1, 2], block 2 partial
    compute(kv, parent, 6)
    child = make_request("p#1", list(range(6)))
    child.num_computed_tokens = parent.num_computed_tokens
    kv.fork(parent, child)
    assert kv.get_block_ids(child) == [1, 2]
    assert kv.pool.ref_cnt[1:3] == [2, 2]
    kv.check_invariants()

    parent.append_output(50)
    child.append_output(60)
    assert compute(kv, parent, 1) == []                  # copy-on-write, not a new tail block
    assert kv.take_pending_copies() == [(2, 3)]
    assert kv.get_block_ids(parent) == [1, 3]
    assert kv.pool.ref_cnt[1:4] == [2, 1, 1]
    assert compute(kv, child, 1) == []                   # block 2 is now child's alone
    assert kv.take_pending_copies() == []
    assert kv.get_block_ids(child) == [1, 2]
    for tok in (51, 52):                                 # parent fills block 3, then grows
        parent.append_output(tok)
        compute(kv, parent, 1)
    assert kv.get_block_ids(parent) == [1, 3, 4]
    kv.check_invariants()
    kv.free(parent)
    kv.free(child)
    assert kv.num_free_blocks == 9
    kv.check_invariants()


def test_fork_of_full_blocks_needs_no_copy():
    kv = KVCacheManager(block_size=4, num_blocks=10)
    parent = make_request("p", list(range(8)))
    compute(kv, parent, 8)
    child = make_request("c", list(range(8)))
    child.num_computed_tokens = 8
    kv.fork(parent, child)
    parent.append_output(1)
    child.append_output(2)
    assert compute(kv, parent, 1) == [3]
    assert compute(kv, child, 1) == [4]
    assert kv.take_pending_copies() == []
    kv.check_invariants()


def test_prefix_caching_off_never_hits():
    kv = KVCacheManager(block_size=4, num_blocks=10, enable_prefix_caching=False)
    a = make_request("a", list(range(8)))
    compute(kv, a, 8)
    b = make_request("b", list(range(8)))
    assert kv.get_computed_blocks(b) == ([], 0)
    assert kv.pool.block_hash[1] is None
