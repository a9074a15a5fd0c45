"""Per-request block tables over a BlockPool: prefix-cache lookup, allocation, fork/CoW, free.

A request's table covers exactly the tokens whose K/V are (or are being) written:

    |<-------- num_computed_tokens -------->|<- num_new_tokens ->|
    [ full, cached ][ full, cached ][ partial (own or shared) | new ][ new blocks ... ]
    prefix hits come from get_computed_blocks; a shared partial last block (after fork)
    is copied on write: a fresh block replaces it and (src, dst) is queued for the runner.

A full block is published to the prefix cache by `cache_blocks`, called by the scheduler
once the step that wrote it has run, so no request can hit a block whose K/V is unwritten.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from trtcompile.runtime.block_pool import NULL_BLOCK, BlockPool, hash_block
from trtcompile.runtime.request import Request


@dataclass
class PrefixCacheStats:
    queried_tokens: int = 0   # prompt (+ recomputed output) tokens of admitted requests
    hit_tokens: int = 0       # of which served from the prefix cache

    @property
    def hit_rate(self) -> float:
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class KVCacheManager:
    def __init__(self, block_size: int, num_blocks: int, enable_prefix_caching: bool = True):
        if block_size <= 0:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.pool = BlockPool(num_blocks)
        self.stats = PrefixCacheStats()
        # C ints (array 'i'): a step packs every table into its int32 input without
        # converting Python ints one by one (see step_inputs.build_step_inputs)
        self._tables: dict[str, array] = {}
        self._num_cached: dict[str, int] = {}        # leading blocks already published
        self._pending_copies: list[tuple[int, int]] = []

    # -- queries ---------------------------------------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return self.pool.num_free

    @property
    def num_used_blocks(self) -> int:
        return self.pool.num_used

    @property
    def usage(self) -> float:
        """Fraction of usable blocks referenced by some request."""
        return self.pool.num_used / self.pool.num_usable

    def get_block_ids(self, req: Request) -> list[int]:
        return list(self._tables.get(req.request_id, ()))

    def block_table(self, req: Request) -> array:
        """A copy of the request's block table as C ints (what a step's inputs are packed
        from; cheaper to copy and to pack than get_block_ids' list)."""
        table = self._tables.get(req.request_id)
        return table[:] if table is not None else array("i")

    def blocks_needed(self, num_tokens: int) -> int:
        return _cdiv(num_tokens, self.block_size)

    def _ensure_hashes(self, req: Request, num_full_blocks: int) -> list[bytes]:
        hashes, bs, toks = req.block_hashes, self.block_size, req.all_token_ids
        while len(hashes) < num_full_blocks:
            i = len(hashes)
            hashes.append(hash_block(hashes[-1] if hashes else None, toks[i * bs:(i + 1) * bs]))
        return hashes

    def get_computed_blocks(self, req: Request) -> tuple[list[int], int]:
        """Longest run of cached full blocks prefixing the request's tokens, and the number
        of tokens they cover. Never the whole sequence: the last token is always computed."""
        if not self.enable_prefix_caching:
            return [], 0
        max_blocks = (req.num_tokens - 1) // self.block_size
        hashes = self._ensure_hashes(req, max_blocks)
        blocks = []
        for h in hashes[:max_blocks]:
            b = self.pool.get_cached_block(h)
            if b is None:
                break
            blocks.append(b)
        return blocks, len(blocks) * self.block_size

    # -- allocation ------------------------------------------------------------------------
    def allocate_slots(self, req: Request, num_new_tokens: int,
                       new_computed_blocks: list[int] | None = None,
                       num_new_computed_tokens: int = 0) -> list[int] | None:
        """Make room for num_new_tokens after the request's computed tokens (and after the
        prefix hits new_computed_blocks, which the caller got from get_computed_blocks).
        Returns the newly allocated blocks, or None when the pool cannot serve it (nothing
        is changed then; the caller preempts or waits)."""
        rid = req.request_id
        table = self._tables.get(rid)
        if table and not new_computed_blocks:
            # Fast path (most decode steps): the new tokens fit in the blocks held, and no
            # copy-on-write is due (the last block is not shared, or is full).
            num_computed = req.num_computed_tokens + num_new_computed_tokens
            if (num_computed + num_new_tokens <= len(table) * self.block_size
                    and (num_new_tokens <= 0 or num_computed % self.block_size == 0
                         or self.pool.ref_cnt[table[-1]] == 1)):
                return []
        new_computed_blocks = new_computed_blocks or []
        held = len(table) if table else 0
        num_computed = req.num_computed_tokens + num_new_computed_tokens
        total_blocks = self.blocks_needed(num_computed + num_new_tokens)
        num_new = max(0, total_blocks - held - len(new_computed_blocks))
        cow = (num_new_tokens > 0 and table is not None and num_computed % self.block_size != 0
               and self.pool.ref_cnt[table[-1]] > 1)
        revived = sum(1 for b in new_computed_blocks if self.pool.ref_cnt[b] == 0)
        if num_new + cow > self.pool.num_free - revived:
            return None

        if table is None:
            table = self._tables[rid] = array("i")
            self._num_cached[rid] = 0
            self.stats.queried_tokens += req.num_tokens
            self.stats.hit_tokens += num_new_computed_tokens
        self.pool.touch(new_computed_blocks)
        table.extend(new_computed_blocks)
        self._num_cached[rid] += len(new_computed_blocks)
        if cow:
            src = table[-1]
            (dst,) = self.pool.get_new_blocks(1)
            self.pool.free_blocks([src])
            table[-1] = dst
            self._pending_copies.append((src, dst))
        new = self.pool.get_new_blocks(num_new)
        table.extend(new)
        return new

    def cache_blocks(self, req: Request, num_computed_tokens: int) -> None:
        """Publish the request's full blocks among its first num_computed_tokens tokens."""
        if not self.enable_prefix_caching:
            return
        rid = req.request_id
        table = self._tables.get(rid)
        if table is None:
            return
        num_full = min(num_computed_tokens // self.block_size, len(table))
        start = self._num_cached[rid]
        if num_full <= start:
            return
        hashes = self._ensure_hashes(req, num_full)
        for i in range(start, num_full):
            self.pool.cache_block(table[i], hashes[i])
        self._num_cached[rid] = num_full

    def fork(self, parent: Request, child: Request) -> None:
        """Share all of the parent's blocks with the child (copy-on-write)."""
        if child.request_id in self._tables:
            raise RuntimeError(f"request {child.request_id} already holds blocks")
        table = self._tables[parent.request_id]
        self.pool.touch(table)
        self._tables[child.request_id] = array("i", table)
        self._num_cached[child.request_id] = self._num_cached[parent.request_id]
        child.block_hashes = list(parent.block_hashes)

    def take_pending_copies(self) -> list[tuple[int, int]]:
        """(src, dst) block copies the runner must do before the next step; clears them."""
        out, self._pending_copies = self._pending_copies, []
        return out

    def free(self, req: Request) -> None:
        """Release the request's blocks, tail first, so its last blocks are evicted first."""
        table = self._tables.pop(req.request_id, None)
        self._num_cached.pop(req.request_id, None)
        if table:
            self.pool.free_blocks(reversed(table))

    def check_invariants(self) -> None:
        """Every block free xor referenced; ref counts equal the references tables hold."""
        self.pool.check_invariants()
        refs = [0] * self.pool.num_blocks
        for rid, table in self._tables.items():
            for b in table:
                assert b != NULL_BLOCK, f"request {rid} holds the null block"
                refs[b] += 1
        assert refs == self.pool.ref_cnt, "ref counts differ from the references tables hold"
