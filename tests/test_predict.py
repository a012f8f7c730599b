"""Predict: the zoo's own digit classifier on digit images written as PNG files, the
Python API and the ``modelzoo predict`` command, run directories, and the errors a user meets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import modelzoo as mz
from modelzoo.cli import main as modelzoo_cli
from modelzoo.data import build_data
from modelzoo.errors import ConfigError
from modelzoo.predict import expand_inputs, load_model, predict

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory) -> tuple[Path, list[str]]:
    """The digits test split (never trained on) as 8-bit grey PNGs: folder/<digit>/<n>.png."""
    data = build_data("digits")  # 8x8 in [0, 1], the split resnet20.digits was measured on
    root = tmp_path_factory.mktemp("digit_pngs")
    truth = []
    for i in range(len(data.test)):
        image, label = data.test[i]
        pixels = (image[0].numpy() * 255).round().astype(np.uint8)
        folder = root / str(int(label))
        folder.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    files = sorted(root.rglob("*.png"), key=lambda p: mz.registry.natural_key(str(p)))
    truth = [p.parent.name for p in files]
    return root, truth


def test_shipped_digit_classifier_reads_png_files_accurately(digit_pngs):
    root, truth = digit_pngs
    model = mz.create("resnet20.digits")
    preds = predict(model, root, top_k=3)
    assert len(preds) == len(truth) == 359
    top1 = [p[0][0] for p in preds]
    accuracy = np.mean([a == b for a, b in zip(top1, truth)])
    # The card measures 0.983 on these images as float tensors; 8-bit PNGs lose little.
    assert accuracy >= 0.95, accuracy
    for p in preds:
        labels, probs = zip(*p)
        assert set(labels) <= set("0123456789") and len(set(labels)) == 3
        assert list(probs) == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def _shipped(task_suffix: str) -> list:
    from modelzoo.registry import family_and_task
    from modelzoo.weights import all_weight_sets
    from modelzoo.weights.published import published_weight_sets

    published = {ws.name for ws in published_weight_sets()}
    return [
        ws
        for ws in all_weight_sets()
        if ws.name not in published and family_and_task(ws.arch)[1].endswith(task_suffix)
    ]


@pytest.mark.parametrize("ws", _shipped("classification"), ids=lambda ws: ws.name)
def test_shipped_classifiers_name_their_classes(ws):
    assert ws.class_names is not None, f"{ws.name}: input_spec has no labels"
    assert len(ws.class_names) == ws.model_kwargs["num_classes"]


IMAGE_CLASSIFIERS = [ws for ws in _shipped("classification") if "img_size" in ws.input_spec]


@pytest.mark.parametrize("ws", IMAGE_CLASSIFIERS, ids=lambda ws: ws.name)
def test_predict_reproduces_the_cards_accuracy_exactly(ws):
    """On the test split the card was measured on, given as the original 8x8 images,
    predict's preprocessing (upsampling, flattening, labels) gives the model exactly the
    inputs its training pipeline did: its top-1 accuracy is the card's."""
    spec = ws.input_spec
    options = {k: v for k, v in spec["data_kwargs"].items() if k not in ("img_size", "flatten")}
    data = build_data(spec["dataset"], **options)  # 8x8 originals, labels 0..k-1
    images = torch.stack([data.test[i][0] for i in range(len(data.test))])  # (N, 1, 8, 8)
    truth = [ws.class_names[int(data.test[i][1])] for i in range(len(data.test))]
    preds = predict(mz.create(ws.name), images, top_k=1, batch_size=128)
    accuracy = np.mean([p[0][0] == t for p, t in zip(preds, truth)])
    (measured,) = (m["accuracy"] for m in ws.metrics.values())
    assert accuracy == pytest.approx(measured, abs=1e-9)


def test_cli_json_is_one_document_in_input_order(digit_pngs, capsys):
    root, truth = digit_pngs
    assert modelzoo_cli(["predict", "resnet20.digits", str(root), "--json", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    document = json.loads(out)  # nothing else on stdout
    assert [Path(r["file"]).parent.name for r in document] == truth
    first = document[0]
    assert set(first) == {"file", "predictions"}
    assert [set(p) for p in first["predictions"]] == [{"label", "probability"}] * 2
    correct = sum(r["predictions"][0]["label"] == t for r, t in zip(document, truth))
    assert correct / len(truth) >= 0.95


def test_cli_prints_labels_and_percentages(digit_pngs, capsys):
    root, _ = digit_pngs
    seven = next((root / "7").glob("*.png"))
    assert modelzoo_cli(["predict", "resnet20.digits", str(seven), "--top-k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(seven)
    percent, label = lines[1].split()
    assert label == "7" and float(percent.rstrip("%")) > 50


def test_batches_and_input_forms_agree(digit_pngs):
    root, _ = digit_pngs
    files = sorted((root / "3").glob("*.png"))[:5]
    model = mz.create("resnet20.digits")
    by_path = predict(model, files, top_k=10, batch_size=2)
    one_batch = predict(model, [str(f) for f in files], top_k=10, batch_size=32)
    pil = predict(model, [Image.open(f) for f in files], top_k=10)
    tensors = torch.stack([torch.from_numpy(np.array(Image.open(f))).unsqueeze(0) for f in files])
    batch = predict(model, tensors, top_k=10)  # a (B, 1, 8, 8) uint8 batch
    for other in (one_batch, pil, batch):
        for a, b in zip(by_path, other):
            assert [x for x, _ in a] == [x for x, _ in b]
            assert np.allclose([p for _, p in a], [p for _, p in b], atol=1e-5)
    grey = [torch.from_numpy(np.array(Image.open(f))) for f in files]  # (H, W) uint8 each
    assert [p[0][0] for p in predict(model, grey, top_k=1)] == [p[0][0] for p in by_path]
    assert expand_inputs([files[0], root / "3"])[0][0] == str(files[0])
    assert predict("resnet20.digits", files[:1], top_k=1)[0][0][0] == by_path[0][0][0]


def test_run_directory_predicts_with_its_evaluated_weights():
    """The committed v1 run (an MLP on flattened digits): predicting its test split gives
    exactly the accuracy its evaluation recorded (the EMA weights, the flattening, the labels)."""
    run = ROOT / "tests/fixtures/run_v1"
    model = load_model(run)
    data = build_data("digits")
    images = torch.stack([data.test[i][0] for i in range(len(data.test))])
    labels = [str(int(data.test[i][1])) for i in range(len(data.test))]
    preds = predict(model, images, top_k=1, batch_size=100)
    accuracy = np.mean([p[0][0] == t for p, t in zip(preds, labels)])
    recorded = json.loads((run / "test_metrics.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(recorded, abs=1e-9)


def test_save_pretrained_folder_with_a_fine_tune_card(tmp_path, digit_pngs):
    root, _ = digit_pngs
    model = mz.create("resnet20.digits")
    mz.save_pretrained(model, tmp_path / "m")
    card = {"input_spec": {"img_size": 16, "in_chans": 1, "labels": list("0123456789")}}
    (tmp_path / "m" / "model_card.json").write_text(json.dumps(card))
    files = sorted((root / "4").glob("*.png"))[:4]
    assert predict(tmp_path / "m", files, top_k=3) == predict(model, files, top_k=3)


def test_wrong_labels_fall_back_to_indices(digit_pngs, caplog):
    root, _ = digit_pngs
    model = mz.create("resnet20.digits_0to4", num_classes=3)  # a new 3-class head
    file = next((root / "1").glob("*.png"))
    (preds,) = predict(model, file, top_k=3)
    assert sorted(label for label, _ in preds) == ["0", "1", "2"]
    assert "labelling the outputs by index" in caplog.text
    (named,) = predict(model, file, top_k=1, labels=["a", "b", "c"])
    assert named[0][0] in {"a", "b", "c"}


def test_errors_name_the_problem(tmp_path, digit_pngs, capsys):
    root, _ = digit_pngs
    model = mz.create("resnet20.digits")
    with pytest.raises(ConfigError, match="no file or folder at"):
        predict(model, tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match=r"cannot predict from a \.txt file"):
        predict(model, tmp_path / "notes.txt")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="cannot read .*broken.png as an image"):
        predict(model, tmp_path / "broken.png")
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    with pytest.raises(ConfigError, match="states no sample rate, so audio cannot be prepared"):
        predict(model, tmp_path / "clip.wav")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        predict(model, tmp_path / "empty")
    with pytest.raises(ConfigError, match="top_k must be"):
        predict(model, root, top_k=0)
    with pytest.raises(ConfigError, match="not built from a weight set"):
        predict(mz.create("resnet20", num_classes=10), next(root.rglob("*.png")))
    with pytest.raises(ConfigError, match="needs a classifier"):
        predict(mz.create("conv_autoencoder.digits"), next(root.rglob("*.png")))
    # The command says the same on stderr and exits 2, with nothing on stdout.
    assert modelzoo_cli(["predict", "resnet20.digits", str(tmp_path / "notes.txt"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "ConfigError" in captured.err
