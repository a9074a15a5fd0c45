"""trtcompile: an ahead-of-time compiler for decoder-only LLMs and the runtime that serves them."""

__version__ = "0.1.0"
