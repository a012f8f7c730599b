"""``modelzoo export`` / ``export_model``: ONNX and pt2 files checked against eager PyTorch.

Every native model is exported both ways with a dynamic batch and run again (ONNX in
onnxruntime, with the batch dimension symbolic in the graph; pt2 through
``torch.export.load``) at batch sizes 1 and 5, other than the export's; one model per family
runs by default and the rest under ``-m slow``. Models that cannot go to a format are listed
with the reason in ONNX_EXCEPTIONS / PT2_EXCEPTIONS and run as strict expected failures.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from export_helpers import sampled_models
from torch import nn

import modelzoo as mz
from modelzoo.cli import main as deploy_cli
from modelzoo.errors import ConfigError, UnknownModelError
from modelzoo.export import (
    ExportError,
    export_model,
    flat_output_names,
    named_outputs,
    onnx_session,
    read_metadata,
)
from modelzoo.predict import load_model
from modelzoo.utils import output_tensors

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")

ONNX_EXCEPTIONS: dict[str, str] = {}
PT2_EXCEPTIONS: dict[str, str] = {}


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
@pytest.mark.parametrize("name", sampled_models())
def test_every_model_exports_and_runs_like_eager(name: str, fmt: str, tmp_path: Path) -> None:
    exceptions = ONNX_EXCEPTIONS if fmt == "onnx" else PT2_EXCEPTIONS
    if name in exceptions:
        pytest.xfail(exceptions[name])
    torch.manual_seed(0)
    model = mz.create(name).eval()
    out = tmp_path / f"{name}.{fmt}"
    result = export_model(model, fmt, out)
    assert result.path == out and out.stat().st_size == result.num_bytes
    assert result.check_batch_size != result.export_batch_size
    assert result.max_abs_diff is not None and result.max_abs_diff <= result.tolerance
    # The file itself, read back independently of the check, gives eager's outputs at a
    # single example and at a third batch size, and its metadata names them.
    if fmt == "onnx":
        session = onnx_session(out.read_bytes())
        assert [i.name for i in session.get_inputs()] == list(result.input_names)
        assert [o.name for o in session.get_outputs()] == list(result.output_names)
        for spec in session.get_inputs():
            assert not isinstance(spec.shape[0], int), f"{spec.name}: batch fixed at {spec.shape}"
    else:
        program = torch.export.load(out).module()
    for batch_size in (1, 5):
        inputs = mz.example_inputs(model, batch_size, seed=7)
        with torch.no_grad():
            expected = output_tensors(model(*inputs))
            if fmt == "onnx":
                feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
                got = [torch.from_numpy(g) for g in session.run(None, feeds)]
            else:
                got = list(program(*inputs))
        assert len(got) == len(expected) == len(result.output_names)
        for g, e in zip(got, expected):
            assert g.shape == e.shape, (batch_size, g.shape, e.shape)
            if e.is_floating_point():
                scale = max(1.0, float(e.abs().max()))
                torch.testing.assert_close(g, e, atol=1e-4 * scale, rtol=0)
            else:
                assert torch.equal(g.to(e.dtype), e)
    meta = read_metadata(out)
    assert json.loads(meta["modelzoo.outputs"]) == list(result.output_names)
    assert meta["modelzoo.model"] == name


def test_output_names_follow_output_tensors_order() -> None:
    torch.manual_seed(0)
    for name, expected in [
        ("conv_vae", ["recon", "mu", "logvar"]),
        ("actor_critic", ["dist.logits", "value"]),
        ("resnet20", ["output"]),
    ]:
        model = mz.create(name).eval()
        with torch.no_grad():
            output = model(*mz.example_inputs(model, 2))
        assert flat_output_names(output) == expected
        tensors = [t for _, t in named_outputs(output)]
        assert all(a is b for a, b in zip(tensors, output_tensors(output)))
    assert flat_output_names((torch.zeros(1), {"a": torch.zeros(1)})) == ["output_0", "output_1.a"]
    assert flat_output_names({"x": torch.zeros(1), "y": (torch.zeros(1), None)}) == ["x", "y.0"]


def test_dataclass_outputs_are_named_in_onnx_and_pt2(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mz.create("conv_vae").eval()
    onnx_result = export_model(model, "onnx", tmp_path / "vae.onnx")
    proto = onnx.load(str(tmp_path / "vae.onnx"))
    assert [o.name for o in proto.graph.output] == ["recon", "mu", "logvar"]
    assert [i.name for i in proto.graph.input] == list(onnx_result.input_names)
    meta = read_metadata(tmp_path / "vae.onnx")
    assert json.loads(meta["modelzoo.outputs"]) == ["recon", "mu", "logvar"]
    assert json.loads(meta["modelzoo.dynamic_batch"]) is True
    export_model(model, "pt2", tmp_path / "vae.pt2")
    assert json.loads(read_metadata(tmp_path / "vae.pt2")["modelzoo.outputs"]) == [
        "recon",
        "mu",
        "logvar",
    ]


def test_static_batch_is_fixed_in_the_file(tmp_path: Path) -> None:
    model = mz.create("mlp_small").eval()
    result = export_model(model, "onnx", tmp_path / "m.onnx", dynamic_batch=False, batch_size=4)
    assert result.check_batch_size == 4
    (spec,) = onnx_session((tmp_path / "m.onnx").read_bytes()).get_inputs()
    assert spec.shape[0] == 4
    dynamic = export_model(model, "onnx", tmp_path / "d.onnx")
    (spec,) = onnx_session((tmp_path / "d.onnx").read_bytes()).get_inputs()
    assert not isinstance(spec.shape[0], int)
    assert dynamic.check_batch_size == 3
    export_model(model, "pt2", tmp_path / "m.pt2", dynamic_batch=False, batch_size=4)
    program = torch.export.load(tmp_path / "m.pt2").module()
    with pytest.raises(Exception, match="4"):
        program(torch.zeros(3, model.in_features))


def test_opset_is_the_one_asked_for(tmp_path: Path) -> None:
    result = export_model(mz.create("mlp_small"), "onnx", tmp_path / "m.onnx", opset=18)
    assert result.opset == 18
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert {o.domain: o.version for o in proto.opset_import}[""] == 18


def test_a_check_that_fails_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"the previous export")
    import modelzoo.export as export_module

    real = export_module._run_exported

    def off_by_a_little(fmt, data, inputs):  # as an exporter bug would
        return [t + 1e-2 for t in real(fmt, data, inputs)]

    monkeypatch.setattr(export_module, "_run_exported", off_by_a_little)
    with pytest.raises(ExportError, match=r"differs from eager PyTorch by 0\.01.* more than"):
        export_model(mz.create("mlp_small"), "onnx", out)
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left


def test_bad_arguments_say_what_to_do(tmp_path: Path) -> None:
    model = mz.create("mlp_small")
    with pytest.raises(ConfigError, match="format must be one of onnx, pt2"):
        export_model(model, "tflite", tmp_path / "m")
    with pytest.raises(ConfigError, match="ONNX setting"):
        export_model(model, "pt2", tmp_path / "m.pt2", opset=17)
    with pytest.raises(ConfigError, match="modelzoo.create"):
        export_model(nn.Linear(3, 4), "onnx", tmp_path / "m.onnx")
    with pytest.raises(UnknownModelError, match="resnt20"):
        export_model("resnt20", "onnx", tmp_path / "m.onnx")
    assert not any(tmp_path.iterdir())


def test_exports_a_run_directory_with_its_evaluated_weights(tmp_path: Path) -> None:
    run = ROOT / "tests/fixtures/run_v1"
    result = export_model(run, "onnx", tmp_path / "run.onnx")
    model = load_model(run)  # the EMA weights its best/last checkpoint evaluated
    x = mz.example_inputs(model, 4, seed=3)[0]
    (got,) = onnx_session((tmp_path / "run.onnx").read_bytes()).run(None, {"features": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), atol=1e-5, rtol=1e-5)
    cfg = json.loads(read_metadata(tmp_path / "run.onnx")["modelzoo.pretrained_cfg"])
    # how a deployment prepares inputs and names the classes
    assert cfg["label_names"] == [str(i) for i in range(10)] and cfg["flatten"] is True
    assert result.model == "mlp"


def test_exports_a_weight_set_and_a_saved_folder(tmp_path: Path) -> None:
    weights = export_model("mlp.digits", "pt2", tmp_path / "ws.pt2")
    mz.save_pretrained(mz.create("mlp.digits"), tmp_path / "folder")
    folder = export_model(tmp_path / "folder", "pt2", tmp_path / "folder.pt2")
    x = mz.example_inputs(mz.create("mlp.digits"), 3)[0]
    a = torch.export.load(tmp_path / "ws.pt2").module()(x)[0]
    b = torch.export.load(tmp_path / "folder.pt2").module()(x)[0]
    assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(a, mz.create("mlp.digits").eval()(x))
    assert weights.output_names == folder.output_names == ("output",)


def test_cli_prints_the_difference_and_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "resnet20.onnx"
    assert deploy_cli(["export", "resnet20.digits", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out} (onnx" in text and "batch dynamic" in text
    assert "checked in onnxruntime at batch 3: max abs diff" in text
    # the weights were trained on 16x16 digits (the architecture's default is 32x32): the
    # file takes the images the card prepares
    (spec,) = onnx_session(out.read_bytes()).get_inputs()
    assert spec.name == "images" and spec.shape[1:] == [1, 16, 16]
    pt2 = str(tmp_path / "c.pt2")
    assert deploy_cli(["export", "cnn_small.digits", "--out", pt2, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == "pt2" and document["max_abs_diff"] <= document["tolerance"]
    assert deploy_cli(["export", "cnn_small", "--out", str(tmp_path / "c.bin")]) == 2
    assert "ends neither in .onnx nor in .pt2" in capsys.readouterr().err
    assert not (tmp_path / "c.bin").exists()
