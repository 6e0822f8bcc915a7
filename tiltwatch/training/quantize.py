"""Static int8 quantization of an exported model (``tiltwatch export --int8 FERPLUS_ROOT``).

Weights are quantized per output channel, activations per tensor with ranges calibrated on
real FER+ training faces (QDQ format, onnxruntime's own quantizer). Activations are unsigned
(uint8): with signed ones onnxruntime left a residual net's adds, and the convs around them, in
float32 (a res_deep member ran 7 of its 11 convs in float32: 4.96 ms a face for five nets
against 2.68 ms). Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI, uint8 x int8
products are summed in pairs into int16, which 8-bit weights can saturate and 7 cannot. On a
CPU with int8 dot products (the development machine's AVX-512 VNNI; AVX-VNNI and ARM's dot
product are alike) it ran the default vgg_deep pair 2.5x faster than float32 (1.33 against 3.34 ms a face),
which is what lets an ensemble fit the 3 ms a face budget.

Usage::

    report = quantize_int8("model_fp32.onnx", "model.onnx", calibration_images)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from ..errors import InputError
from ..vision.preprocess import to_model_input
from .datasets import load_ferplus

CALIBRATION_IMAGES = 512  # with these the int8 pair scored 85.9% on FER+ valid, float32 85.7%; no other count tried


class _Batches(CalibrationDataReader):
    def __init__(self, x: np.ndarray, batch: int = 32):
        self._it = iter([{"input": x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self) -> dict | None:
        return next(self._it, None)


def calibration_set(ferplus_root: str, size: int, n: int = CALIBRATION_IMAGES) -> np.ndarray:
    """``n`` FER+ training faces (a fixed random draw), as model input."""
    train = load_ferplus(ferplus_root, "train", size)
    if len(train.images) == 0:
        raise InputError(f"{ferplus_root}: no FER+ training images to calibrate int8 on")
    pick = np.random.default_rng(0).choice(len(train.images), min(n, len(train.images)), replace=False)
    return to_model_input(train.images[np.sort(pick)], size)


def quantize_int8(fp32: str | Path, out: str | Path, calibration: np.ndarray, float_heads: bool = False) -> dict:
    """Write the int8 version of ``fp32`` to ``out``; returns what the model card records.

    ``float_heads``: the heads' last layers (``Gemm``: a few thousand multiply-adds) stay float32.
    A lone net has no ensemble to average its rounding away: round five's member b alone agreed
    with float32 on 98.0% of 512 FER+ valid faces, with float heads on 99.0%, at the same speed."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))  # shape inference + folding, as the quantizer asks
        heads = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Gemm"] if float_heads else []
        quantize_static(
            str(prepared),
            str(out),
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=heads,
        )
    return {
        "format": "QDQ: int8 weights (7 bits) per output channel, uint8 activations per tensor "
        "(onnxruntime.quantization)" + ("; the heads' last layers (Gemm) in float32" if heads else ""),
        "calibration": f"{len(calibration)} FER+ training images (fixed random draw), min-max ranges",
    }
