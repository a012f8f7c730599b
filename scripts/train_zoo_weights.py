"""Train the zoo's shipped weights on embedded data, measure them, and list them in the manifest.

    python scripts/train_zoo_weights.py                 # every weight set in ZOO (minutes, CPU)
    python scripts/train_zoo_weights.py mlp.digits      # one of them
    python scripts/train_zoo_weights.py --list          # the table

For each entry of :data:`ZOO`, the recipe in ``configs/zoo/`` is trained with the
project's trainer (``train_recipe``), the final weights are written as
safetensors (model state only), and the file is evaluated on the held-out split
exactly as ``tests/test_zoo_weights.py`` re-evaluates it: a model built from the
recipe, the file loaded strictly, ``Trainer.evaluate`` on the test split, on the
CPU. The card (metrics, recipe, model_kwargs, input_spec, num_params) goes into
``weights/manifest.json`` through ``modelzoo.weights.add_shipped_weight_set``;
nothing is written by hand.

Adding a family = appending a :class:`ZooEntry` (and its recipe) to ``ZOO``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from modelzoo.config import Recipe, load_recipe, recipe_from_dict  # noqa: E402
from modelzoo.data import DataBundle  # noqa: E402
from modelzoo.train.recipes import RunResult, build_run, train_recipe  # noqa: E402
from modelzoo.train.rl import is_rl_recipe  # noqa: E402
from modelzoo.transfer import load_pretrained  # noqa: E402
from modelzoo.weights import WeightSet, add_shipped_weight_set, save_weights  # noqa: E402

_logger = logging.getLogger("train_zoo_weights")

# The project's license; the data (sklearn's digits, CPython's source) permit it.
LICENSE = "BSD-3-Clause"
WEIGHTS_DIR = ROOT / "weights"

# Measurements beyond the task's metrics: (model, data, entry) -> dataset -> metric -> value.
ExtraMetrics = Callable[[torch.nn.Module, DataBundle, "ZooEntry"], dict[str, dict[str, float]]]
# How to write a weights file other than as the bare state dict: (model, data info, path) -> path.
SaveWeights = Callable[[torch.nn.Module, dict[str, Any], Path], Path]


@dataclass(frozen=True)
class ZooEntry:
    """One shipped weight set: what to train and how to measure it.

    Attributes:
        arch: the registered model name.
        tag: the weight set's tag (``create(f"{arch}.{tag}")``).
        recipe: the YAML recipe, relative to the repository root.
        description: one or two sentences for the card.
        split: the held-out split the card's metrics are measured on.
        extra: further measurements (e.g. a classifier's verdict on a GAN's samples).
        default: whether ``pretrained=True`` picks this set for ``arch``.
        license: the license of the weights.
        save: writes the weights file (default: the state dict, no metadata), e.g. a text
            model's tokenizer in the safetensors header.
    """

    arch: str
    tag: str
    recipe: str
    description: str
    split: str = "test"
    extra: ExtraMetrics | None = None
    default: bool = True
    license: str = LICENSE
    save: SaveWeights | None = None

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.tag}"


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------


def _eval_recipe(recipe: Recipe | dict[str, Any]) -> Recipe:
    """The recipe set up for a deterministic evaluation: CPU, no bars, no files."""
    raw = recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe)
    recipe = recipe_from_dict(raw)
    cfg = recipe.train
    cfg.device, cfg.precision, cfg.progress = "cpu", "32", False
    cfg.plots, cfg.tensorboard, cfg.dry_run, cfg.compile = False, False, False, False
    cfg.ema_decay = None  # the shipped file holds the weights that are evaluated
    return recipe


def _dataset_key(recipe: Recipe, split: str) -> str:
    """``digits/test``, or ``digits[0,1,2,3,4]/test`` when the data keeps some classes."""
    classes = recipe.data.get("classes")
    subset = f"[{','.join(str(c) for c in classes)}]" if classes else ""
    return f"{recipe.data['name']}{subset}/{split}"


def evaluate_weights(
    recipe: Recipe | dict[str, Any], weights: object, *, split: str = "test"
) -> tuple[dict[str, float], torch.nn.Module, DataBundle]:
    """Metrics of ``weights`` on a split of the recipe's data, the way ``modelzoo evaluate`` runs.

    The recipe's model is built, the weights (a file, a directory or a weight set)
    are loaded strictly, and ``Trainer.evaluate`` runs the recipe's task on the CPU.

    Returns:
        The metrics, the loaded model (eval mode) and the data.
    """
    recipe = _eval_recipe(recipe)
    trainer, data = build_run(recipe, None)
    load_pretrained(trainer.model, weights, strict=True)
    dataset = getattr(data, split)
    if dataset is None:
        raise ValueError(f"{recipe.data['name']} has no {split} split to measure on")
    metrics = dict(trainer.evaluate(dataset))
    if trainer.task.name == "lm" and "loss" in metrics:
        # Tokens are UTF-8 bytes: nats per token -> bits per byte.
        metrics["bits_per_byte"] = metrics["loss"] / math.log(2)
    return metrics, trainer.model.eval(), data


def evaluate_policy_weights(
    recipe: Recipe | dict[str, Any], weights: object
) -> tuple[str, dict[str, float]]:
    """Mean and std of the return of a policy's ``weights`` over the recipe's evaluation episodes.

    The recipe's network is built for its environment, the weights are loaded
    strictly, and ``evaluate_policy`` plays ``task.eval_episodes`` episodes from
    ``task.eval_seed`` on the CPU (deterministic actions unless the recipe says
    otherwise), so the same weights give the same returns.

    Returns:
        The dataset key (environment, episodes, seed) and the metrics.
    """
    from modelzoo.train.rl.envs import make_env
    from modelzoo.train.rl.evaluation import evaluate_policy
    from modelzoo.train.rl.runner import build_model, parse_recipe

    raw = recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe)
    recipe = recipe_from_dict(raw)
    data, task, cls = parse_recipe(recipe)
    if task.eval_episodes is None or task.eval_seed is None:
        raise ValueError("a shipped policy's recipe must fix task.eval_episodes and task.eval_seed")
    if data.normalize_obs:
        # The observation statistics live in the run's checkpoint, not in the weights file.
        raise ValueError("a shipped policy cannot depend on data.normalize_obs statistics")
    env = make_env(data.env_id, data.env_kwargs, data.max_episode_steps)
    try:
        model = build_model(recipe, env.observation_space, env.action_space, cls)
    finally:
        env.close()
    load_pretrained(model, weights, strict=True)
    result = evaluate_policy(
        model.eval(),
        data.env_id,
        task.eval_episodes,
        task.eval_seed,
        deterministic=task.eval_deterministic,
        env_kwargs=data.env_kwargs,
        max_episode_steps=data.max_episode_steps,
    )
    key = f"{data.env_id}/{task.eval_episodes} episodes from seed {task.eval_seed}"
    return key, {k: float(result[k]) for k in ("mean_return", "std_return")}


def measure(entry: ZooEntry, recipe: Recipe | dict[str, Any], weights: object) -> dict:
    """Every metric the card of ``entry`` states: dataset -> metric -> value."""
    raw = recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe)
    if is_rl_recipe(recipe_from_dict(raw)):
        key, metrics = evaluate_policy_weights(raw, weights)
        return {key: metrics}
    recipe = _eval_recipe(recipe)
    metrics, model, data = evaluate_weights(recipe, weights, split=entry.split)
    out = {_dataset_key(recipe, entry.split): metrics}
    if entry.extra is not None:
        with torch.no_grad():
            out.update(entry.extra(model, data, entry))
    return out


def _digits_verdict(probs: torch.Tensor) -> dict[str, float]:
    """A classifier's verdict on a set of images: confident, and spread over the classes?

    ``digits_score`` is the Inception Score with a digits classifier:
    ``exp(E_x KL(p(y|x) || p(y)))``, between 1 and the number of classes (10): high
    when each image is classified confidently and the classes are used evenly.
    """
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * (probs.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(1)
    counts = torch.bincount(probs.argmax(1), minlength=probs.shape[1])
    return {
        "classifier_confidence": float(probs.max(1).values.mean()),
        "digits_score": float(kl.mean().exp()),
        # A class counts as produced when it takes at least a fifth of its even share.
        "classes_covered": float((counts >= 0.2 * len(probs) / probs.shape[1]).sum()),
    }


GAN_JUDGE = "resnet20.digits"  # a shipped classifier trained on the same 16x16 digits
GAN_SAMPLES = 1000
GAN_SEED = 0


def gan_digits_score(
    model: torch.nn.Module, data: DataBundle, entry: ZooEntry
) -> dict[str, dict[str, float]]:
    """Judge a digits GAN with the shipped digits classifier, and real test images for scale.

    ``GAN_SAMPLES`` images are generated from latents seeded with ``GAN_SEED`` (on
    the CPU, eval mode), mapped from [-1, 1] to the classifier's [0, 1], and
    classified by ``GAN_JUDGE``; the same verdict on the real test images is the
    reference a perfect generator would reach.
    """
    import modelzoo

    judge = modelzoo.create(GAN_JUDGE).eval()
    generator = torch.Generator().manual_seed(GAN_SEED)
    fake = (model.sample(GAN_SAMPLES, generator=generator).float() + 1) / 2
    real = torch.stack([data.test[i][0] for i in range(len(data.test))])
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError(f"samples {tuple(fake.shape[1:])} but data {tuple(real.shape[1:])}")
    return {
        f"generated/{GAN_SAMPLES} samples, judged by {GAN_JUDGE}": _digits_verdict(
            judge(fake.clamp(0, 1)).softmax(-1)
        ),
        f"digits/test real images, judged by {GAN_JUDGE}": _digits_verdict(judge(real).softmax(-1)),
    }


def save_text_model(
    model: torch.nn.Module,
    info: dict[str, Any],
    path: Path,
    *,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """A text-to-text model's weights (in float16 unless ``dtype`` says otherwise; None keeps
    the model's), its tokenizer and languages in the header (``modelzoo.translate``), so
    ``mz.translate`` works from the file alone."""
    from modelzoo.translate import save_text_weights, text_spec_from_info

    dataset = {"name": "po_translations", "pair": info["pair"]} if "pair" in info else {}
    spec = text_spec_from_info(
        info, arch=model.model_name, model_kwargs=dict(model.init_kwargs), dataset=dataset
    )
    return save_text_weights(model, spec, path, dtype=dtype)


def translation_scores(
    model: torch.nn.Module,
    data: DataBundle,
    entry: ZooEntry,
    *,
    beam_size: int,
    length_penalty: float,
) -> dict[str, dict[str, float]]:
    """sacrebleu BLEU and chrF against all references, and the placeholder preservation
    rate, on the test split of each target language, decoded as benchmarks/translation.md
    chose on the validation split (``modelzoo.translate.evaluate_translation``)."""
    from modelzoo.translate import evaluate_translation, text_spec_from_info

    model.text_spec = text_spec_from_info(data.info)
    out = {}
    for lang in model.text_spec.target_languages:
        scores = evaluate_translation(
            model, lang, "test", beam_size=beam_size, length_penalty=length_penalty
        )
        figures = scores.metrics()
        decoding = f"beam {beam_size}, lp {length_penalty}"
        key = f"po_translations en-{lang}/test (all references, {decoding})"
        out[key] = {k: figures[k] for k in ("bleu", "chrf", "placeholder_rate")}
    return out


def published_translation_scores(run: str) -> ExtraMetrics:
    """:func:`translation_scores` decoded with the setting benchmarks/translation.json chose
    on the validation split for ``run`` (e.g. ``lstm-en-de``), read when measuring."""
    import json

    def scores(model: torch.nn.Module, data: DataBundle, entry: ZooEntry) -> dict:
        published = json.loads((ROOT / "benchmarks" / "translation.json").read_text())
        if run not in published["runs"]:
            raise SystemExit(f"measure {run} first: python scripts/translation_results.py measure")
        chosen = published["runs"][run]["chosen"]
        return translation_scores(
            model,
            data,
            entry,
            beam_size=chosen["beam"],
            length_penalty=chosen["length_penalty"],
        )

    return scores


def published_translator(arch: str, tag: str, run: str, recipe: str, what: str) -> ZooEntry:
    """The weight set of a translation run that benchmarks/translation.json published: its
    final weights, measured with the decoding chosen on val, in float32 (float16 changes a
    few translations), so it translates the test split word for word as published."""
    return ZooEntry(
        arch,
        tag,
        recipe,
        f"{what} on po_translations (Django, Sphinx, Wagtail and django-allauth catalogs): "
        f"the final weights of the {run} run of scripts/translation_results.py "
        "(benchmarks/translation.md); test BLEU/chrF and placeholder rate per language, "
        "decoded with the setting chosen on val. Stored in float32, so it translates the "
        "test split word for word as the results file publishes.",
        extra=published_translation_scores(run),
        save=functools.partial(save_text_model, dtype=None),
    )


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------

ZOO: list[ZooEntry] = [
    ZooEntry(
        "mlp",
        "digits",
        "configs/zoo/mlp_digits.yaml",
        "Two hidden layers of 256 units on the flattened 8x8 digits (all 10 classes).",
    ),
    ZooEntry(
        "cnn_small",
        "digits",
        "configs/zoo/cnn_small_digits.yaml",
        "Three conv-BN-ReLU-pool stages on the 8x8 digits (all 10 classes).",
    ),
    ZooEntry(
        "resnet20",
        "digits",
        "configs/zoo/resnet20_digits.yaml",
        "CIFAR-style ResNet-20 on the digits upsampled to 16x16 (all 10 classes).",
    ),
    ZooEntry(
        "resnet20",
        "digits_0to4",
        "configs/zoo/resnet20_digits_0to4.yaml",
        "ResNet-20 on 16x16 digits 0-4 only: the starting point of the transfer reference "
        "(fine-tune it on digits 5-9, which it has never seen; benchmarks/finetune_few_labels.md).",
        default=False,
    ),
    ZooEntry(
        "vit_tiny_patch4_32",
        "digits",
        "configs/zoo/vit_digits.yaml",
        "A small ViT (64 wide, 4 blocks, 4 heads) on 16x16 digits in 4x4 patches; "
        "model_kwargs hold the configuration, which differs from the builder's defaults.",
    ),
    ZooEntry(
        "lstm_lm",
        "stdlib",
        "configs/zoo/lstm_lm_stdlib.yaml",
        "Byte-level one-layer LSTM language model on Python's standard-library source "
        "(truncated BPTT over 32 streams); metrics on the last 5% of the text.",
    ),
    ZooEntry(
        "gru_lm",
        "stdlib",
        "configs/zoo/gru_lm_stdlib.yaml",
        "Byte-level one-layer GRU language model, same data and budget as lstm_lm.stdlib.",
    ),
    ZooEntry(
        "gpt_nano",
        "stdlib",
        "configs/zoo/gpt_nano_stdlib.yaml",
        "Byte-level 4-layer GPT (d_model 64, 64-byte context) on Python's standard-library "
        "source; metrics on the last 5% of the text.",
    ),
    ZooEntry(
        "conv_autoencoder",
        "digits",
        "configs/zoo/conv_autoencoder_digits.yaml",
        "Convolutional autoencoder (16-d code) on the 8x8 digits; mse is per pixel, of the "
        "sigmoid of the decoder's logits, on the test split.",
    ),
    ZooEntry(
        "vae",
        "digits",
        "configs/zoo/vae_digits.yaml",
        "MLP VAE (8-d latent, Bernoulli decoder) on the flattened 8x8 digits; elbo is the "
        "negative ELBO in nats per image (decoder fed z = mu in eval mode).",
    ),
    ZooEntry(
        "dcgan",
        "digits",
        "configs/zoo/dcgan_digits.yaml",
        "DCGAN on 16x16 digits. Judged by the shipped resnet20.digits classifier on 1000 "
        "seeded samples: its confidence, an Inception-style digits_score (1 to 10) and the "
        "classes it sees, beside the same verdict on real test images.",
        extra=gan_digits_score,
    ),
    ZooEntry(
        "fcos_tiny",
        "shapes",
        "configs/zoo/fcos_tiny_shapes.yaml",
        "Anchor-free FCOS detector on generated 64x64 shapes (4 classes, 1-4 objects per "
        "image); COCO-style map, map_50 and map_75 on the 200-image test split.",
    ),
    ZooEntry(
        "unet_tiny",
        "shapes",
        "configs/zoo/unet_tiny_shapes.yaml",
        "U-Net (16-128 channels, depth 3) segmenting generated 64x64 shapes (background + 4 "
        "classes); mean IoU, per-class IoU and pixel accuracy on the 200-image test split.",
    ),
    ZooEntry(
        "audio_cnn",
        "tones",
        "configs/zoo/audio_cnn_tones.yaml",
        "Log-mel CNN classifying generated tone clips; metrics on the 400-clip test split.",
    ),
    published_translator(
        "lstm_seq2seq",
        "po_en_de",
        "lstm-en-de",
        "configs/rnn/lstm_translate_en_de.yaml",
        "English -> German attentional LSTM encoder-decoder",
    ),
    published_translator(
        "transformer_seq2seq",
        "po_en_de",
        "transformer-en-de",
        "configs/transformer/transformer_translate_en_de.yaml",
        "English -> German Transformer encoder-decoder (3 + 3 layers of width 128), the en-de "
        "model with the best validation BLEU,",
    ),
    published_translator(
        "transformer_seq2seq",
        "po_en_multi",
        "transformer-multi",
        "configs/transformer/transformer_translate_multi.yaml",
        "One Transformer encoder-decoder (3 + 3 layers of width 128) from English into de, es, "
        "fr, it, nl and pt_BR (each source starts with its target tag, <2de>; "
        '`mz.translate(..., target="fr")`), the multilingual model with the best validation '
        "BLEU,",
    ),
    ZooEntry(
        "actor_critic",
        "cartpole",
        "configs/zoo/actor_critic_cartpole.yaml",
        "PPO actor-critic (separate 64-64 policy and value MLPs) on gymnasium's CartPole-v1; "
        "the card's return is the mean over 20 seeded episodes with deterministic actions.",
    ),
]


def entries(names: list[str] | None = None) -> list[ZooEntry]:
    """The entries named (``arch.tag``; all when None), in table order."""
    if not names:
        return list(ZOO)
    known = {e.name: e for e in ZOO}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown weight sets {unknown}; known: {', '.join(known)}")
    return [e for e in ZOO if e.name in names]


# --------------------------------------------------------------------------------------
# Producing a weight set
# --------------------------------------------------------------------------------------


def input_spec(recipe: Recipe, info: dict[str, Any]) -> dict[str, Any]:
    """How to prepare inputs for the weights: what the recipe's data gave the model."""
    data = dict(recipe.data)
    name = data.pop("name")
    data.pop("batch_size", None)
    spec: dict[str, Any] = {"dataset": name, "data_kwargs": data}
    if "img_size" in info:
        chans = int(info.get("in_chans", 1))
        scaled = recipe.task.get("name") == "gan" and recipe.task.get("scale_inputs", True)
        spec.update(
            img_size=int(info["img_size"]),
            in_chans=chans,
            flatten=bool(data.get("flatten", False)),
            value_range=[-1.0, 1.0] if scaled else [0.0, 1.0],
            mean=[0.0] * chans,
            std=[1.0] * chans,
            interpolation="bilinear",
        )
    # Class names: the data's own (detection and segmentation name theirs), else the
    # classification labels chosen (digits: the digits themselves).
    labels = info.get("classes")
    if (
        labels is None
        and "num_classes" in info
        and info.get("task", "classification") == ("classification")
    ):
        classes = data.get("classes")
        labels = sorted(classes) if classes else list(range(info["num_classes"]))
    if labels is not None:
        spec["labels"] = [str(c) for c in labels]
    for key in ("vocab", "vocab_size", "seq_len", "corpus_sha256", "num_chars", "source"):
        if key in info:
            spec[key] = info[key]
    if "tokenizer" in info:  # text-to-text models: how text becomes ids, and which languages
        from modelzoo.translate import tokenizer_facts

        spec["tokenizer"] = tokenizer_facts(info["tokenizer"])
        for key in ("source_language", "target_languages", "lang_tags", "python_version"):
            if key in info:
                spec[key] = info[key]
    return spec


def finished_run(recipe: Recipe, run_dir: Path) -> RunResult:
    """A finished run of ``recipe``, as ``train_recipe`` would return it, with its final
    weights (``checkpoints/last.ckpt``) loaded and nothing trained.

    Raises:
        SystemExit: the run was made by another recipe, or has not finished.
    """
    from modelzoo.train.checkpoint import evaluation_weights, load_checkpoint

    config, last = run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt"
    if not config.is_file() or not last.is_file():
        raise SystemExit(f"{run_dir} is not a finished run (config.yaml, checkpoints/last.ckpt)")
    if load_recipe(config).to_dict() != recipe.to_dict():
        raise SystemExit(f"{run_dir} was trained from another recipe; train this one instead")
    trainer, data = build_run(recipe, None)
    state = load_checkpoint(last)
    # The schedule's length: the step an uninterrupted run of the recipe ends at.
    batches = math.ceil(len(data.train) / trainer.batch_size)
    total = recipe.train.epochs * math.ceil(batches / recipe.train.grad_accum)
    total = min(total, recipe.train.max_steps or total)
    if state["loop"]["step"] != total:
        raise SystemExit(
            f"{run_dir} stopped at step {state['loop']['step']} of {total}; resume it first"
        )
    trainer.model.load_state_dict(evaluation_weights(state))
    return RunResult(run_dir, trainer, data, {}, {})


def produce(
    entry: ZooEntry,
    *,
    run_root: Path,
    weights_dir: Path = WEIGHTS_DIR,
    from_run: Path | None = None,
) -> WeightSet:
    """Train ``entry``'s recipe, measure the weights and ship them; returns the card.

    With ``from_run``, a finished run of the same recipe (e.g. one a results script
    trained) gives the final weights instead: training on the CPU is deterministic, so they
    are the weights training again would give.
    """
    recipe = load_recipe(ROOT / entry.recipe, ["train.progress=false"])
    started = time.perf_counter()
    if from_run is not None:
        result = finished_run(recipe, from_run)
    else:
        run_dir = run_root / entry.name
        if (run_dir / "checkpoints" / "last.ckpt").exists():
            raise SystemExit(f"{run_dir} holds a run already; remove it or pass another --run-root")
        result = train_recipe(recipe, run_dir)
    model = result.trainer.model
    trained_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        # No extra header metadata by default: safetensors writes it from a hash map, in an
        # order that changes from run to run, and the card holds those facts anyway. (A text
        # model's save hook stores its tokenizer there, with the header put in sorted order.)
        # So a rerun of this script reproduces the files byte for byte (training is
        # deterministic on CPU).
        path = Path(tmp) / f"{entry.name}.safetensors"
        if entry.save is not None:
            file = entry.save(model, result.data.info, path)
        else:
            file = save_weights(model.state_dict(), path)
        # Measured from the file, as the test re-measures it: what ships is what was scored.
        metrics = measure(entry, result.trainer.recipe, file)
        # RL runs have environments, not datasets: nothing beyond the recipe's data section.
        info = {} if is_rl_recipe(recipe) else result.data.info
        card = WeightSet(
            arch=entry.arch,
            tag=entry.tag,
            files=(),
            model_kwargs=dict(model.init_kwargs),
            metrics=metrics,
            license=entry.license,
            recipe=_recipe_dict(result.trainer.recipe),
            input_spec=input_spec(recipe, info),
            num_params=sum(p.numel() for p in model.parameters()),
            default=entry.default,
            description=entry.description,
        )
        card = add_shipped_weight_set(card, file, root=weights_dir)
    _logger.info("%s: trained in %.0f s, %s", entry.name, trained_s, _format_metrics(card.metrics))
    return card


def _recipe_dict(recipe: Recipe | dict[str, Any]) -> dict[str, Any]:
    # The RL runner keeps the Recipe itself, the supervised trainer its dict.
    return recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe)


def _format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    return "; ".join(
        f"{dataset}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        for dataset, values in metrics.items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="arch.tag of the sets to train (default: all)")
    parser.add_argument("--list", action="store_true", help="show the table and exit")
    parser.add_argument(
        "--run-root", type=Path, default=ROOT / "runs" / "zoo", help="where the runs go"
    )
    parser.add_argument(
        "--weights-dir",
        type=Path,
        default=WEIGHTS_DIR,
        help="the folder of weight files and manifest.json (default: the repository's weights/)",
    )
    parser.add_argument(
        "--from-run",
        type=Path,
        default=None,
        help="ship the final weights of this finished run of the (one) named set's recipe "
        "instead of training it again",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: reproducible sums, and far faster than the "
        "default on a shared, busy machine)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    selected = entries(args.names)
    if args.list:
        for e in selected:
            print(f"{e.name:<32} {e.recipe:<44} {e.description}")
        return 0
    if args.from_run is not None and len(selected) != 1:
        parser.error("--from-run goes with exactly one weight set name")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    for entry in selected:
        card = produce(
            entry, run_root=args.run_root, weights_dir=args.weights_dir, from_run=args.from_run
        )
        size = card.files[0].size
        print(f"{card.name:<28} {size / 1e6:5.2f} MB  {_format_metrics(card.metrics)}", flush=True)
    print(f"{len(selected)} weight sets in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


__all__ = [
    "ZOO",
    "ZooEntry",
    "entries",
    "evaluate_weights",
    "measure",
    "evaluate_policy_weights",
    "finished_run",
    "gan_digits_score",
    "input_spec",
    "produce",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
