"""Making models, never on a measuring path: the fixture builders the tests, the
benchmarks and the demo use (ONNX via ``onnx.helper``, TFLite via the flatbuffer
schema ``ai_edge_litert`` ships), and — behind ``hostctl variants`` — the makers of
compressed variants.

Nothing here is downloaded, and nothing here is imported by ``profiler`` or
``agent``: this package imports numpy, onnx and flatbuffers at import time.
"""
