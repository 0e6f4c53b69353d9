"""Compressed variants of a .tflite or .onnx model, behind ``hostctl variants``.

Made with well-kept libraries and no TensorFlow (``pip install 'edgeprof[variants]'``):

========  ===========================================  ======================================
kind      .tflite                                      .onnx
========  ===========================================  ======================================
``fp32``  the source, copied                           the source, copied
``f16``   ai-edge-quantizer float casting (fp16        onnxconverter-common float16
          weights + DEQUANTIZE)                        (input/output types kept)
``blq``   ai-edge-quantizer ``dynamic_wi8_afp32``      onnxruntime ``quantize_dynamic`` int8
``wo8``   ai-edge-quantizer ``weight_only_wi8_afp32``  not made: no such mode for Conv/Gemm
``fiq``   ai-edge-quantizer ``static_wi8_ai8``         onnxruntime ``quantize_static`` QDQ,
          (calibrated; int8 input and output)          per channel, MinMax-calibrated
``prn``   magnitude pruning of the weight buffers,     magnitude pruning of the weight
          written through the TFLite schema            initializers
``prq``   ``prn``, then ``blq``'s recipe               ``prn``, then ``blq``'s quantization
========  ===========================================  ======================================

Each variant is written as ``STEM.NAME.EXT`` with ``STEM.NAME.recipe.json`` beside it
(:mod:`modelkit.variants.record`) and checked against its source (top-1 agreement,
output SNR: :mod:`modelkit.variants.check`). Entry point: :func:`make_variants`.
"""

from __future__ import annotations

from modelkit.variants.errors import VariantError
from modelkit.variants.make import RANDOM, make_variants, parse_kinds, parse_sparsities
from modelkit.variants.record import KIND_TITLES, KINDS, Outcome, read_record

__all__ = [
    "KINDS",
    "KIND_TITLES",
    "RANDOM",
    "Outcome",
    "VariantError",
    "make_variants",
    "parse_kinds",
    "parse_sparsities",
    "read_record",
]
