"""Optimization profiles over the engine I/O contract: shape ranges of T, S, max_blocks and
N, one profile per step size class (decode-sized, then prefill-sized). Pure Python."""

from __future__ import annotations

from dataclasses import dataclass

from trtcompile import io_names as io
from trtcompile.errors import ConfigError

MAX_SLOTS = 2**31 - 1  # slot_mapping is int32: N * b must fit


@dataclass(frozen=True)
class EngineLimits:
    """What bounds the shapes of one step; the config owner maps the YAML config to it."""

    max_num_seqs: int
    max_num_tokens: int
    max_model_len: int
    block_size: int
    max_num_blocks: int = 0     # pool size bound N; 0 = the most int32 slot ids allow

    def __post_init__(self):
        for name in ("max_num_seqs", "max_num_tokens", "max_model_len", "block_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"limits.{name} must be >= 1, found {getattr(self, name)}")
        if self.max_num_tokens < self.max_num_seqs:
            raise ConfigError("limits.max_num_tokens must be >= limits.max_num_seqs "
                              f"({self.max_num_tokens} < {self.max_num_seqs})")

    @property
    def max_blocks_per_seq(self) -> int:
        return -(-self.max_model_len // self.block_size)

    @property
    def pool_blocks(self) -> int:
        return self.max_num_blocks or MAX_SLOTS // self.block_size


@dataclass(frozen=True)
class Range:
    min: int
    opt: int
    max: int

    def __contains__(self, value: int) -> bool:
        return self.min <= value <= self.max


@dataclass(frozen=True)
class Profile:
    name: str
    dims: dict  # symbolic dimension name -> Range

    def fits(self, tokens: int, seqs: int) -> bool:
        return tokens in self.dims[io.DIM_TOKENS] and seqs in self.dims[io.DIM_SEQS]

    def shapes(self, network_shapes: dict[str, tuple]) -> dict[str, tuple[tuple, tuple, tuple]]:
        """(min, opt, max) per input: symbolic axes from this profile, fixed ones from the
        network (-1 where the network has a dynamic axis the contract does not name: a bug)."""
        symbolic = {s.name: s.shape for s in io.engine_inputs(1, 1, 1, 1, "float32")}
        out = {}
        for name, shape in network_shapes.items():
            names = symbolic.get(name, (None,) * len(shape))
            triple = [[], [], []]
            for axis, (extent, sym) in enumerate(zip(shape, names)):
                if sym in self.dims and extent < 0:
                    r = self.dims[sym]
                    values = (r.min, r.opt, r.max)
                elif extent >= 0:
                    values = (extent,) * 3
                else:
                    raise ValueError(f"input {name} axis {axis} is dynamic but not part of the "
                                     "engine I/O contract")
                for t, v in zip(triple, values):
                    t.append(v)
            out[name] = tuple(tuple(t) for t in triple)
        return out


def make_profiles(limits: EngineLimits) -> list[Profile]:
    """Decode-sized (T <= max_num_seqs) first, then every step up to max_num_tokens; the
    runner takes the first profile that fits a step."""
    seqs = limits.max_num_seqs
    blocks = limits.max_blocks_per_seq
    pool = limits.pool_blocks
    pool_opt = min(pool, seqs * blocks)

    def profile(name: str, tokens: Range) -> Profile:
        return Profile(name, {
            io.DIM_TOKENS: tokens,
            io.DIM_SEQS: Range(1, min(seqs, tokens.opt), seqs),
            io.DIM_SEQS_PLUS_ONE: Range(2, min(seqs, tokens.opt) + 1, seqs + 1),
            io.DIM_MAX_BLOCKS: Range(1, blocks, blocks),
            io.DIM_BLOCKS: Range(1, pool_opt, pool),
        })

    mixed = profile("prefill", Range(1, limits.max_num_tokens, limits.max_num_tokens))
    if limits.max_num_tokens <= seqs:
        return [mixed]
    return [profile("decode", Range(1, seqs, seqs)), mixed]


def pick_profile(profiles: list[Profile], tokens: int, seqs: int) -> int | None:
    return next((i for i, p in enumerate(profiles) if p.fits(tokens, seqs)), None)
