"""Measure one .tflite or .onnx model on this machine.

Runtimes are imported lazily inside backends: importing this package (or the
runner) does not load LiteRT, ONNX Runtime or NumPy.
"""

__version__ = "0.1.0"
