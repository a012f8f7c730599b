"""``mz.quantize`` / ``modelzoo quantize``: int8 models that keep their accuracy and reload.

Static quantization runs through torchao's PT2E flow and the x86 lowering; dynamic through
``torch.ao.quantization.quantize_dynamic``. The shipped digit models are checked on the
test split of their card's data (calibrated on the val split), which is what
benchmarks/quantization.md reports for every shipped weight set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from script_helpers import load_script
from torch import nn

import modelzoo as mz
from modelzoo.cli import main as deploy_cli
from modelzoo.data import build_data
from modelzoo.errors import ConfigError
from modelzoo.quantize import (
    QuantizationError,
    QuantizedModel,
    calibration_data,
    load_quantized,
    quantization_info,
    quantize,
    save_quantized,
)
from modelzoo.utils import output_tensors

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(-1) == labels).float().mean())


def _test_split(**data) -> tuple[torch.Tensor, torch.Tensor]:
    test = build_data("digits", **data).test
    return torch.stack([test[i][0] for i in range(len(test))]), torch.tensor(
        [int(test[i][1]) for i in range(len(test))]
    )


@pytest.fixture(scope="module")
def static_cnn() -> tuple[nn.Module, QuantizedModel]:
    model = mz.create("cnn_small.digits").eval()
    return model, quantize(model, "static", calibration=calibration_data("cnn_small.digits"))


def test_static_int8_cnn_keeps_its_test_accuracy(static_cnn) -> None:
    model, qmodel = static_cnn
    images, labels = _test_split()
    before, after = _accuracy(model, images, labels), _accuracy(qmodel, images, labels)
    assert before == pytest.approx(0.98886, abs=1e-4)  # the card's figure
    assert after >= before - 0.01, (before, after)
    info = quantization_info(qmodel)
    assert info["mode"] == "static" and "torchao.quantization.pt2e" in info["path"]
    assert info["calibration_samples"] == len(build_data("digits").val)
    # int8 kernels really run: oneDNN quantized convolutions in the lowered graph
    targets = {str(n.target) for n in qmodel.lowered(images).graph.nodes}
    assert any("qconv" in t for t in targets), targets
    assert qmodel.model_name == "cnn_small" and qmodel.pretrained_cfg is not None


def test_static_model_runs_at_any_batch_size_and_reloads(static_cnn, tmp_path: Path) -> None:
    model, qmodel = static_cnn
    images, _ = _test_split()
    for batch in (1, 5):
        out = qmodel(images[:batch])
        assert out.shape == (batch, 10)
        with torch.no_grad():
            assert (out.argmax(-1) == model(images[:batch]).argmax(-1)).float().mean() >= 0.6
    save_quantized(qmodel, tmp_path / "q")
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["model.pt2", "quantization.json"]
    again = load_quantized(tmp_path / "q")
    assert isinstance(again, QuantizedModel)
    assert torch.equal(again(images[:5]), qmodel(images[:5]))
    assert again.pretrained_cfg == qmodel.pretrained_cfg
    assert quantization_info(again)["mode"] == "static"
    # the portable program is a plain torch.export archive
    program = torch.export.load(tmp_path / "q" / "model.pt2")
    assert program.module()(images[:3]).shape == (3, 10)


def test_dynamic_int8_mlp_keeps_its_accuracy_and_reloads_exactly(tmp_path: Path) -> None:
    model = mz.create("mlp.digits").eval()
    qmodel = quantize(model, "dynamic")
    quantized = [m for m in qmodel.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert len(quantized) == quantization_info(qmodel)["layers"] == 3
    assert not any(type(m).__module__.startswith("torch.ao.nn") for m in model.modules())
    images, labels = _test_split(flatten=True)
    before, after = _accuracy(model, images, labels), _accuracy(qmodel, images, labels)
    assert before == pytest.approx(0.96379, abs=1e-4)
    assert after >= before - 0.01, (before, after)
    save_quantized(qmodel, tmp_path / "q")
    names = sorted(p.name for p in (tmp_path / "q").iterdir())
    # the float model as save_pretrained writes it (int8 again on load), and what was done
    assert names == ["README.md", "config.json", "model.safetensors", "quantization.json"]
    assert torch.equal(mz.from_pretrained(tmp_path / "q").eval()(images), model(images))
    again = load_quantized(tmp_path / "q")
    with torch.no_grad():
        assert torch.equal(again(images), qmodel(images))
    assert list(again.pretrained_cfg["label_names"]) == list(model.pretrained_cfg["label_names"])


def test_dynamic_lstm_language_model_keeps_its_outputs_structure(tmp_path: Path) -> None:
    model = mz.create("lstm_lm.stdlib").eval()
    qmodel = quantize(model, "dynamic")
    # the zoo's Recurrent LSTM runs through torch's int8 LSTM kernel, the decoder too
    assert isinstance(qmodel.rnn.rnn, torch.ao.nn.quantized.dynamic.LSTM)
    assert isinstance(qmodel.decoder, torch.ao.nn.quantized.dynamic.Linear)
    assert quantization_info(qmodel)["layers"] == 2
    tokens = mz.example_inputs(model, 2, seed=0)[0]
    with torch.no_grad():
        ref, out = model(tokens), qmodel(tokens)
    assert type(out) is type(ref)  # the same output class (logits, state)
    # int8 weights move the next-byte distribution a little, not its ranking
    agree = (out.logits.argmax(-1) == ref.logits.argmax(-1)).float().mean()
    assert agree >= 0.9, agree
    save_quantized(qmodel, tmp_path / "q")
    with torch.no_grad():
        for a, b in zip(
            output_tensors(load_quantized(tmp_path / "q")(tokens)), output_tensors(out)
        ):
            assert torch.equal(a, b)


def test_modes_refuse_what_they_cannot_quantize() -> None:
    with pytest.raises(QuantizationError, match="no Linear, LSTM or GRU layer.*mode='static'"):
        quantize(mz.create("unet_tiny"), "dynamic")
    with pytest.raises(ConfigError, match="calibrates activation ranges on data"):
        quantize(mz.create("cnn_small"), "static")
    with pytest.raises(ConfigError, match="mode must be one of dynamic, static"):
        quantize(mz.create("cnn_small"), "int4")
    with pytest.raises(ConfigError, match="never 'test'"):
        calibration_data("cnn_small.digits", split="test")
    with pytest.raises(ConfigError, match="names no weight set"):
        calibration_data("mlp_small")


def test_calibration_batches_are_checked() -> None:
    model = mz.create("cnn_small", img_size=8, in_chans=1).eval()
    with pytest.raises(ConfigError, match="holds 3 inputs; the model takes 1"):
        quantize(model, "static", calibration=[(torch.zeros(2, 1, 8, 8),) * 3])
    with pytest.raises(ConfigError, match="calibration must be a tensor"):
        quantize(model, "static", calibration=3)


def test_calibration_data_comes_from_the_card_or_the_run() -> None:
    loader = calibration_data("resnet20.digits")  # the card's recipe resizes digits to 16x16
    images, labels = next(iter(loader))
    assert images.shape[1:] == (1, 16, 16) and len(images) == len(labels)
    assert len(loader.dataset) == len(build_data("digits").val)  # the val split
    run = calibration_data(ROOT / "tests/fixtures/run_v1")  # flattened digits
    assert next(iter(run))[0].shape[1:] == (64,)


def test_load_refuses_other_folders(tmp_path: Path) -> None:
    mz.save_pretrained(mz.create("mlp_small"), tmp_path / "float")
    with pytest.raises(QuantizationError, match="not a folder written by modelzoo quantize"):
        load_quantized(tmp_path / "float")
    with pytest.raises(ConfigError, match="not quantized"):
        save_quantized(mz.create("mlp_small"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_writes_a_folder_that_loads(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mlp-int8"
    assert deploy_cli(["quantize", "mlp.digits", "--mode", "dynamic", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "torch.ao.quantization.quantize_dynamic" in text
    x = mz.example_inputs(mz.create("mlp"), 4)[0]
    with torch.no_grad():  # dynamic int8 is deterministic: the folder holds that model
        expected = quantize(mz.create("mlp.digits").eval(), "dynamic")(x)
        assert torch.equal(load_quantized(out)(x), expected)
    info = json.loads((out / "quantization.json").read_text())
    assert info["model"] == "mlp" and info["mode"] == "dynamic"
    assert deploy_cli(["quantize", "unet_tiny", "--mode", "dynamic", "--out", str(tmp_path / "u")])
    assert "QuantizationError" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_quantization_results_are_measured_again() -> None:
    """The cheap part of ``scripts/quantization_results.py --check``: the metrics of the
    dynamic MLP row come out again (deterministic), without the latency."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/quantization_results.py"),
            "--check",
            "--only",
            "mlp.digits:dynamic",
            "--no-latency",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mlp.digits dynamic: metrics reproduced" in result.stdout


def test_quantization_md_is_rendered_from_its_json_and_the_manifest() -> None:
    """benchmarks/quantization.md is what the script renders now: its table from the JSON and,
    from the manifest, every shipped weight set without a row (so one shipped later is listed
    as not measured until it has a row)."""
    script = load_script("quantization_results")
    listed = (ROOT / "benchmarks/quantization.md").read_text()
    assert listed == script.render(json.loads((ROOT / "benchmarks/quantization.json").read_text()))
    assert "`dcgan.digits`: its card measures the GAN game" in listed
    assert "conformer_ctc.spoken_digits" in listed  # shipped after the rows were chosen


def test_a_dynamic_int8_policy_has_no_float_parameter_and_still_plays() -> None:
    """Dynamic int8 replaces every Linear of a small policy, leaving no parameter at all; the
    evaluation finds the model's device from its buffers (it used to raise StopIteration)."""
    from modelzoo.train.rl.evaluation import evaluate_policy
    from modelzoo.utils.devices import model_device

    qmodel = quantize(mz.create("actor_critic.cartpole"), "dynamic")
    assert list(qmodel.parameters()) == []
    assert model_device(qmodel) == torch.device("cpu")
    result = evaluate_policy(qmodel, "CartPole-v1", 2, 30000)
    assert result["mean_return"] == 500.0  # the float policy's return on these seeds
