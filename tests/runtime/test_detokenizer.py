"""Text streams (IncrementalDetokenizer over any decode function, and the tokenizers library's
DecodeStream that TextStreams picks for fast tokenizers): the text grown token by token
equals a decode of the whole output at the end, and every intermediate text is a prefix of
it (what streaming relies on); with the real SmolLM2 tokenizer (byte-level BPE: tokens that
split UTF-8 characters, special tokens that decode to nothing) and with a toy decoder whose
text depends on neighbours."""

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trtcompile.runtime.detokenizer import IncrementalDetokenizer, TextStreams, find_stop


@functools.cache
def smollm2_tokenizer():
    from trtcompile.models.loading import smollm2_tokenizer as load

    return load()


def streams(kind: str):
    """(full decode, new stream) for the SmolLM2 tokenizer."""
    ts = TextStreams(smollm2_tokenizer())
    if kind == "library":
        assert ts._backend is not None                 # the fast path is really taken
        return ts.decode, ts.new
    return ts.decode, lambda: IncrementalDetokenizer(ts.decode)


def grow(new, tokens, chunks):
    """Feed tokens in the given chunk sizes; returns the intermediate texts and the final one."""
    detok, seen, i = new(), [], 0
    for n in chunks:
        i = min(len(tokens), i + n)
        seen.append(detok.update(tokens[:i], final=i == len(tokens)))
        if i == len(tokens):
            break
    if i < len(tokens):
        seen.append(detok.update(tokens, final=True))
    return seen


def check(decode, new, tokens, chunks):
    seen = grow(new, tokens, chunks)
    full = decode(tokens)
    assert seen[-1] == full
    for text in seen:
        assert full.startswith(text)


TEXT = ("Grüße aus Köln! 東京は晴れ。 Emoji: 🚀🙂, math: ∑ x² ≤ ∞ — and plain ASCII words, "
        "numbers 12345 and    runs of spaces.\n\tTabs too.")


KINDS = ["generic", "library"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_real_text_matches_full_decode(kind, chunk):
    decode, new = streams(kind)
    ids = smollm2_tokenizer().encode(TEXT)
    check(decode, new, ids, [chunk] * len(ids))
    assert grow(new, ids, [1] * len(ids))[-1] == TEXT


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_tokens_match_full_decode(kind, data):
    decode, new = streams(kind)
    # byte tokens and CJK pieces split characters; ids < 17 include the special tokens
    pool = st.one_of(st.integers(0, len(smollm2_tokenizer()) - 1), st.integers(0, 300),
                     st.integers(0, 16))
    tokens = data.draw(st.lists(pool, min_size=1, max_size=40))
    chunks = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=40))
    check(decode, new, tokens, chunks)


def test_context_dependent_decoder():
    """A decoder that drops a word's leading space at the start of the text (as sentencepiece
    decoders do): windows keep one token of context, so spaces survive."""
    words = {0: "▁the", 1: "▁cat", 2: "s", 3: "▁sat", 4: "."}

    def decode(ids):
        return "".join(words[i] for i in ids).replace("▁", " ").lstrip(" ")

    tokens = [0, 1, 2, 3, 4, 0, 1]
    new = functools.partial(IncrementalDetokenizer, decode)
    check(decode, new, tokens, [1] * len(tokens))
    assert grow(new, tokens, [1] * len(tokens))[-1] == "the cats sat. the cat"


@pytest.mark.parametrize("kind", KINDS)
def test_unfinished_character_waits_then_final_flushes(kind):
    decode, new = streams(kind)
    ids = smollm2_tokenizer().encode("🚀")
    assert len(ids) > 1                         # the emoji is split over byte tokens
    detok = new()
    assert detok.update(ids[:1]) == ""          # half a character is held back
    assert detok.update(ids[:1], final=True) == decode(ids[:1])   # ... unless the output ends
    assert "\ufffd" in decode(ids[:1])


def test_find_stop_only_reports_stops_reaching_new_text():
    assert find_stop("hello world", ["lo w"], start=6) == 3     # ends in the new part
    assert find_stop("hello world", ["he"], start=6) is None    # entirely old: seen before
    assert find_stop("hello world", ["wor", "o w"], start=6) == 4
    assert find_stop("abc", [], start=0) is None
