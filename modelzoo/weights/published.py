"""Anchor cards: published ImageNet weights that the zoo's architectures load.

They tie the zoo to numbers the community knows: a ResNet-50 built here with
``tv2_in1k`` weights must score what torchvision says it scores.

The values were copied at development time from torchvision 0.29
(``ResNet18_Weights.IMAGENET1K_V1.url`` and ``.meta``) and timm 1.0
(``get_pretrained_cfg(...)``, metrics from timm's ``results/results-imagenet.csv``);
neither package is imported to read them.

Hashes: torchvision publishes only the first 8 hex digits of each file's sha256,
in the file name (``resnet18-f37072fd.pth``), so only that prefix is checked,
as ``torch.hub`` does. Hugging Face does not publish a digest for timm's
``model.safetensors`` files outside the hub API, so those cards carry no hash:
``fetch`` refuses to download them unless ``MODELZOO_ALLOW_UNVERIFIED=1`` (or
the file is put into ``MODELZOO_WEIGHTS_DIR`` by hand). After the first
download the cache records the digest it got and checks the file against it
from then on.
"""

from __future__ import annotations

from modelzoo.weights.card import WeightFile, WeightSet

__all__ = ["published_weight_sets"]

_TV_URL = "https://download.pytorch.org/models/"
_HF_URL = "https://huggingface.co/timm/{hub_id}/resolve/main/model.safetensors"

_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]
_TV_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification"


def _tv_input(resize: int) -> dict:
    return {
        "size": 224,
        "resize": resize,
        "in_chans": 3,
        "mean": _IMAGENET_MEAN,
        "std": _IMAGENET_STD,
        "interpolation": "bilinear",
        "labels": "imagenet-1k",
    }


def _tv_set(
    arch: str,
    tag: str,
    file_name: str,
    *,
    num_params: int,
    top1: float,
    top5: float,
    recipe: str,
    resize: int = 256,
    default: bool = False,
    description: str,
) -> WeightSet:
    prefix = file_name.rsplit("-", 1)[1].split(".")[0]  # torch.hub's name-<sha256 prefix>.pth
    return WeightSet(
        arch=arch,
        tag=tag,
        files=(WeightFile(name=file_name, size=0, sha256=prefix, urls=(_TV_URL + file_name,)),),
        model_kwargs={"num_classes": 1000},
        metrics={"imagenet-1k": {"top1": top1, "top5": top5}},
        license="bsd-3-clause",
        recipe=recipe,
        input_spec=_tv_input(resize),
        source_format="pytorch",
        num_params=num_params,
        default=default,
        description=description
        + " Metrics as published by torchvision; only the published 8-digit sha256 prefix "
        "of the file is verified.",
    )


def _timm_vit_set(arch: str, tag: str, *, num_params: int, top1: float, top5: float) -> WeightSet:
    hub_id = f"{arch}.{tag}"
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
        recipe="https://arxiv.org/abs/2106.10270 (AugReg: ImageNet-21k pretraining, "
        "ImageNet-1k fine-tuning at 224)",
        input_spec={
            "size": 224,
            "resize": 248,  # timm's crop_pct 0.9
            "in_chans": 3,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "interpolation": "bicubic",
            "labels": "imagenet-1k",
        },
        source_format="safetensors",
        num_params=num_params,
        default=True,
        description="timm's AugReg weights (Steiner et al., 2021) from the Hugging Face hub. "
        "Metrics from timm's results-imagenet.csv. No sha256 is published for this file: "
        "downloading it needs MODELZOO_ALLOW_UNVERIFIED=1, after which the cache pins the "
        "digest it received.",
    )


def published_weight_sets() -> list[WeightSet]:
    """The published weight sets the zoo's ImageNet architectures load."""
    return [
        _tv_set(
            "resnet18",
            "tv_in1k",
            "resnet18-f37072fd.pth",
            num_params=11_689_512,
            top1=69.758,
            top5=89.078,
            recipe=_TV_RECIPE + "#resnet",
            default=True,
            description="torchvision IMAGENET1K_V1.",
        ),
        _tv_set(
            "resnet50",
            "tv_in1k",
            "resnet50-0676ba61.pth",
            num_params=25_557_032,
            top1=76.13,
            top5=92.862,
            recipe=_TV_RECIPE + "#resnet",
            description="torchvision IMAGENET1K_V1, the original recipe.",
        ),
        _tv_set(
            "resnet50",
            "tv2_in1k",
            "resnet50-11ad3fa6.pth",
            num_params=25_557_032,
            top1=80.858,
            top5=95.434,
            recipe="https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621",
            resize=232,
            default=True,  # torchvision's DEFAULT
            description="torchvision IMAGENET1K_V2, the improved recipe.",
        ),
        _tv_set(
            "vgg11",
            "tv_in1k",
            "vgg11-8a719046.pth",
            num_params=132_863_336,
            top1=69.02,
            top5=88.628,
            recipe=_TV_RECIPE + "#alexnet-and-vgg",
            default=True,
            description="torchvision IMAGENET1K_V1.",
        ),
        _timm_vit_set(
            "vit_tiny_patch16_224",
            "augreg_in21k_ft_in1k",
            num_params=5_717_416,
            top1=75.454,
            top5=92.844,
        ),
        _timm_vit_set(
            "vit_base_patch16_224",
            "augreg_in21k_ft_in1k",
            num_params=86_567_656,
            top1=84.532,
            top5=97.292,
        ),
    ]
