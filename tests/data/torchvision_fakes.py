"""Small stand-ins of torchvision's datasets, written in their real on-disk formats.

Each writer lays its files out exactly where and how torchvision's class reads them
(the CIFAR python pickles with their meta file, MNIST's IDX files, SVHN's MATLAB file,
ImageNet's ``meta.bin`` and class folders), with images whose pixels encode their
label, so a test can check that an image reached the right label. torchvision checks
the md5 of the CIFAR and SVHN files against the originals: :func:`accept_checksums`
replaces its records with those of the written files (as a monkeypatch), so everything
else torchvision does on load still runs.

``install(home, monkeypatch)`` writes every stand-in under ``home/data`` (the layout of
``MODELZOO_HOME``) and points ``MODELZOO_HOME`` there, with ``MODELZOO_OFFLINE=1``.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def label_images(labels: np.ndarray, size: int, chans: int, seed: int) -> np.ndarray:
    """uint8 (N, C, H, W) images whose top-left pixel is 20 * label (noise elsewhere)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (len(labels), chans, size, size), dtype=np.uint8)
    images[:, :, 0, 0] = (20 * labels).astype(np.uint8)[:, None]
    return images


def _labels(n: int, classes: int, seed: int, offset: int = 0) -> np.ndarray:
    """``n`` labels cycling through the classes from ``offset``, in a seeded order (every
    class appears once there are enough, which a stratified split needs)."""
    return np.random.default_rng(seed).permutation(np.arange(offset, offset + n) % classes)


def _pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(root: Path, per_batch: int = 12, test: int = 20) -> dict[str, np.ndarray]:
    """``root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``.

    Returns the images (N, 3, 32, 32) and labels of the train and test splits in order.
    """
    folder = root / "cifar-10-batches-py"
    out: dict[str, np.ndarray] = {}
    train_x, train_y = [], []
    for i in range(1, 6):
        y = _labels(per_batch, 10, seed=i, offset=(i - 1) * per_batch)
        x = label_images(y, 32, 3, seed=i)
        _pickle(
            folder / f"data_batch_{i}",
            {
                "batch_label": f"training batch {i} of 5",
                "labels": [int(v) for v in y],
                "data": x.reshape(len(y), -1),  # (N, 3072): the R, G, B planes, row-major
                "filenames": [f"img_{i}_{j}.png" for j in range(len(y))],
            },
        )
        train_x.append(x)
        train_y.append(y)
    y = _labels(test, 10, seed=9)
    x = label_images(y, 32, 3, seed=9)
    _pickle(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": [int(v) for v in y],
            "data": x.reshape(len(y), -1),
        },
    )
    _pickle(
        folder / "batches.meta",
        {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072},
    )
    out["train_x"], out["train_y"] = np.concatenate(train_x), np.concatenate(train_y)
    out["test_x"], out["test_y"] = x, y
    return out


def write_cifar100(root: Path, train: int = 200, test: int = 100) -> dict[str, np.ndarray]:
    """``root/cifar-100-python/{train, test, meta}`` with fine and coarse labels."""
    folder = root / "cifar-100-python"
    out: dict[str, np.ndarray] = {}
    for split, n, seed in (("train", train, 1), ("test", test, 2)):
        y = _labels(n, 100, seed)
        x = label_images(y % 12, 32, 3, seed)
        _pickle(
            folder / split,
            {
                "filenames": [f"{split}_{j}.png" for j in range(n)],
                "batch_label": split,
                "fine_labels": [int(v) for v in y],
                "coarse_labels": [int(v) // 5 for v in y],
                "data": x.reshape(n, -1),
            },
        )
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    _pickle(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)],
        },
    )
    return out


def _idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: zero, zero, type 0x08 (unsigned byte), ndim; big-endian sizes; the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(data_root: Path, cls_name: str = "MNIST", train: int = 30, test: int = 20) -> dict:
    """``data_root/<cls_name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (raw IDX)."""
    raw = data_root / cls_name / "raw"
    out = {}
    for prefix, n, seed in (("train", train, 3), ("t10k", test, 4)):
        y = _labels(n, 10, seed)
        x = label_images(y, 28, 1, seed)[:, 0]  # (N, 28, 28)
        _idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", y)
        out[f"{prefix}_x"], out[f"{prefix}_y"] = x, y
    return out


def write_svhn(root: Path, train: int = 30, test: int = 20) -> dict:
    """``root/{train,test}_32x32.mat``: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", train, 5), ("test", test, 6)):
        y = _labels(n, 10, seed)
        x = label_images(y, 32, 3, seed)  # (N, 3, H, W)
        stored = np.where(y == 0, 10, y).astype(np.uint8)[:, None]
        savemat(root / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": stored})
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


IMAGENET_WNIDS = {
    "n01440764": ("tench", "Tinca tinca"),
    "n01443537": ("goldfish", "Carassius auratus"),
    "n01484850": ("great white shark", "white shark"),
}


def write_image_folder(
    root: Path, classes: list[str], per_class: int, size: tuple[int, int]
) -> None:
    """``root/<class>/<i>.JPEG`` images of varied sizes around ``size`` (width, height)."""
    rng = np.random.default_rng(7)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = size[0] + 7 * i, size[1] + 3 * (i % 2)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            pixels[..., 0] = 40 * c
            Image.fromarray(pixels).save(folder / f"{name}_{i}.JPEG", quality=95)


def write_imagenet(root: Path, per_class: int = 4) -> None:
    """The layout torchvision's ImageNet uses once it has extracted the archives:
    ``root/meta.bin`` (torch.save of (wnid -> names, val wnids)), ``root/{train,val}/<wnid>/``."""
    root.mkdir(parents=True, exist_ok=True)
    wnids = list(IMAGENET_WNIDS)
    val_wnids = [w for w in wnids for _ in range(2)]
    torch.save((dict(IMAGENET_WNIDS), val_wnids), root / "meta.bin")
    write_image_folder(root / "train", wnids, per_class, (40, 30))
    write_image_folder(root / "val", wnids, 2, (36, 44))


def accept_checksums(monkeypatch: pytest.MonkeyPatch, data: Path) -> None:
    """Make torchvision's CIFAR and SVHN classes accept the stand-ins under ``data/<Class>``."""
    import torchvision.datasets as tvd

    for cls in (tvd.CIFAR10, tvd.CIFAR100):
        folder = data / cls.__name__ / cls.base_folder
        if not folder.is_dir():
            continue
        for attr in ("train_list", "test_list"):
            listed = [[name, _md5(folder / name)] for name, _ in getattr(cls, attr)]
            monkeypatch.setattr(cls, attr, listed)
        meta = dict(cls.meta, md5=_md5(folder / cls.meta["filename"]))
        monkeypatch.setattr(cls, "meta", meta)
    svhn = data / "SVHN"
    if svhn.is_dir():
        table = {
            split: [url, name, _md5(svhn / name) if (svhn / name).is_file() else md5]
            for split, (url, name, md5) in tvd.SVHN.split_list.items()
        }
        monkeypatch.setattr(tvd.SVHN, "split_list", table)


def tar_gz(folder: Path) -> bytes:
    """``folder`` as a .tar.gz archive holding ``<folder name>/...`` (CIFAR's download)."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    return buffer.getvalue()


def install(
    home: Path, monkeypatch: pytest.MonkeyPatch, cifar_per_batch: int = 12
) -> dict[str, dict]:
    """Every stand-in under ``home/data``; ``MODELZOO_HOME=home`` and ``MODELZOO_OFFLINE=1``.

    Args:
        cifar_per_batch: images per CIFAR-10 training batch (five batches).
    """
    data = home / "data"
    written = {
        "CIFAR10": write_cifar10(data / "CIFAR10", per_batch=cifar_per_batch),
        "CIFAR100": write_cifar100(data / "CIFAR100"),
        "MNIST": write_mnist(data, "MNIST"),
        "FashionMNIST": write_mnist(data, "FashionMNIST"),
        "SVHN": write_svhn(data / "SVHN"),
    }
    write_imagenet(data / "ImageNet")
    accept_checksums(monkeypatch, data)
    monkeypatch.setenv("MODELZOO_HOME", str(home))
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    return written
