"""A request's output text, grown as tokens arrive, in time proportional to the new tokens.

Decoding the whole output at every step costs O(n) per token and O(n^2) per request. Instead
each update decodes only a short window: the tokens since the last point where the text was
final (`_prefix`), once without and once with the tokens not yet turned into text (from
`_read` on). The window's leading tokens give the tokenizer the context it needs (leading
spaces, merges across tokens); the difference of the two decodes is the new text. A window
that ends inside a multi-byte character (decoded as U+FFFD) waits for the next token.

With a fast (Rust) Hugging Face tokenizer the same is done by the tokenizers library's own
DecodeStream, about ten times faster per token; `TextStreams` picks it when it is there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Detokenize = Callable[[Sequence[int]], str]
REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    """Any decode function; see the module docstring."""

    def __init__(self, decode: Detokenize) -> None:
        self._decode = decode
        self.text = ""                 # the output text so far
        self._prefix = 0               # window start: context tokens, their text already in text
        self._read = 0                 # tokens before this are in text

    def update(self, tokens: Sequence[int], final: bool = False) -> str:
        """tokens: the whole output so far (only ever extended). Returns the text so far.
        final: the output ends here; an unfinished character is emitted as U+FFFD, as a
        decode of all tokens would give it."""
        if len(tokens) < self._read:                    # not an extension: start over
            self.__init__(self._decode)
        if len(tokens) == self._read:
            return self.text
        before = self._decode(tokens[self._prefix:self._read])
        after = self._decode(tokens[self._prefix:])
        if not final and (after.endswith(REPLACEMENT) or len(after) < len(before)):
            return self.text                            # an unfinished character: wait
        self.text += after[len(before):]
        self._prefix, self._read = self._read, len(tokens)
        return self.text


def find_stop(text: str, stops: Sequence[str], start: int = 0) -> int | None:
    """Index of the earliest stop string in text that ends at or after `start`, or None."""
    hits = [i for i in (text.find(s, max(0, start - len(s) + 1)) for s in stops) if i >= 0]
    return min(hits) if hits else None


class _LibraryStream:
    """One output through tokenizers.decoders.DecodeStream (same contract as
    IncrementalDetokenizer.update)."""

    def __init__(self, backend, decode: Detokenize) -> None:
        from tokenizers.decoders import DecodeStream

        self._stream = DecodeStream(skip_special_tokens=True)
        self._backend, self._decode = backend, decode
        self.text = ""
        self._fed = 0                  # tokens given to the stream
        self._emitted = 0              # tokens whose text is in self.text

    def update(self, tokens: Sequence[int], final: bool = False) -> str:
        if len(tokens) < self._fed:                     # not an extension: start over
            self.__init__(self._backend, self._decode)
        for i in range(self._fed, len(tokens)):
            piece = self._stream.step(self._backend, tokens[i])
            if piece is not None:
                self.text += piece
                self._emitted = i + 1
        self._fed = len(tokens)
        if final and self._emitted < len(tokens):       # an unfinished character at the end
            start = max(0, self._emitted - 4)           # a few tokens of context
            before = self._decode(tokens[start:self._emitted])
            self.text += self._decode(tokens[start:])[len(before):]
            self._emitted = len(tokens)
        return self.text


class TextStreams:
    """Full decodes and per-request text streams for one tokenizer (skipping special tokens)."""

    def __init__(self, tokenizer) -> None:
        self.decode: Detokenize = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        try:
            from tokenizers.decoders import DecodeStream  # noqa: F401  (tokenizers >= 0.21)
        except ImportError:
            self._backend = None

    def new(self):
        """A stream for one request's output: an object with .text and .update(tokens, final)."""
        if self._backend is not None:
            return _LibraryStream(self._backend, self.decode)
        return IncrementalDetokenizer(self.decode)
