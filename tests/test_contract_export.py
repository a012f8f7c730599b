"""ONNX export of native models with a dynamic batch size, run in onnxruntime.

Each model goes through ``torch.onnx.export(..., dynamo=True, dynamic_shapes=...)``
once, at batch 2, and the ONNX model must keep the batch dimension symbolic and
give eager PyTorch's outputs at batch 1 and 5: for each output, the max abs
difference is at most ``ONNX_TOL * max(1, max |eager output|)``.

One model per family runs by default (the cheapest one); every other native model
runs with ``-m slow``. Models that cannot go to ONNX are listed in ONNX_EXCEPTIONS
with the reason and reported as strict expected failures.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import onnxruntime as ort
import pytest
import torch
from export_helpers import sampled_models

import modelzoo as mz
from modelzoo.utils import output_tensors

# onnxruntime's kernels (fused attention, convolution algorithms, float accumulation order)
# differ from PyTorch's. The tolerance is absolute for outputs of order one and relative to the
# output's scale beyond: freshly initialized deep ResNets (eval-mode BatchNorm is the identity)
# reach logits of 1e8, where float32 rounding alone differs by tens. Observed: below 1e-5
# (absolute) for outputs of order one, below 1e-6 relative to the scale of larger ones.
ONNX_TOL = 1e-4

ONNX_EXCEPTIONS: dict[str, str] = {}


def _session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the suite runs one torch thread per process too
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", sampled_models())
def test_onnx_export_with_dynamic_batch_runs_in_onnxruntime(name: str) -> None:
    if name in ONNX_EXCEPTIONS:
        pytest.xfail(ONNX_EXCEPTIONS[name])
    torch.manual_seed(0)
    model = mz.create(name).eval()
    card = mz.model_card(name)
    inputs = card.example_inputs(2)
    batch = torch.export.Dim("batch")
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter reports its steps there
        program = torch.onnx.export(
            model, inputs, dynamo=True, dynamic_shapes=tuple({0: batch} for _ in inputs)
        )
    session = _session(program.model_proto.SerializeToString())
    onnx_inputs = session.get_inputs()
    assert len(onnx_inputs) == len(inputs)
    for spec in onnx_inputs:
        assert not isinstance(spec.shape[0], int), f"{spec.name}: batch fixed at {spec.shape[0]}"
    for batch_size in (1, 5):
        feeds = card.example_inputs(batch_size, seed=batch_size)
        with torch.no_grad():
            expected = output_tensors(model(*feeds))
        got = session.run(None, {s.name: x.numpy() for s, x in zip(onnx_inputs, feeds)})
        assert len(got) == len(expected)
        for out, ref in zip(got, expected):
            assert out.shape == tuple(ref.shape), (batch_size, out.shape, tuple(ref.shape))
            ref64 = ref.double().numpy()
            diff = float(np.abs(out.astype(np.float64) - ref64).max(initial=0.0))
            scale = max(1.0, float(np.abs(ref64).max(initial=0.0)))
            assert diff <= ONNX_TOL * scale, f"batch {batch_size}: max abs diff {diff:.2e}"
