"""TensorRT backend: engine build (builder.py) and execution (runner.py); tensorrt is
imported lazily, so this package imports without it."""
