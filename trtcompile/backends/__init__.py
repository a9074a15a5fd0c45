"""Backends: what executes a built graph (torch, tensorrt)."""
