"""Anchor cards: the published ImageNet weights that the zoo's own architectures load.

They tie the zoo to numbers the community knows: a ResNet-50 built here with
``tv2_in1k`` weights, fed what ``modelzoo.transforms("resnet50.tv2_in1k")`` makes of
an image, must score what torchvision says it scores.

Every native architecture for which torchvision or timm publishes ImageNet-1k weights
that load into it unchanged has a card for each such weight set:

- ``resnet18/34/50/101/152`` and ``vgg11/13/16/19`` with their ``_bn`` variants: torchvision's
  ``IMAGENET1K_V1`` as ``tv_in1k`` and, for resnet50/101/152, ``IMAGENET1K_V2`` as
  ``tv2_in1k`` (the tag names timm gives the same files). torchvision's ``DEFAULT`` is the
  default set.
- ``vit_tiny_patch16_224``, ``vit_small_patch16_224``, ``vit_base_patch16_224``: every tag timm
  publishes with a 1000-class ImageNet head at 224 (timm's first-listed tag is the default).

Left out, and why:

- ``vgg16`` ``IMAGENET1K_FEATURES`` (``vgg16_features-amdegroot-88682ab5.pth``): its keys and
  shapes fit the native ``vgg16``, but torchvision documents that the ``classifier`` module
  holds no valid values (NaN), publishes no categories and no accuracy for it. Loaded into
  the native model it gives NaN logits, and fine-tuning it would re-initialize only the last
  Linear and keep the NaN ``fc6``/``fc7``; the zoo's loader cannot take the ``features`` part
  alone, so no card is offered.
- ``*.augreg_in21k`` (tiny, small, base) and ``vit_base_patch16_224.bamboo``: heads of 21,843
  and 115,217 classes, not ImageNet-1k.
- ``vit_small_patch16_224.dino``, ``vit_base_patch16_224.dino``, ``.mae``, ``.orig_in21k``: no
  classifier head at all (timm's ``num_classes=0``): backbones, not ImageNet classifiers.
- timm's own recipes for ResNets (``resnet50.a1_in1k`` ...) are timm's weights, not
  torchvision's; they are outside this list.

Every kept tag was checked at development time to load exactly: the timm model built for the
tag (``timm.create_model(arch, num_classes=cfg.num_classes)`` on the meta device) has the
same state-dict keys and shapes as the native model; ``tests/weights/test_published_cards.py``
re-checks it.

Where the values come from (copied on 2026-11-30; neither library is imported to read a card):

- torchvision 0.29.1: ``get_model_weights(arch)[TAG]`` — ``.url`` (file name and the 8-digit
  sha256 prefix in it), ``.meta["num_params"]``, ``.meta["_metrics"]["ImageNet-1K"]`` (acc@1,
  acc@5, stored as ``top1``/``top5`` in percent), ``.meta["recipe"]``, and ``.transforms()``
  (resize 256 or 232, crop 224, bilinear, ImageNet mean/std).
- timm 1.0.31: ``timm.models.get_pretrained_cfg(f"{arch}.{tag}")`` — hub id, license,
  ``input_size``, ``crop_pct``, ``crop_mode``, ``interpolation``, ``mean``, ``std``; metrics
  from ``results/results-imagenet.csv`` of github.com/huggingface/pytorch-image-models at
  commit 4e5207c7bb65 (its last change, 2025-10-30; the row at img_size 224); parameter
  counts from the native model, which equals timm's.
- Class names: ``imagenet_classes.txt`` next to this module, torchvision's
  ``meta["categories"]`` (the order of the classifier's outputs), shared by every card here
  through ``input_spec["labels"] = "imagenet-1k"``.

Preprocessing (``input_spec``): ``img_size`` is the center crop, ``resize_size`` the shorter
side before it (torchvision's ``resize_size``), ``crop_pct`` timm's ratio of the two
(``resize_size == floor(img_size / crop_pct)``), then ``interpolation``, ``mean`` and ``std``.
``modelzoo.transforms(card)`` builds exactly that pipeline.

Hashes: torchvision publishes only the first 8 hex digits of each file's sha256,
in the file name (``resnet18-f37072fd.pth``), so only that prefix is checked,
as ``torch.hub`` does. Hugging Face does not publish a digest for timm's
``model.safetensors`` files outside the hub API, so those cards carry no hash:
``fetch`` refuses to download them unless ``MODELZOO_ALLOW_UNVERIFIED=1`` (or
the file is put into ``MODELZOO_WEIGHTS_DIR`` by hand). After the first
download the cache records the digest it got and checks the file against it
from then on. File sizes are not published exactly by either library (0: unknown).
"""

from __future__ import annotations

from modelzoo.weights.card import WeightFile, WeightSet

__all__ = ["published_weight_sets", "IMAGENET_LABELS"]

IMAGENET_LABELS = "imagenet-1k"  # a key of modelzoo.weights.card.LABEL_SETS

_TV_URL = "https://download.pytorch.org/models/"
_HF_URL = "https://huggingface.co/timm/{hub_id}/resolve/main/model.safetensors"

_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]
_INCEPTION_MEAN = [0.5, 0.5, 0.5]  # timm's ViT weights (JAX origin) scale to [-1, 1]
_INCEPTION_STD = [0.5, 0.5, 0.5]

_TV_REFERENCES = "https://github.com/pytorch/vision/tree/main/references/classification"
_TV_RESNET_V1 = _TV_REFERENCES + "#resnet"
_TV_VGG = _TV_REFERENCES + "#alexnet-and-vgg"
_TV_RESNET50_V2 = "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621"
_TV_RESNET_V2 = "https://github.com/pytorch/vision/issues/3995#new-recipe"

# torchvision: (arch, tag, file name, num_params, acc@1, acc@5, resize_size, recipe, default).
# resize_size 256 with the 224 crop is timm's crop_pct 0.875; 232 (the V2 recipe) is 0.965.
_TORCHVISION = (
    ("resnet18", "tv_in1k", "resnet18-f37072fd.pth", 11_689_512, 69.758, 89.078, 256,
     _TV_RESNET_V1, True),
    ("resnet34", "tv_in1k", "resnet34-b627a593.pth", 21_797_672, 73.314, 91.42, 256,
     _TV_RESNET_V1, True),
    ("resnet50", "tv_in1k", "resnet50-0676ba61.pth", 25_557_032, 76.13, 92.862, 256,
     _TV_RESNET_V1, False),
    ("resnet50", "tv2_in1k", "resnet50-11ad3fa6.pth", 25_557_032, 80.858, 95.434, 232,
     _TV_RESNET50_V2, True),
    ("resnet101", "tv_in1k", "resnet101-63fe2227.pth", 44_549_160, 77.374, 93.546, 256,
     _TV_RESNET_V1, False),
    ("resnet101", "tv2_in1k", "resnet101-cd907fc2.pth", 44_549_160, 81.886, 95.78, 232,
     _TV_RESNET_V2, True),
    ("resnet152", "tv_in1k", "resnet152-394f9c45.pth", 60_192_808, 78.312, 94.046, 256,
     _TV_RESNET_V1, False),
    ("resnet152", "tv2_in1k", "resnet152-f82ba261.pth", 60_192_808, 82.284, 96.002, 232,
     _TV_RESNET_V2, True),
    ("vgg11", "tv_in1k", "vgg11-8a719046.pth", 132_863_336, 69.02, 88.628, 256, _TV_VGG, True),
    ("vgg11_bn", "tv_in1k", "vgg11_bn-6002323d.pth", 132_868_840, 70.37, 89.81, 256,
     _TV_VGG, True),
    ("vgg13", "tv_in1k", "vgg13-19584684.pth", 133_047_848, 69.928, 89.246, 256,
     _TV_VGG, True),
    ("vgg13_bn", "tv_in1k", "vgg13_bn-abd245e5.pth", 133_053_736, 71.586, 90.374, 256,
     _TV_VGG, True),
    ("vgg16", "tv_in1k", "vgg16-397923af.pth", 138_357_544, 71.592, 90.382, 256,
     _TV_VGG, True),
    ("vgg16_bn", "tv_in1k", "vgg16_bn-6c64b313.pth", 138_365_992, 73.36, 91.516, 256,
     _TV_VGG, True),
    ("vgg19", "tv_in1k", "vgg19-dcbb9e9d.pth", 143_667_240, 72.376, 90.876, 256,
     _TV_VGG, True),
    ("vgg19_bn", "tv_in1k", "vgg19_bn-c79401a0.pth", 143_678_248, 74.218, 91.842, 256,
     _TV_VGG, True),
)  # fmt: skip

_AUGREG = "https://arxiv.org/abs/2106.10270"
_VIT_PARAMS = {
    "vit_tiny_patch16_224": 5_717_416,
    "vit_small_patch16_224": 22_050_664,
    "vit_base_patch16_224": 86_567_656,
}
# The weights each tag names, for people (from timm's notes on its default_cfgs).
_VIT_TAGS = {
    "augreg_in21k_ft_in1k": (
        _AUGREG,
        "AugReg ('How to train your ViT', Steiner et al., 2021): pretrained on ImageNet-21k, "
        "fine-tuned on ImageNet-1k at 224.",
    ),
    "augreg2_in21k_ft_in1k": (
        "https://huggingface.co/timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
        "The AugReg ImageNet-21k weights fine-tuned on ImageNet-1k a second time, by timm "
        "(its notes: 're-finetuned augreg 21k FT on in1k weights').",
    ),
    "augreg_in1k": (
        _AUGREG,
        "AugReg ('How to train your ViT', Steiner et al., 2021): trained on ImageNet-1k only.",
    ),
    "orig_in21k_ft_in1k": (
        "https://arxiv.org/abs/2010.11929",
        "The original ViT weights (Dosovitskiy et al., 2020) from Google's JAX release: "
        "pretrained on ImageNet-21k, fine-tuned on ImageNet-1k.",
    ),
    "sam_in1k": (
        "https://arxiv.org/abs/2106.01548",
        "Trained on ImageNet-1k with sharpness-aware minimization and no strong "
        "augmentation (Chen et al., 2021).",
    ),
}
# timm: (arch, tag, top1, top5, default); all at 224, crop_pct 0.9, bicubic, mean/std 0.5.
_TIMM_VIT = (
    ("vit_tiny_patch16_224", "augreg_in21k_ft_in1k", 75.452, 92.858, True),
    ("vit_small_patch16_224", "augreg_in21k_ft_in1k", 81.402, 96.150, True),
    ("vit_small_patch16_224", "augreg_in1k", 78.842, 94.280, False),
    ("vit_base_patch16_224", "augreg2_in21k_ft_in1k", 85.108, 97.530, True),
    ("vit_base_patch16_224", "augreg_in21k_ft_in1k", 84.534, 97.300, False),
    ("vit_base_patch16_224", "orig_in21k_ft_in1k", 81.782, 96.122, False),
    ("vit_base_patch16_224", "augreg_in1k", 79.154, 94.108, False),
    ("vit_base_patch16_224", "sam_in1k", 80.246, 94.764, False),
)


def _input_spec(
    *,
    resize_size: int,
    crop_pct: float,
    interpolation: str,
    mean: list[float],
    std: list[float],
) -> dict:
    return {
        "img_size": 224,
        "in_chans": 3,
        "resize_size": resize_size,
        "crop_pct": crop_pct,
        "crop_mode": "center",
        "interpolation": interpolation,
        "mean": list(mean),
        "std": list(std),
        "labels": IMAGENET_LABELS,
    }


def _tv_set(
    arch: str,
    tag: str,
    file_name: str,
    num_params: int,
    top1: float,
    top5: float,
    resize_size: int,
    recipe: str,
    default: bool,
) -> WeightSet:
    prefix = file_name.rsplit("-", 1)[1].split(".")[0]  # torch.hub's name-<sha256 prefix>.pth
    version = "IMAGENET1K_V2, the improved recipe" if tag == "tv2_in1k" else "IMAGENET1K_V1"
    return WeightSet(
        arch=arch,
        tag=tag,
        files=(WeightFile(name=file_name, size=0, sha256=prefix, urls=(_TV_URL + file_name,)),),
        model_kwargs={"num_classes": 1000},
        metrics={"imagenet-1k": {"top1": top1, "top5": top5}},
        license="bsd-3-clause",
        recipe=recipe,
        input_spec=_input_spec(
            resize_size=resize_size,
            crop_pct={256: 0.875, 232: 0.965}[resize_size],
            interpolation="bilinear",
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
        ),
        source_format="pytorch",
        num_params=num_params,
        default=default,
        description=f"torchvision {version}. Metrics (acc@1, acc@5 on the ImageNet-1k "
        "validation set) as published by torchvision; only the published 8-digit sha256 "
        "prefix of the file is verified.",
    )


def _timm_vit_set(arch: str, tag: str, top1: float, top5: float, default: bool) -> WeightSet:
    hub_id = f"{arch}.{tag}"
    recipe, about = _VIT_TAGS[tag]
    return WeightSet(
        arch=arch,
        tag=tag,
        files=(
            WeightFile(
                name=f"{hub_id}.safetensors",
                size=0,
                sha256="",
                urls=(_HF_URL.format(hub_id=hub_id),),
            ),
        ),
        model_kwargs={"num_classes": 1000},
        metrics={"imagenet-1k": {"top1": top1, "top5": top5}},
        license="apache-2.0",
        recipe=recipe,
        input_spec=_input_spec(
            resize_size=248,
            crop_pct=0.9,
            interpolation="bicubic",
            mean=_INCEPTION_MEAN,
            std=_INCEPTION_STD,
        ),
        source_format="safetensors",
        num_params=_VIT_PARAMS[arch],
        default=default,
        description=f"timm's {tag} weights from the Hugging Face hub. {about} Metrics from "
        "timm's results-imagenet.csv. No sha256 is published for this file: downloading it "
        "needs MODELZOO_ALLOW_UNVERIFIED=1, after which the cache pins the digest it received.",
    )


def published_weight_sets() -> list[WeightSet]:
    """The published weight sets the zoo's ImageNet architectures load."""
    return [_tv_set(*row) for row in _TORCHVISION] + [_timm_vit_set(*row) for row in _TIMM_VIT]
