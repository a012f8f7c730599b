"""torchvision's standard datasets as ``build_data("torchvision/<Class>")``, and the CIFAR-10
recipes of He et al. 2016.

Every dataset is read by torchvision's own classes from small stand-ins written in the
real on-disk formats (tests/data/torchvision_fakes.py): CIFAR's pickled batches and meta
files, MNIST's IDX files, SVHN's MATLAB file, ImageNet's extracted layout. Downloading is
off (``MODELZOO_OFFLINE=1``), except in the download test, which serves the CIFAR archive
from a loopback server. Nothing touches the network.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
import yaml
from PIL import Image
from torchvision.transforms import v2
from torchvision_fakes import (
    CIFAR10_CLASSES,
    IMAGENET_WNIDS,
    install,
    tar_gz,
    write_cifar10,
    write_image_folder,
)

import modelzoo as mz
import modelzoo.data.torchvision_datasets as tvb  # registers the torchvision/ family
from modelzoo.cli import main as cli_main
from modelzoo.data import build_data, list_datasets
from modelzoo.data.registry import dataset_kwargs, recipe_of
from modelzoo.errors import ConfigError, OfflineError

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "configs/resnet").glob("*_cifar10.yaml"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    """MODELZOO_HOME holding every stand-in, offline."""
    home = tmp_path / "home"
    return home, install(home, monkeypatch)


def _positions(split: tvb.TorchvisionSplit) -> np.ndarray:
    return split.indices if split.indices is not None else np.arange(len(split.dataset))


def _stack(split: tvb.TorchvisionSplit) -> tuple[torch.Tensor, torch.Tensor]:
    items = [split[i] for i in range(len(split))]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


# --- the datasets -----------------------------------------------------------------------------


def test_cifar10_reads_the_python_batches_and_carves_a_stratified_validation_split(home):
    _, written = home
    data = build_data("torchvision/CIFAR10", val_fraction=0.5, normalize="none")
    info = data.info
    assert info["classes"] == CIFAR10_CLASSES and info["num_classes"] == 10
    assert (info["in_chans"], info["img_size"], info["in_features"]) == (3, 32, 3072)
    assert info["task"] == "classification" and info["dataset"] == "torchvision/CIFAR10"
    # 60 training images: half of each class held out, the 20 test images untouched.
    train, val = _positions(data.train), _positions(data.val)
    assert sorted([*train, *val]) == list(range(60))
    for c in range(10):
        count = int((written["CIFAR10"]["train_y"] == c).sum())
        assert int((written["CIFAR10"]["train_y"][val] == c).sum()) == round(count / 2)
    assert len(data.test) == 20
    assert info["splits"]["test"] == {"args": {"train": False}, "size": 20}
    assert info["splits"]["val"]["carved"] == 0.5
    # Pixels and labels arrive as written, in [0, 1] without normalization.
    for split, positions, images, labels in (
        (data.train, train, written["CIFAR10"]["train_x"], written["CIFAR10"]["train_y"]),
        (data.test, np.arange(20), written["CIFAR10"]["test_x"], written["CIFAR10"]["test_y"]),
    ):
        x, y = _stack(split)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (len(split), 3, 32, 32)
        expected = torch.from_numpy(images[positions]).float() / 255
        torch.testing.assert_close(x, expected)
        assert y.tolist() == labels[positions].tolist()
        assert split.targets.tolist() == labels[positions].tolist()
    # Same seed, same split; another seed, another one.
    again = build_data("torchvision/CIFAR10", val_fraction=0.5, normalize="none")
    assert np.array_equal(_positions(again.val), val)
    other = build_data("torchvision/CIFAR10", val_fraction=0.5, normalize="none", seed=1)
    assert not np.array_equal(_positions(other.val), val)


def test_cifar100_fine_labels_and_class_names(home):
    _, written = home
    data = build_data("torchvision/CIFAR100", val_fraction=0.0, normalize="none")
    assert data.val is None
    assert data.info["num_classes"] == 100
    assert data.info["classes"][:2] == ["fine_00", "fine_01"]
    x, y = _stack(data.test)
    assert y.tolist() == written["CIFAR100"]["test_y"].tolist()
    assert x.shape == (100, 3, 32, 32)


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_mnist_family_reads_idx_files_under_data_class_raw(home, name):
    path, written = home
    assert (path / "data" / name / "raw" / "train-images-idx3-ubyte").is_file()
    data = build_data(f"torchvision/{name}", val_fraction=0.0, normalize="none")
    assert data.info["classes"] == list(getattr(tvd, name).classes)
    assert (data.info["in_chans"], data.info["img_size"]) == (1, 28)
    assert data.info["root"] == str(path / "data")  # torchvision adds <Class>/raw itself
    x, y = _stack(data.train)
    assert x.shape == (30, 1, 28, 28)
    torch.testing.assert_close(x[:, 0], torch.from_numpy(written[name]["train_x"]).float() / 255)
    assert y.tolist() == written[name]["train_y"].tolist()
    assert len(data.test) == 20


def test_svhn_reads_the_mat_files_with_zero_as_label_zero(home):
    _, written = home
    data = build_data("torchvision/SVHN", val_fraction=0.0, normalize="none")
    assert data.info["classes"] == [str(d) for d in range(10)]
    assert data.info["splits"]["train"]["args"] == {"split": "train"}
    x, y = _stack(data.test)
    assert y.tolist() == written["SVHN"]["test_y"].tolist()  # stored as 10, read as 0
    torch.testing.assert_close(x, torch.from_numpy(written["SVHN"]["test_x"]).float() / 255)


def test_imagenet_layout_gives_its_train_and_val_splits_and_first_synonyms(home):
    path, _ = home
    data = build_data("torchvision/ImageNet")
    info = data.info
    assert info["classes"] == [names[0] for names in IMAGENET_WNIDS.values()]
    assert set(info["splits"]) == {"train", "val"} and data.test is None
    assert (len(data.train), len(data.val)) == (12, 6)
    assert info["img_size"] == 224 and info["normalize"] == "imagenet"
    # Photos of varied sizes are prepared as torchvision's classic ImageNet preset does.
    reference = v2.Compose(
        [
            v2.Resize(256, antialias=True),
            v2.CenterCrop(224),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    raw = tvd.ImageNet(str(path / "data/ImageNet"), split="val")
    for i in range(len(raw)):
        image, label = raw[i]
        x, y = data.val[i]
        torch.testing.assert_close(x, reference(image).as_subclass(torch.Tensor))
        assert int(y) == label


def test_image_folder_of_imagenet_style_carves_validation_and_test(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    root = tmp_path / "photos"
    write_image_folder(root, ["cat", "dog"], 10, (48, 40))
    data = build_data(
        "torchvision/ImageFolder",
        root=str(root),
        img_size=32,
        val_fraction=0.2,
        test_fraction=0.2,
        augment="random_resized_crop",
    )
    assert data.info["classes"] == ["cat", "dog"]
    assert [len(data.train), len(data.val), len(data.test)] == [12, 4, 4]
    everything = sorted([*_positions(data.train), *_positions(data.val), *_positions(data.test)])
    assert everything == list(range(20))
    assert data.train[0][0].shape == data.val[0][0].shape == (3, 32, 32)
    assert data.info["preprocessing"]["crop_mode"] == "center"


def test_recipe_normalization_uses_the_training_split_statistics(home):
    _, written = home
    data = build_data("torchvision/CIFAR10", val_fraction=0.5)
    pixels = written["CIFAR10"]["train_x"][_positions(data.train)].astype(np.float64) / 255
    mean, std = pixels.mean((0, 2, 3)), pixels.std((0, 2, 3))
    spec = data.info["preprocessing"]
    np.testing.assert_allclose(spec["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(spec["std"], std, rtol=1e-6)
    x, _ = _stack(data.train)
    np.testing.assert_allclose(x.double().mean((0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(x.double().std((0, 2, 3), unbiased=False).numpy(), 1, atol=1e-5)
    # Images converted to grey are measured one by one, as the model sees them.
    grey = build_data("torchvision/CIFAR10", val_fraction=0.5, in_chans=1)
    converted = [
        np.asarray(Image.fromarray(img.transpose(1, 2, 0)).convert("L"), np.float64) / 255
        for img in written["CIFAR10"]["train_x"][_positions(grey.train)]
    ]
    np.testing.assert_allclose(grey.info["preprocessing"]["mean"], [np.mean(converted)], rtol=1e-6)
    assert grey.train[0][0].shape == (1, 32, 32)


def test_pad_crop_flip_crops_the_padded_normalized_image(home):
    data = build_data("torchvision/CIFAR10", augment="pad_crop_flip", pad=4)
    assert data.info["augment"] == "pad_crop_flip" and data.info["preprocessing"]["hflip"] == 0.5
    plain = data.val[0][0]  # no augmentation for held-out images
    position = int(_positions(data.val)[0])
    index = int(np.flatnonzero(_positions(data.val) == position)[0])
    assert torch.equal(data.val[index][0], plain)
    dataset = data.train.dataset
    normalized = data.val.transform(dataset[position][0])
    padded = torch.nn.functional.pad(normalized, (4, 4, 4, 4))  # zeros: the mean colour
    windows = {(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)}
    seen = set()
    torch.manual_seed(0)
    for _ in range(40):
        out = data.train.transform(dataset[position][0])
        match = [
            w
            for w in windows
            if torch.equal(
                (padded.flip(-1) if w[2] else padded)[:, w[0] : w[0] + 32, w[1] : w[1] + 32], out
            )
        ]
        assert match, "a training image is a 32x32 window of the padded (maybe flipped) image"
        seen.add(match[0])
    assert len(seen) > 10 and any(flip for _, _, flip in seen)


def test_card_transforms_prepare_images_as_the_weights_expect(home):
    path, _ = home
    data = build_data("torchvision/ImageNet", transforms="resnet50.tv2_in1k")
    reference = mz.transforms("resnet50.tv2_in1k")
    raw = tvd.ImageNet(str(path / "data/ImageNet"), split="val")
    torch.testing.assert_close(data.val[0][0], reference(raw[0][0]))
    spec = data.info["preprocessing"]
    assert (spec["img_size"], spec["resize_size"], spec["interpolation"]) == (224, 232, "bilinear")
    assert data.info["transforms"] == "resnet50.tv2_in1k" and data.info["augment"] is True
    assert data.train[0][0].shape == (3, 224, 224)
    with pytest.raises(ConfigError, match="transforms takes mean and std from the card"):
        build_data("torchvision/ImageNet", transforms="resnet50.tv2_in1k", normalize="none")
    with pytest.raises(ConfigError, match="the recipe's pretrained model"):
        build_data("torchvision/ImageNet", transforms="card")


def test_card_source_names_the_recipe_models_weights(tmp_path):
    assert tvb.card_source({"name": "resnet50.tv2_in1k"}) == "resnet50.tv2_in1k"
    assert tvb.card_source({"name": "resnet50", "pretrained": True}) == "resnet50"
    assert tvb.card_source({"name": "resnet50", "pretrained": "tv2_in1k"}) == "resnet50.tv2_in1k"
    assert tvb.card_source({"name": "resnet20", "pretrained": str(tmp_path)}) == str(tmp_path)
    assert tvb.card_source({"name": "timm/resnet18", "pretrained": True}) == "timm/resnet18"
    with pytest.raises(ConfigError, match="is not pretrained"):
        tvb.card_source({"name": "resnet50"})
    with pytest.raises(ConfigError, match="neither a weight set"):
        tvb.card_source({"name": "resnet50", "pretrained": "no_such_tag"})
    with pytest.raises(ConfigError, match="Hub repo"):
        tvb.card_source({"name": "hf-hub:org/repo"})


def test_split_args_name_the_splits_and_generic_classes_build(home):
    data = build_data(
        "torchvision/SVHN",
        split_args={"train": {"split": "test"}, "test": {"split": "train"}},
        val_fraction=0.0,
    )
    assert (len(data.train), len(data.test)) == (20, 30)
    with pytest.raises(ConfigError, match="sets download"):
        build_data("torchvision/SVHN", split_args={"train": {"download": True}})
    # A class with neither files nor splits: everything is carved from its one pool.
    fake = build_data(
        "torchvision/FakeData",
        size=50,
        image_size=(3, 16, 16),
        num_classes=4,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    assert [len(fake.train), len(fake.val), len(fake.test)] == [30, 10, 10]
    assert fake.info["num_classes"] == 4 and fake.info["img_size"] == 16
    assert fake.train[0][0].shape == (3, 16, 16) and fake.train[0][1].dtype == torch.int64


def test_bundle_records_how_to_rebuild_it(home):
    data = build_data("torchvision/CIFAR10", augment="pad_crop_flip", val_fraction=0.2)
    assert data.recipe == {
        "name": "torchvision/CIFAR10",
        "augment": "pad_crop_flip",
        "val_fraction": 0.2,
    }
    assert recipe_of(data.train) == data.recipe
    assert data.info["dataset_kwargs"] == {"augment": "pad_crop_flip", "val_fraction": 0.2}


# --- names, options, errors -------------------------------------------------------------------


def test_names_are_real_vision_dataset_classes():
    names = list_datasets()
    assert {"digits", "torchvision/CIFAR10", "torchvision/ImageNet"} <= set(names)
    assert names == sorted(names)
    assert "torchvision/DatasetFolder" not in names  # needs a Python loader function
    for bad, hint in [
        ("cifar10", "torchvision/CIFAR10"),
        ("../../etc", "no dataset class"),
        ("utils", "no dataset class"),  # a module of torchvision.datasets, not a class
        ("VisionDataset", "no dataset class"),  # the base class holds no data
        ("wrap_dataset_for_transforms_v2", "no dataset class"),
        ("__class__", "no dataset class"),
        ("DatasetFolder", "loader"),
    ]:
        with pytest.raises(ConfigError, match=hint):
            build_data(f"torchvision/{bad}")
    with pytest.raises(ConfigError, match=r"or torchvision/<name>"):
        build_data("torchvisoin/CIFAR10")


def test_options_include_each_class_own_arguments():
    cifar = dataset_kwargs("torchvision/CIFAR10")
    assert {"root", "download", "val_fraction", "augment", "normalize", "transforms"} <= cifar
    assert not {"train", "transform", "target_transform"} & cifar
    voc = dataset_kwargs("torchvision/VOCSegmentation")
    assert {"year", "image_set"} <= voc
    assert "split" in dataset_kwargs("torchvision/EMNIST")  # EMNIST's subset; train is ours
    with pytest.raises(ConfigError, match="unknown key"):
        build_data("torchvision/CIFAR10", year="2012")
    for options, message in [
        ({"val_fraction": 1.0}, "val_fraction=1.0 is out of range"),
        ({"augment": "mixup"}, "data.augment must be"),
        ({"normalize": "per_image"}, "data.normalize must be one of"),
        ({"mean": [0.5, 0.5, 0.5]}, "go together"),
        ({"in_chans": 2}, "1 \\(grey\\) or 3"),
    ]:
        with pytest.raises(ConfigError, match=message):
            build_data("torchvision/CIFAR10", **options)


@pytest.mark.parametrize(
    ("name", "folder", "files"),
    [
        ("CIFAR10", "CIFAR10/cifar-10-batches-py", ["data_batch_1", "test_batch", "batches.meta"]),
        ("CIFAR100", "CIFAR100/cifar-100-python", ["train", "test", "meta"]),
        ("MNIST", "MNIST/raw", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
        ("FashionMNIST", "FashionMNIST/raw", ["train-labels-idx1-ubyte"]),
        ("SVHN", "SVHN", ["train_32x32.mat", "test_32x32.mat"]),
    ],
)
def test_offline_error_names_each_file_and_where(tmp_path, monkeypatch, name, folder, files):
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    with pytest.raises(OfflineError, match="MODELZOO_OFFLINE=1 forbids downloading") as caught:
        build_data(f"torchvision/{name}")
    message = str(caught.value)
    assert str(tmp_path / "empty/data" / folder) in message
    assert all(f in message for f in files)
    assert "download=True" not in message  # torchvision's advice for its own API
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not (tmp_path / "empty").exists()  # offline: nothing was created


def test_imagenet_error_says_what_to_put_in_the_local_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="cannot download") as caught:
        build_data("torchvision/ImageNet")
    message = str(caught.value)
    root = tmp_path / "data/ImageNet"
    for part in ("ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_img_train.tar", "meta.bin"):
        assert f"{root}/{part}" in message
    assert f"{root}/train/<wnid>/*.JPEG" in message and "data.root" in message


def test_damaged_files_are_named(home):
    path, _ = home
    batch = path / "data/CIFAR10/cifar-10-batches-py/data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\0")
    with pytest.raises(ConfigError, match=r"data_batch_3 \(md5 [0-9a-f]{32}, torchvision"):
        build_data("torchvision/CIFAR10")
    # MNIST records no checksums: a file that is not IDX fails to parse, and says so.
    (path / "data/MNIST/raw/train-images-idx3-ubyte").write_bytes(b"<html>not found</html>")
    with pytest.raises(ConfigError, match=r"could not read its files .* damaged") as caught:
        build_data("torchvision/MNIST")
    assert caught.value.__cause__ is None


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_download_lands_in_modelzoo_home_data(tmp_path, monkeypatch):
    """CIFAR-10's archive, served from a loopback server, is fetched and extracted into
    MODELZOO_HOME/data/CIFAR10; later builds offline read it."""
    served = tmp_path / "served"
    written = write_cifar10(tmp_path / "source")
    served.mkdir()
    archive = tar_gz(tmp_path / "source/cifar-10-batches-py")
    (served / "cifar-10-python.tar.gz").write_bytes(archive)
    (served / "broken.tar.gz").write_bytes(b"not an archive")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        home = tmp_path / "home"
        monkeypatch.setenv("MODELZOO_HOME", str(home))
        monkeypatch.delenv("MODELZOO_OFFLINE", raising=False)
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        monkeypatch.setattr(tvd.CIFAR10, "url", f"{base}/cifar-10-python.tar.gz")
        monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
        source = tmp_path / "source/cifar-10-batches-py"
        lists = {
            attr: [[n, hashlib.md5((source / n).read_bytes()).hexdigest()] for n, _ in items]
            for attr, items in (
                ("train_list", tvd.CIFAR10.train_list),
                ("test_list", tvd.CIFAR10.test_list),
            )
        }
        for attr, value in lists.items():
            monkeypatch.setattr(tvd.CIFAR10, attr, value)
        meta = hashlib.md5((source / "batches.meta").read_bytes()).hexdigest()
        monkeypatch.setattr(tvd.CIFAR10, "meta", dict(tvd.CIFAR10.meta, md5=meta))

        data = build_data("torchvision/CIFAR10", normalize="none", val_fraction=0.0)
        assert (home / "data/CIFAR10/cifar-10-batches-py/data_batch_5").is_file()
        assert data.test.targets.tolist() == written["test_y"].tolist()
        monkeypatch.setenv("MODELZOO_OFFLINE", "1")
        again = build_data("torchvision/CIFAR10", normalize="none", val_fraction=0.0)
        assert len(again.train) == 60

        monkeypatch.delenv("MODELZOO_OFFLINE")
        monkeypatch.setattr(tvd.CIFAR10, "url", f"{base}/missing.tar.gz")
        with pytest.raises(OfflineError, match=r"could not download torchvision/CIFAR10.*404"):
            build_data("torchvision/CIFAR10", root=str(tmp_path / "elsewhere"))
    finally:
        server.shutdown()
        server.server_close()


# --- the He et al. 2016 recipes ---------------------------------------------------------------


def test_every_paper_recipe_is_here_and_states_the_papers_schedule():
    assert [p.name for p in RECIPES] == [
        "plain20_cifar10.yaml",
        "plain56_cifar10.yaml",
        "resnet110_cifar10.yaml",
        "resnet20_cifar10.yaml",
        "resnet56_cifar10.yaml",
    ]
    targets = {"resnet20": "8.75%", "resnet56": "6.97%", "resnet110": "6.43%"}
    for path in RECIPES:
        text = path.read_text()
        recipe = yaml.safe_load(text)
        model = recipe["model"]["name"]
        train, data = recipe["train"], recipe["data"]
        assert text.startswith(f"# modelzoo train configs/resnet/{path.name}\n")
        assert data["name"] == "torchvision/CIFAR10" and data["batch_size"] == 128
        assert (data["augment"], data["pad"]) == ("pad_crop_flip", 4)
        assert (train["optimizer"], train["lr"], train["momentum"]) == ("sgd", 0.1, 0.9)
        assert float(train["weight_decay"]) == 1e-4 and train["weight_decay_all"] is True
        assert train["max_steps"] == 64000 and train["milestones"] == [32000, 48000]
        assert train["scheduler"] == "multistep" and train["gamma"] == 0.1
        # epochs only bounds the run: 64k steps fit in it with or without a 45k/5k split.
        assert train["epochs"] * -(-45000 // 128) >= 64000
        assert targets.get(model, "Figure 6") in text
        assert "GPU" in text
        if model == "resnet110":
            assert (train["warmup_steps"], train["warmup_lr"]) == (400, 0.01)
        else:
            assert "warmup_steps" not in train


def test_recipe_time_estimates_are_the_measured_ones():
    """Each header's "# Time:" comment is written from benchmarks/cifar_recipe_time.json by
    scripts/cifar_recipe_time.py; --check re-derives it from that file."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/cifar_recipe_time.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads((ROOT / "benchmarks/cifar_recipe_time.json").read_text())
    seconds = {k: v["cpu_seconds_per_step"] for k, v in measured["recipes"].items()}
    # Deeper nets cost more per step: the figures are measurements of these recipes.
    assert seconds["resnet20_cifar10"] < seconds["resnet56_cifar10"] < seconds["resnet110_cifar10"]


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_dry_runs_on_the_stand_ins(path, tmp_path, monkeypatch, one_thread):
    install(tmp_path / "home", monkeypatch, cifar_per_batch=4)  # 20 training images
    run = tmp_path / "run"
    code = cli_main(
        [
            "train",
            str(path),
            "train.dry_run=true",
            "train.plots=false",
            "train.tensorboard=false",
            "--run-dir",
            str(run),
        ]
    )
    assert code == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,") and len(rows) >= 2
    lr = float(rows[1].split(",")[rows[0].split(",").index("lr")])
    assert lr == (0.01 if path.stem == "resnet110_cifar10" else 0.1)
    assert set(json.loads((run / "test_metrics.json").read_text())) >= {"accuracy", "loss"}
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["name"] == "torchvision/CIFAR10"
