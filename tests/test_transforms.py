"""Preprocessing from the card: parity with torchvision's and timm's own pipelines, the zoo's
own weights, training augmentation, and every form of name a user passes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import create_transform, resolve_data_config
from timm.models import get_pretrained_cfg
from torchvision.models import get_model_weights

import modelzoo as mz
from modelzoo.errors import ConfigError, WeightsError
from modelzoo.transforms import pretrained_cfg, resolve_pretrained_cfg, transforms
from modelzoo.weights.published import published_weight_sets

TORCHVISION_TAGS = {"tv_in1k": "IMAGENET1K_V1", "tv2_in1k": "IMAGENET1K_V2"}
PUBLISHED = published_weight_sets()
TV_CARDS = [ws for ws in PUBLISHED if ws.tag in TORCHVISION_TAGS]
TIMM_CARDS = [ws for ws in PUBLISHED if ws.tag not in TORCHVISION_TAGS]
# (height, width): landscape, portrait, square at the crop size, smaller than the crop, tall.
SIZES = [(300, 400), (500, 333), (224, 224), (97, 181), (640, 120)]
TOL = 1e-5


def _images(seed: int = 0) -> list[torch.Tensor]:
    """uint8 (3, H, W) images: smooth gradients plus noise, so every resample filter matters."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for h, w in SIZES:
        ys = torch.linspace(0, 1, h).view(h, 1)
        xs = torch.linspace(0, 1, w).view(1, w)
        base = torch.stack([ys * xs, ys.expand(h, w), xs.expand(h, w)]) * 200
        noise = torch.randint(0, 56, (3, h, w), generator=g)
        out.append((base + noise).clamp(0, 255).to(torch.uint8))
    return out


def _pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def _assert_close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert type(ours) is torch.Tensor and ours.dtype == torch.float32
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= TOL


def test_the_published_cards_cover_both_libraries():
    assert len(TV_CARDS) == 16 and len(TIMM_CARDS) == 8


@pytest.mark.parametrize("ws", TV_CARDS, ids=lambda ws: ws.name)
def test_equals_torchvision_weights_transforms(ws):
    theirs = get_model_weights(ws.arch)[TORCHVISION_TAGS[ws.tag]].transforms()
    ours = transforms(ws.name)
    images = _images()
    for image in images:
        _assert_close(ours(_pil(image)), theirs(_pil(image)))  # PIL
        _assert_close(ours(image), theirs(image))  # uint8 tensor
        as_float = image.float() / 255
        _assert_close(ours(as_float), theirs(as_float))  # float tensor
    batch = torch.stack([img[:, :200, :180] for img in images[:3]])  # (B, C, H, W) uint8
    _assert_close(ours(batch), theirs(batch))


@pytest.mark.parametrize("ws", TIMM_CARDS, ids=lambda ws: ws.name)
def test_equals_timm_create_transform(ws):
    cfg = get_pretrained_cfg(ws.name).to_dict()
    theirs = create_transform(**resolve_data_config({}, pretrained_cfg=cfg))
    ours = transforms(ws.name)
    for image in _images(seed=1):
        _assert_close(ours(_pil(image)), theirs(_pil(image)))
        # timm's pipeline takes float tensors (its ToTensor passes tensors through unscaled)
        as_float = image.float() / 255
        _assert_close(ours(as_float), theirs(as_float))


@pytest.mark.parametrize("ws", TIMM_CARDS[:1] + TV_CARDS[:1], ids=lambda ws: ws.name)
def test_timm_reads_the_zoo_models_pretrained_cfg(ws):
    """A model carrying the card's pretrained_cfg is prepared by timm exactly as by the zoo."""
    with torch.device("meta"):
        model = mz.create(ws.arch)
    model.pretrained_cfg = pretrained_cfg(ws)
    theirs = create_transform(**resolve_data_config({}, model=model))
    ours = transforms(model)
    image = _pil(_images()[0])
    _assert_close(ours(image), theirs(image))


def test_default_weight_set_and_arch_name_agree():
    image = _pil(_images()[1])
    default = mz.model_card("resnet50").weights[0]
    assert default.tag == "tv2_in1k"
    _assert_close(transforms("resnet50")(image), transforms("resnet50.tv2_in1k")(image))
    assert transforms("resnet50.tv_in1k")(image).shape == (3, 224, 224)


def test_digits_pipeline_reproduces_the_training_data():
    """resnet20.digits: grey 16x16 in [0, 1], the same values the digits dataset gave the model."""
    from modelzoo.data.digits import load_digits_arrays

    images, _ = load_digits_arrays()
    x = torch.from_numpy(images[:32]).unsqueeze(1)  # (32, 1, 8, 8) in [0, 1]
    seen = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    preprocess = transforms("resnet20.digits")
    _assert_close(preprocess(x), seen)  # a float batch
    # A PNG of the digit (uint8, saved as a user would) gives the same up to 8-bit rounding.
    png = Image.fromarray((images[0] * 255).round().astype(np.uint8))
    from_png = preprocess(png.convert("RGB"))
    assert from_png.shape == (1, 16, 16)
    assert (from_png - seen[0]).abs().max().item() < 0.01


def test_flat_models_get_vectors_and_value_ranges_fold_into_mean_std():
    x = torch.randint(0, 256, (4, 3, 40, 30), dtype=torch.uint8)
    assert transforms("mlp.digits")(x).shape == (4, 64)
    cfg = resolve_pretrained_cfg("dcgan.digits")  # trained on values in [-1, 1]
    assert cfg["mean"] == (0.5,) and cfg["std"] == (0.5,)
    out = transforms("dcgan.digits")(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    assert out.min().item() == -1.0 and out.max().item() == 1.0


def test_training_augmentation_at_the_cards_input_size():
    image = _pil(_images()[0])
    augment = transforms("resnet50.tv2_in1k", train=True)
    torch.manual_seed(0)
    outs = [augment(image) for _ in range(4)]
    assert all(o.shape == (3, 224, 224) for o in outs)
    assert not torch.equal(outs[0], outs[1])  # random crops
    names = [type(t).__name__ for t in augment.transforms]
    assert "RandomResizedCrop" in names and "RandomHorizontalFlip" in names
    # A mirrored digit is another glyph: the digits cards do not flip.
    digits = transforms("resnet20.digits", train=True)
    assert "RandomHorizontalFlip" not in [type(t).__name__ for t in digits.transforms]
    assert digits(image).shape == (1, 16, 16)
    assert "RandomHorizontalFlip" in [
        type(t).__name__ for t in transforms("resnet20.digits", train=True, hflip=0.5).transforms
    ]


def test_overrides_keep_the_cards_crop_ratio():
    image = _pil(_images()[0])
    out = transforms("resnet50.tv_in1k", img_size=160)(image)
    assert out.shape == (3, 160, 160)
    grey = transforms("resnet50.tv_in1k", in_chans=1)
    assert grey(image).shape == (1, 224, 224)
    cfg = resolve_pretrained_cfg("resnet50.tv_in1k")
    assert cfg["crop_pct"] == 0.875 and cfg["resize_size"] == 256


def test_models_carry_their_card():
    model = mz.create("resnet20.digits")  # loads the shipped weights: its load report names them
    image = torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8)
    _assert_close(transforms(model)(image), transforms("resnet20.digits")(image))
    model.pretrained_cfg = resolve_pretrained_cfg("resnet20.digits_0to4")  # wins when present
    assert transforms(model)(image).shape == (1, 16, 16)
    features = mz.create("resnet20.digits", features_only=True)
    assert transforms(features)(image).shape == (1, 16, 16)
    with pytest.raises(ConfigError, match=r"not built from a weight set.*transforms\('resnet20"):
        transforms(mz.create("resnet20", num_classes=10))


def test_a_folder_records_its_preprocessing(tmp_path):
    model = mz.create("resnet20", num_classes=3, in_chans=1)
    mz.save_pretrained(model, tmp_path / "m")
    with pytest.raises(ConfigError, match="records no preprocessing"):
        transforms(tmp_path / "m")
    card = {"input_spec": {"img_size": 16, "in_chans": 1, "labels": ["a", "b", "c"]}}
    (tmp_path / "m" / "model_card.json").write_text(json.dumps(card))
    cfg = resolve_pretrained_cfg(str(tmp_path / "m"))
    assert cfg["input_size"] == (1, 16, 16) and cfg["label_names"] == ("a", "b", "c")
    image = torch.zeros(3, 30, 30, dtype=torch.uint8)
    assert transforms(tmp_path / "m")(image).shape == (1, 16, 16)


def test_cards_without_images_and_unknown_names_are_refused_clearly():
    with pytest.raises(ConfigError, match="describes no image input"):
        transforms("gpt_nano.stdlib")
    with pytest.raises(WeightsError, match="Did you mean: .*resnet50.tv2_in1k"):
        transforms("resnet50.tv3_in1k")
    with pytest.raises(ConfigError, match="takes a weight-set name"):
        transforms(42)


def test_bridge_names_read_the_installed_libraries():
    image = _pil(_images()[2])
    theirs = get_model_weights("resnet50")["IMAGENET1K_V2"].transforms()
    _assert_close(transforms("torchvision/resnet50.IMAGENET1K_V2")(image), theirs(image))
    cfg = get_pretrained_cfg("resnet50.a1_in1k").to_dict()
    timm_theirs = create_transform(**resolve_data_config({}, pretrained_cfg=cfg))
    _assert_close(transforms("timm/resnet50.a1_in1k")(image), timm_theirs(image))


def _class_folder(root, sizes=((200, 300), (260, 180), (224, 224), (120, 90))):
    """Two classes of JPEGs (height, width) with gradients, so every crop differs."""
    for k, name in enumerate(("red", "blue")):
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            image = _images(seed=k)[0][:, :h, :w]
            image[2 * k] = 230  # the class's colour channel
            _pil(image.contiguous()).save(root / name / f"{i}.jpg", quality=95)


def test_image_folder_prepares_images_with_the_weights_pipeline(tmp_path):
    from modelzoo.data import build_data

    _class_folder(tmp_path / "imgs")
    data = build_data(
        "image_folder", root=str(tmp_path / "imgs"), weights="resnet50.tv2_in1k", val_fraction=0.25
    )
    assert (data.info["img_size"], data.info["in_chans"]) == (224, 3)
    evaluate = transforms("resnet50.tv2_in1k")
    for i in range(len(data.val)):
        image, label = data.val[i]
        path = data.val.samples[i][0]
        _assert_close(image, evaluate(Image.open(path)))  # the card's evaluation pipeline
    torch.manual_seed(0)
    first = data.train[0][0]
    assert first.shape == (3, 224, 224) and not torch.equal(first, data.train[0][0])  # augmented
    # The recorded facts give the same pipeline back (what a fine-tuned model's card keeps).
    recorded = transforms(data.info["preprocessing"])
    path = data.val.samples[0][0]
    _assert_close(recorded(Image.open(path)), evaluate(Image.open(path)))


def test_image_folder_options_override_the_card(tmp_path):
    from modelzoo.data import build_data

    _class_folder(tmp_path / "imgs")
    root = str(tmp_path / "imgs")
    small = build_data("image_folder", root=root, weights="resnet50", img_size=96, augment=False)
    assert small.train[0][0].shape == (3, 96, 96) and small.info["preprocessing"]["img_size"] == 96
    assert torch.equal(small.train[0][0], small.train[0][0])  # augment=False: deterministic
    digits = build_data("image_folder", root=root, weights="resnet20.digits")
    assert digits.train[0][0].shape == (1, 16, 16)  # the zoo's card: grey, resized whole
    assert torch.equal(digits.train[0][0], digits.train[0][0])  # trained without augmentation
    plain = build_data("image_folder", root=root)  # no weights: as before, 32x32 in [0, 1]
    assert plain.train[0][0].shape == (3, 32, 32) and "preprocessing" not in plain.info
    with pytest.raises(ConfigError, match="augment=true needs weights"):
        build_data("image_folder", root=root, augment=True)
    with pytest.raises(ConfigError, match="take no images"):
        build_data("image_folder", root=root, weights="gpt_nano.stdlib")
