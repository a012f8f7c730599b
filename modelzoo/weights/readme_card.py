"""The model card a saved folder carries: ``README.md``, with the YAML front matter the
Hugging Face Hub reads (``library_name``, ``license``, ``tags``, ``pipeline_tag``) and, for
people, what the model is, how to load it, its input, metrics, recipe and licence."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from modelzoo.errors import ModelzooError
from modelzoo.weights.layout import CONFIG_NAME, LIBRARY_NAME, WEIGHTS_NAME

__all__ = ["hub_license", "is_policy_card", "render_model_card"]

# Licence identifiers the Hub's metadata accepts
# (https://huggingface.co/docs/hub/repositories-licenses); any other is "other" with its name.
_HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigcode-openrail-m
    afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0
    cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0
    cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0
    wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0
    gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0
    postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr llama2 llama3 gemma unknown other""".split()
)
# The Hub's pipeline tags for the zoo's tasks.
_PIPELINE_TAGS = {
    "image_classification": "image-classification",
    "detection": "object-detection",
    "segmentation": "image-segmentation",
    "audio_classification": "audio-classification",
    "language_modeling": "text-generation",
    "translation": "translation",
    "reinforcement_learning": "reinforcement-learning",
}


def hub_license(license_: str | None) -> tuple[str | None, str | None]:
    """The Hub's ``license`` identifier for a licence, and its name when it is ``other``."""
    if not license_:
        return None, None
    key = license_.strip().lower()
    if key in _HUB_LICENSES:
        return key, None
    slug = re.sub(r"[^a-z0-9.+-]+", "-", key).strip("-")[:64] or "custom"
    return "other", slug


def is_policy_card(card: Mapping[str, Any]) -> bool:
    """Whether a card's recipe trains an RL policy (its task is one of the RL algorithms)."""
    recipe = card.get("recipe")
    if not isinstance(recipe, Mapping) or not isinstance(recipe.get("task"), Mapping):
        return False
    from modelzoo.train.rl import ALGORITHMS

    return recipe["task"].get("name") in ALGORITHMS


def render_model_card(payload: Mapping[str, Any], *, repo_id: str | None = None) -> str:
    """The ``README.md`` of a folder whose ``config.json`` holds ``payload``.

    YAML front matter the Hub reads (``library_name: modelzoo``, ``license``, ``tags``,
    ``pipeline_tag``), then for people: what the model is, how to load it (from the Hub
    when ``repo_id`` is given, and from the folder), its input, metrics, training recipe
    and licence.
    """
    import yaml

    from modelzoo import __version__

    name = str(payload.get("model_name") or payload.get("architecture") or "model")
    card: Mapping[str, Any] = payload.get("card") or {}
    cfg: Mapping[str, Any] = payload.get("pretrained_cfg") or {}
    policy = is_policy_card(card)
    family, task = _family_and_task(name)
    if policy:
        task = "reinforcement_learning"
    license_id, license_name = hub_license(card.get("license"))
    tags = [LIBRARY_NAME, family, task.replace("_", "-")]
    spec = card.get("input_spec") or {}
    env_id = _policy_env(card) if policy else None
    if env_id:
        tags.append(env_id)
    tags += list(card.get("tags") or [])
    front: dict[str, Any] = {"library_name": LIBRARY_NAME}
    if license_id:
        front["license"] = license_id
        if license_name:
            front["license_name"] = license_name
    front["tags"] = list(dict.fromkeys(t for t in tags if t))
    if task in _PIPELINE_TAGS:
        front["pipeline_tag"] = _PIPELINE_TAGS[task]

    title = repo_id or name
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", f"# {title}", ""]
    if card.get("description"):
        lines += [str(card["description"]), ""]
    what = f"`{name}`" + (f" ({family}, {task.replace('_', ' ')})" if family else "")
    if card.get("num_params"):
        what += f" with {int(card['num_params']):,} parameters"
    lines.append(f"{what}, saved by [modelzoo](https://pypi.org/project/modelzoo/) {__version__}.")
    if card.get("source"):
        lines.append(f"Weights from `{card['source']}`.")
    lines += ["", "## How to load", "", "```python"]
    where = f"hf-hub:{repo_id}" if repo_id else "path/to/this/folder"
    if policy:
        lines += [
            "from modelzoo.train.rl.play import play",
            "from modelzoo.weights.pretrained import policy_from_pretrained",
            "",
            f'policy = policy_from_pretrained("{where}")  # network, environment, statistics',
            "print(play(policy, episodes=10, seed=0).mean_return)",
        ]
    else:
        lines += ["import modelzoo as mz", ""]
        if repo_id:
            lines.append(f'model = mz.create("hf-hub:{repo_id}").eval()')
            lines.append('# or, from a copy of these files: mz.from_pretrained("path/to/folder")')
        else:
            lines.append(f'model = mz.from_pretrained("{where}").eval()')
            lines.append(
                '# or, once pushed (modelzoo push FOLDER org/repo): mz.create("hf-hub:org/repo")'
            )
        if cfg.get("input_size"):
            lines.append("preprocess = mz.transforms(model)  # the pipeline under Input")
    lines += [
        "```",
        "",
        f"`{CONFIG_NAME}` holds the architecture, its builder arguments, the preprocessing "
        f"and this card's facts; `{WEIGHTS_NAME}` holds the weights (no pickle).",
        "",
        "## Input",
        "",
    ]
    lines += _input_lines(payload, cfg, spec, policy)
    lines += ["", "## Metrics", ""]
    metrics = card.get("metrics") or {}
    if metrics:
        lines += ["| data | metric | value |", "|---|---|---|"]
        for dataset, values in metrics.items():
            for metric, value in values.items():
                lines.append(f"| {dataset} | {metric} | {value:.6g} |")
        if card.get("source") and not card.get("recipe"):
            lines += ["", f"As published for `{card['source']}`."]
    else:
        lines.append("None recorded.")
    recipe = card.get("recipe")
    if recipe:
        lines += ["", "## Training recipe", ""]
        if isinstance(recipe, Mapping):
            dumped = yaml.safe_dump(dict(recipe), sort_keys=False).rstrip()
            lines += ["```yaml", dumped, "```"]
        else:
            lines.append(str(recipe))
    lines += ["", "## License", ""]
    if card.get("license"):
        lines.append(str(card["license"]))
    else:
        lines.append(
            "Not stated. Whoever publishes these weights should name their licence "
            "(`push_to_hub(..., license=...)`, `modelzoo push --license`)."
        )
    return "\n".join(lines) + "\n"


def _family_and_task(name: str) -> tuple[str, str]:
    from modelzoo.registry import family_and_task

    try:
        return family_and_task(name)
    except ModelzooError:
        return "", ""


def _policy_env(card: Mapping[str, Any]) -> str | None:
    data = (card.get("recipe") or {}).get("data") or {}
    env_id = data.get("env_id") if isinstance(data, Mapping) else None
    return env_id if isinstance(env_id, str) else None


def _input_lines(
    payload: Mapping[str, Any], cfg: Mapping[str, Any], spec: Mapping[str, Any], policy: bool
) -> list[str]:
    if policy:
        data = (payload.get("card") or {}).get("recipe", {}).get("data", {})
        lines = [f"- environment: `{data.get('env_id')}`"]
        if data.get("env_kwargs"):
            lines.append(f"- environment arguments: `{json.dumps(data['env_kwargs'])}`")
        wrappers = [
            k
            for k in ("atari", "grayscale", "resize", "frame_stack", "frame_skip")
            if data.get(k) not in (None, False, 1)
        ]
        if wrappers:
            shown = ", ".join(f"{k}={data[k]}" for k in wrappers)
            lines.append(f"- wrappers: {shown} (applied by `policy_from_pretrained`)")
        stats = spec.get("obs_rms")
        if stats:
            lines.append(
                f"- observations are normalized by the running mean and variance of training "
                f"({stats.get('count', 0):.0f} observations; in `{CONFIG_NAME}` under "
                f"`card.input_spec.obs_rms`), clipped to +-{data.get('clip_obs', 10.0)}"
            )
        return lines
    if cfg.get("input_size"):
        c, h, w = cfg["input_size"]
        lines = [f"- images: {c} x {h} x {w} (channels x height x width)"]
        interpolation = cfg.get("interpolation", "bilinear")
        resize = cfg.get("resize_size")
        if cfg.get("crop_mode") == "squash":
            lines.append(f"- resized whole to {h} x {w} ({interpolation})")
        else:
            lines.append(
                f"- resized to {resize} ({interpolation}), then center-cropped to {h} x {w}"
            )
        lines.append(
            f"- scaled to [0, 1], normalized with mean {_floats(cfg.get('mean'))} and std "
            f"{_floats(cfg.get('std'))}"
        )
        labels = cfg.get("label_names")
        if labels:
            shown = ", ".join(str(x) for x in list(labels)[:5])
            more = ", ..." if len(labels) > 5 else ""
            lines.append(
                f"- {len(labels)} classes ({shown}{more}; all in `{CONFIG_NAME}` under "
                "`pretrained_cfg.label_names`)"
            )
        return lines
    kwargs = payload.get("model_kwargs") or {}
    if kwargs:
        return [f"- builder arguments: `{json.dumps(kwargs, sort_keys=True)}`"]
    return ["- the architecture's defaults"]


def _floats(values: Any) -> str:
    if not isinstance(values, (list, tuple)):
        return str(values)
    return "[" + ", ".join(f"{float(v):.4g}" for v in values) + "]"
