"""Multiply-adds a face of each shipped emotion model, and the share of them int8 kernels run:
the cost of a model on any CPU, which VNNI or its absence then scales (int8 costs about 2.5
times as much without VNNI; float32 does not change).

    python scripts/model_macs.py

Counts every Conv, MatMul and Gemm at batch 1 from the graph's inferred shapes; a node counts
as int8 when its weights come through a DequantizeLinear (the QDQ form tiltwatch exports, which
onnxruntime fuses into int8 kernels) or it is already an integer op.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import onnx
from onnx import shape_inference

from tiltwatch.vision.emotion import shipped_models

INTEGER_OPS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger"}


def shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    for inp in model.graph.input:  # batch 1
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    inferred = shape_inference.infer_shapes(model)
    out = {}
    for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        out[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        out[init.name] = list(init.dims)
    return out


def count(model: onnx.ModelProto) -> tuple[int, int]:
    """(multiply-adds a face, of which in int8 nodes)."""
    dims = shapes(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    total = int8 = 0
    for node in model.graph.node:
        if node.op_type not in {"Conv", "MatMul", "Gemm", *INTEGER_OPS}:
            continue
        weight = node.input[3 if node.op_type in {"QLinearConv", "QLinearMatMul"} else 1]
        w, y = dims.get(weight), dims.get(node.output[0])
        if not w or not y:
            continue
        if node.op_type in {"Conv", "QLinearConv", "ConvInteger"}:
            macs = int(np.prod(y)) * int(np.prod(w[1:]))  # each output: C_in/groups x kH x kW
        else:
            macs = int(np.prod(y)) * (w[0] if node.op_type != "Gemm" else w[1])
        total += macs
        source = producer.get(weight)
        if node.op_type in INTEGER_OPS or (source is not None and source.op_type == "DequantizeLinear"):
            int8 += macs
    return total, int8


def main() -> None:
    print(f"{'model':<42} {'M multiply-adds':>16} {'int8 share':>11}")
    for name in shipped_models():
        path = resources.files("tiltwatch.models").joinpath(f"{name}.onnx")
        total, int8 = count(onnx.load(str(path)))
        print(f"{name:<42} {total / 1e6:>16.1f} {int8 / max(total, 1):>10.1%}")


if __name__ == "__main__":
    main()
