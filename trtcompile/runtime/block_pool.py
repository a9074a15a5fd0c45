"""Fixed pool of KV blocks: free queue in LRU order, reference counts, prefix-cache hashes.

Block 0 is reserved as the null block: never handed out, used by the runner to pad
block tables and to park the K/V of padding tokens. So `num_blocks - 1` blocks are usable.

    free queue (front = evicted first)                       hash -> block
    [ b7 | b3 (cached) | b9 (cached) | ... ]  <- freed blocks    h(b3), h(b9), h(in-use blocks)
A free block may still hold a cached hash: a prefix hit revives it (`touch`); a fresh
allocation takes the front block and drops its hash (eviction).
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from trtcompile.errors import ConfigError

NULL_BLOCK = 0


def hash_block(parent_hash: bytes | None, token_ids: Sequence[int]) -> bytes:
    """Content hash of a full block: chains the parent block's hash with this block's tokens."""
    h = hashlib.sha256(parent_hash or b"root")
    h.update(array("q", token_ids).tobytes())
    return h.digest()


class BlockPool:
    def __init__(self, num_blocks: int) -> None:
        if num_blocks < 2:
            raise ConfigError(f"num_blocks must be >= 2 (block 0 is reserved), got {num_blocks}")
        self.num_blocks = num_blocks
        self.ref_cnt = [0] * num_blocks
        self.block_hash: list[bytes | None] = [None] * num_blocks
        self._free: OrderedDict[int, None] = OrderedDict((b, None) for b in range(1, num_blocks))
        self._cached: dict[bytes, int] = {}
        self.num_evictions = 0

    @property
    def num_usable(self) -> int:
        return self.num_blocks - 1

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return self.num_usable - len(self._free)

    def free_order(self) -> list[int]:
        """Free blocks, front (next to be allocated/evicted) first. For tests and debugging."""
        return list(self._free)

    def get_cached_block(self, block_hash: bytes) -> int | None:
        return self._cached.get(block_hash)

    def get_new_blocks(self, n: int) -> list[int]:
        """Take n blocks from the front of the free queue, evicting their cached hashes."""
        if n > len(self._free):
            raise RuntimeError(f"asked for {n} blocks, {len(self._free)} free (check first)")
        out = []
        for _ in range(n):
            b, _ = self._free.popitem(last=False)
            h = self.block_hash[b]
            if h is not None:
                if self._cached.get(h) == b:
                    del self._cached[h]
                self.block_hash[b] = None
                self.num_evictions += 1
            self.ref_cnt[b] = 1
            out.append(b)
        return out

    def touch(self, blocks: Iterable[int]) -> None:
        """Take one more reference on each block, reviving free (cached) ones."""
        for b in blocks:
            if self.ref_cnt[b] == 0:
                del self._free[b]
            self.ref_cnt[b] += 1

    def free_blocks(self, blocks: Iterable[int]) -> None:
        """Drop one reference on each block, in the given order; the first block that
        reaches zero goes to the back of the free queue first (it is evicted first)."""
        for b in blocks:
            self.ref_cnt[b] -= 1
            if self.ref_cnt[b] == 0:
                self._free[b] = None
            elif self.ref_cnt[b] < 0:
                raise RuntimeError(f"block {b} freed more times than referenced")

    def cache_block(self, block: int, block_hash: bytes) -> None:
        """Publish a full, written block under its content hash (first writer wins)."""
        if self.block_hash[block] is not None:
            return
        if block_hash in self._cached:
            return  # same content already cached in another block; this one stays anonymous
        self.block_hash[block] = block_hash
        self._cached[block_hash] = block

    def check_invariants(self) -> None:
        assert self.ref_cnt[NULL_BLOCK] == 0 and NULL_BLOCK not in self._free
        for b in range(1, self.num_blocks):
            assert self.ref_cnt[b] >= 0, f"block {b} has ref count {self.ref_cnt[b]}"
            assert (self.ref_cnt[b] == 0) == (b in self._free), \
                f"block {b}: ref count {self.ref_cnt[b]}, in free queue: {b in self._free}"
        for h, b in self._cached.items():
            assert self.block_hash[b] == h, f"hash map points to block {b} with another hash"
