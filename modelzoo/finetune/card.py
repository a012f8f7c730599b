"""The fine-tuned model's card (``model_card.json`` / ``model_card.md``) and its folder."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from modelzoo.errors import ModelzooError

__all__ = ["CARD_NAME", "build_card", "card_markdown", "write_model_dir"]

_logger = logging.getLogger(__name__)

CARD_NAME = "model_card"  # model/model_card.json and model/model_card.md
ZOO_LICENSE = "BSD-3-Clause"  # a model trained from scratch here carries the zoo's license


def build_card(
    model: nn.Module,
    recipe: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, float]],
    settings: Mapping[str, Any],
    info: Mapping[str, Any],
    source: Any,
) -> dict[str, Any]:
    """The card of a fine-tuned model: what it is, what it scores, where it came from.

    Args:
        model: the fine-tuned model.
        recipe: the run's recipe (model, data, task, train).
        metrics: dataset/split -> metric -> value, as measured after training.
        settings: what the recipe cannot hold (freezing, timing, steps).
        info: the data's facts (classes, image size, feature statistics).
        source: the :class:`~modelzoo.finetune.Source` fine-tuned from.
    """
    from modelzoo import __version__ as version

    labels = info.get("classes")
    if labels is None and "num_classes" in info and recipe["task"]["name"] == "classification":
        chosen = recipe["data"].get("classes")
        labels = sorted(chosen) if chosen else list(range(int(info["num_classes"])))
    spec = {k: info[k] for k in ("img_size", "in_chans", "in_features") if k in info}
    if labels is not None:
        spec["labels"] = [str(c) for c in labels]
    if "feature_mean" in info:
        spec["feature_mean"], spec["feature_std"] = info["feature_mean"], info["feature_std"]
    # How the images were prepared (an image folder under a card's transforms), so predict
    # and transforms on the fine-tuned model reproduce it.
    spec.update(info.get("preprocessing") or {})
    if source.fresh:
        license_ = ZOO_LICENSE
    else:
        license_ = source.license or f"unknown: see the terms of {source.label}"
    return {
        "model_name": recipe["model"]["name"],
        "num_params": sum(p.numel() for p in model.parameters()),
        "metrics": {k: dict(v) for k, v in metrics.items()},
        "source_weights": source.facts,
        "license": license_,
        "finetune": dict(settings),
        "recipe": dict(recipe),
        "input_spec": spec,
        "modelzoo_version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def card_markdown(card: Mapping[str, Any], model_dir: Path) -> str:
    """The card for people; ``model_dir`` is where the model will be loaded from."""
    settings = card["finetune"]
    source = card["source_weights"]
    train = card["recipe"]["train"]
    lines = [
        f"# {card['model_name']} fine-tuned",
        "",
        f"- from: {source['name'] if source else 'a fresh initialization (no weights)'}",
        f"- data: `{json.dumps(dict(card['recipe']['data']))}`",
        f"- training: {train['epochs']} epochs ({settings['steps']} steps, "
        f"{settings['seconds']} s), lr {train['lr']}, {train['optimizer']}, weight decay "
        f"{train['weight_decay']}, backbone frozen for {settings['freeze_epochs']} epochs, "
        f"layer decay {train.get('layer_decay')}, seed {train['seed']}",
        f"- parameters: {card['num_params']:,}",
        f"- license: {card['license']}",
        "",
        "| data | metric | value |",
        "|---|---|---|",
    ]
    for dataset, values in card["metrics"].items():
        for metric, value in values.items():
            lines.append(f"| {dataset} | {metric} | {value:.4f} |")
    if source and source.get("metrics"):
        lines += ["", f"Source weights ({source['name']}) as published:", ""]
        for dataset, values in source["metrics"].items():
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
            lines.append(f"- {dataset}: {shown}")
    lines += ["", f'Load it with `modelzoo.from_pretrained("{model_dir}")`.', ""]
    return "\n".join(lines)


def write_model_dir(
    model: nn.Module,
    model_dir: Path,
    card: dict[str, Any],
    kwargs: Mapping[str, Any],
    *,
    final_dir: Path | None = None,
) -> Path:
    """Write the model in the ``save_pretrained`` layout with its card; add its file to the card.

    Args:
        model: the fine-tuned model.
        model_dir: where to write (``<run_dir>/model``, possibly while the run is staged).
        card: from :func:`build_card`; gets ``files`` (name, size, sha256).
        kwargs: the builder arguments, for models that do not record them.
        final_dir: where ``model_dir`` will be once the run is published (the card's
            loading hint names it); default ``model_dir``.
    """
    from modelzoo.utils.io import atomic_write_text
    from modelzoo.weights import save_weights, sha256_file
    from modelzoo.weights.pretrained import save_pretrained

    config = None
    if not hasattr(model, "init_kwargs"):
        config = {k: v for k, v in kwargs.items() if k != "pretrained"}
    try:
        save_pretrained(model, model_dir, config=config)
    except ModelzooError as err:
        _logger.warning("the fine-tuned model was not saved in the save_pretrained layout: %s", err)
        model_dir.mkdir(parents=True, exist_ok=True)
        save_weights(model.state_dict(), model_dir / "model.safetensors")
    weights_file = model_dir / "model.safetensors"
    card["files"] = [
        {
            "name": weights_file.name,
            "size": weights_file.stat().st_size,
            "sha256": sha256_file(weights_file),
        }
    ]
    atomic_write_text(model_dir / f"{CARD_NAME}.json", json.dumps(card, indent=2) + "\n")
    atomic_write_text(model_dir / f"{CARD_NAME}.md", card_markdown(card, final_dir or model_dir))
    return model_dir
