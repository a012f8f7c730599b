"""Input checks: bad dtypes and layouts raise InputShapeError with a fix; graph capture keeps
them out of the way (a dynamic batch under torch.export) without dropping them (torch.fx)."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.fx

import modelzoo as mz
from modelzoo.errors import InputShapeError
from modelzoo.layers import check_image, graph_leaf


@pytest.fixture(scope="module")
def resnet20() -> torch.nn.Module:
    torch.manual_seed(0)
    return mz.create("resnet20").eval()


def test_uint8_images_are_told_to_scale(resnet20: torch.nn.Module) -> None:
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(
        InputShapeError, match=r"dtype float32; got dtype uint8.*x\.float\(\) / 255"
    ):
        resnet20(images)


def test_float64_images_are_told_to_convert(resnet20: torch.nn.Module) -> None:
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with pytest.raises(InputShapeError, match=r"got dtype float64\. Convert with x\.float\(\)"):
        resnet20(images)


def test_bf16_model_takes_bf16_images_and_names_its_dtype() -> None:
    torch.manual_seed(0)
    model = mz.create("resnet20").eval().bfloat16()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16
    with pytest.raises(InputShapeError, match=r"dtype bfloat16.*x\.to\(torch\.bfloat16\)"):
        model(torch.randn(2, 3, 32, 32))


def test_autocast_takes_inputs_of_another_float_dtype(resnet20: torch.nn.Module) -> None:
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = resnet20(images.bfloat16())  # autocast casts the inputs itself
    assert out.shape == (2, 10)


def test_channels_last_images_are_told_to_permute(resnet20: torch.nn.Module) -> None:
    hwc = torch.randn(2, 32, 32, 3)
    with pytest.raises(InputShapeError, match=r"channels-last.*x\.permute\(0, 3, 1, 2\)") as info:
        resnet20(hwc)
    assert "in_chans" not in str(info.value)  # not the old advice to rebuild with in_chans=32
    with torch.no_grad():  # the advice works
        assert resnet20(hwc.permute(0, 3, 1, 2)).shape == (2, 10)
    with pytest.raises(InputShapeError, match=r"x\.permute\(2, 0, 1\)\.unsqueeze\(0\)"):
        resnet20(hwc[0])
    # A channels_last memory format is NCHW all the same, and fine.
    with torch.no_grad():
        resnet20(torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last))


def test_wrong_channel_count_still_names_in_chans(resnet20: torch.nn.Module) -> None:
    with pytest.raises(InputShapeError, match=r"got 1 channels.*in_chans=1"):
        resnet20(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize(
    ("name", "shape", "dtype", "phrase"),
    [
        ("mlp", (2, 64), torch.int64, r"features of dtype float32; got dtype int64"),
        ("mlp", (2, 64), torch.float64, r"got dtype float64\. Convert with x\.float\(\)"),
        ("vae", (2, 1, 28, 28), torch.uint8, r"x\.float\(\) / 255"),
        ("vit_tiny_patch4_32", (2, 3, 32, 32), torch.float64, r"Convert with x\.float\(\)"),
        ("unet_tiny", (2, 3, 64, 64), torch.uint8, r"x\.float\(\) / 255"),
        ("dcgan_discriminator", (2, 1, 28, 28), torch.int32, r"Convert with x\.float\(\)"),
    ],
)
def test_dtype_errors_across_families(name: str, shape: tuple, dtype: torch.dtype, phrase: str):
    model = mz.create(name).eval()
    x = torch.zeros(shape, dtype=dtype)
    with pytest.raises(InputShapeError, match=phrase):
        model(x)


def test_feature_sequences_must_be_floats_of_the_model_dtype() -> None:
    model = mz.create("lstm_classifier", input_size=3).eval()
    with torch.no_grad():
        model(torch.randn(2, 5, 3))
    with pytest.raises(InputShapeError, match=r"sequences of dtype float32; got dtype int64"):
        model(torch.zeros(2, 5, 3, dtype=torch.long))
    with pytest.raises(InputShapeError, match=r"got dtype float64"):
        model(torch.zeros(2, 5, 3, dtype=torch.float64))


def test_rl_observations_of_numpy_dtypes_are_converted_not_refused() -> None:
    # Environments hand out float64 (and integer) observations; RL models convert them.
    model = mz.create("q_network").eval()
    with torch.no_grad():
        q64 = model(torch.ones(2, 4, dtype=torch.float64))
        q32 = model(torch.ones(2, 4))
    torch.testing.assert_close(q64, q32)


def test_checks_keep_a_dynamic_batch_under_export(resnet20: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32)
    batch = torch.export.Dim("batch")
    exported = torch.export.export(resnet20, (x,), dynamic_shapes=({0: batch},)).module()
    with torch.no_grad():
        torch.testing.assert_close(exported(torch.randn(7, 3, 32, 32)).shape, (7, 10))


def test_fx_records_the_checks_in_the_graph(resnet20: torch.nn.Module) -> None:
    traced = torch.fx.symbolic_trace(resnet20)
    targets = [n.target for n in traced.graph.nodes if n.op == "call_function"]
    assert check_image in targets
    with pytest.raises(InputShapeError, match=r"x\.float\(\) / 255"):
        traced(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(InputShapeError, match="channels-last"):
        traced(torch.zeros(2, 32, 32, 3))
    # and the traced module pickles (its nodes name importable functions)
    again = pickle.loads(pickle.dumps(traced))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x), resnet20(x))
    with pytest.raises(InputShapeError, match="channels-last"):
        again(torch.zeros(2, 32, 32, 3))


def test_graph_leaf_runs_eagerly_and_records_one_call_when_traced() -> None:
    calls = []

    @graph_leaf
    def pad_to_even(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return torch.nn.functional.pad(x, (0, x.shape[-1] % 2))  # shape-dependent

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return pad_to_even(x) * 2

    assert Net()(torch.ones(1, 3)).shape == (1, 4)
    traced = torch.fx.symbolic_trace(Net())
    assert calls == [(1, 3)]  # tracing did not run it
    assert traced(torch.ones(1, 5)).shape == (1, 6) and calls[-1] == (1, 5)
