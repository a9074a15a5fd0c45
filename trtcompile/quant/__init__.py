"""Quantization: the mode table, weight/activation numerics, calibration, the quant passes' plan."""
