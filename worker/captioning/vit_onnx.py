"""A ViT tagger as an ONNX graph with the WD v3 taggers' signature, built from random weights.

Input "input": NHWC float32 BGR in 0-255, [batch, size, size, 3]; output "output": sigmoid
probabilities [batch, tags]. The tiny captioner and the real-shaped benchmark model both come from
here (only the sizes differ), so tests run the same operators a WD-ViT tagger runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class VitShape:
    image_size: int
    patch: int
    hidden: int
    layers: int
    heads: int
    mlp: int

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch) ** 2


TINY_VIT = VitShape(image_size=32, patch=8, hidden=16, layers=1, heads=2, mlp=32)
# wd-vit-tagger-v3: ViT-B/16 at 448 px.
WD_VIT_B16_448 = VitShape(image_size=448, patch=16, hidden=768, layers=12, heads=12, mlp=3072)


class _Graph:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, stem: str, shape: tuple[int, ...], std: float) -> str:
        return self.const(stem, (self.rng.standard_normal(shape) * std).astype(np.float32))

    def op(self, op_type: str, inputs: list[str], **attrs: object) -> str:
        from onnx import helper

        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(
        self, x: str, n_in: int, n_out: int, bias: np.ndarray | None = None, gain: float = 1.0
    ) -> str:
        b = np.zeros(n_out, np.float32) if bias is None else bias.astype(np.float32)
        y = self.op("MatMul", [x, self.weight("w", (n_in, n_out), gain / math.sqrt(n_in))])
        return self.op("Add", [y, self.const("b", b)])

    def layer_norm(self, x: str, width: int) -> str:
        gamma = self.const("ln_g", np.ones(width, np.float32))
        beta = self.const("ln_b", np.zeros(width, np.float32))
        return self.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-6)

    def shape(self, *dims: int) -> str:
        return self.const("shape", np.array(dims, np.int64))


def _attention(g: _Graph, x: str, s: VitShape) -> str:
    head_dim = s.hidden // s.heads
    qkv = g.linear(x, s.hidden, 3 * s.hidden)
    qkv = g.op("Reshape", [qkv, g.shape(0, -1, 3, s.heads, head_dim)])
    qkv = g.op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])
    q, k, v = (g.op("Gather", [qkv, g.const("i", np.array(i, np.int64))], axis=0) for i in range(3))
    scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = g.op("Mul", [scores, g.const("scale", np.array(head_dim**-0.5, np.float32))])
    mixed = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    mixed = g.op("Reshape", [g.op("Transpose", [mixed], perm=[0, 2, 1, 3]),
                             g.shape(0, -1, s.hidden)])
    return g.linear(mixed, s.hidden, s.hidden)


def _gelu(g: _Graph, x: str) -> str:
    inner = g.op("Erf", [g.op("Div", [x, g.const("sqrt2", np.array(math.sqrt(2), np.float32))])])
    one = g.op("Add", [inner, g.const("one", np.array(1.0, np.float32))])
    return g.op("Mul", [g.op("Mul", [x, one]), g.const("half", np.array(0.5, np.float32))])


def build_vit_tagger(
    path: Path, shape: VitShape, head_bias: np.ndarray, *, head_gain: float = 1.0, seed: int = 0
) -> None:
    """Write a ViT tagger with `len(head_bias)` outputs.

    `head_bias` is each tag's base logit; `head_gain` scales how much the image moves it."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(np.random.default_rng(seed))
    x = g.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    x = g.op("Div", [x, g.const("pixel_scale", np.array(255.0, np.float32))])
    patch_weight = g.weight("patch_w", (shape.hidden, 3, shape.patch, shape.patch),
                            1 / math.sqrt(3 * shape.patch**2))
    x = g.op("Conv", [x, patch_weight, g.const("patch_b", np.zeros(shape.hidden, np.float32))],
             kernel_shape=[shape.patch, shape.patch], strides=[shape.patch, shape.patch])
    x = g.op("Transpose", [g.op("Reshape", [x, g.shape(0, shape.hidden, -1)])], perm=[0, 2, 1])
    x = g.op("Add", [x, g.weight("pos", (1, shape.tokens, shape.hidden), 0.02)])
    for _ in range(shape.layers):
        x = g.op("Add", [x, _attention(g, g.layer_norm(x, shape.hidden), shape)])
        hidden = _gelu(g, g.linear(g.layer_norm(x, shape.hidden), shape.hidden, shape.mlp))
        x = g.op("Add", [x, g.linear(hidden, shape.mlp, shape.hidden)])
    pooled = g.op("ReduceMean", [g.layer_norm(x, shape.hidden)], axes=[1], keepdims=0)
    logits = g.linear(pooled, shape.hidden, len(head_bias), bias=head_bias, gain=head_gain)
    g.nodes.append(helper.make_node("Sigmoid", [logits], ["output"]))
    size = shape.image_size
    graph = helper.make_graph(
        g.nodes, "vit_tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", len(head_bias)])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime that supports opset 17
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
