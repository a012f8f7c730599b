"""Translate text with a trained encoder-decoder: ``mz.translate(model, texts, target="de")``.

    import modelzoo as mz

    mz.translate("transformer_seq2seq.po_multi", ["Delete %(count)d items?"], target="fr")
    model = mz.create("transformer_seq2seq.po_en_de")          # a shipped weight set
    mz.translate(model, ["Save and continue editing"])          # a list of German strings
    mz.translate("runs/my-run", ["Add another"], target="de")   # a run directory

A sequence model translates ids, not text: it needs the subword tokenizer it was
trained with, and a multilingual model needs the target-language tag (``<2de>``) its
data put in front of each source. These travel with the weights:

- **weight files** (shipped sets, :func:`save_text_weights`): the safetensors header
  holds one metadata entry, ``modelzoo.seq2seq``, a JSON document with the tokenizer
  (the ``tokenizers`` library's own JSON), the language facts and the architecture
  with its keywords, so the file alone rebuilds the model;
- **run directories**: ``config.yaml`` names the data, and the data's tokenizer is
  rebuilt from it (BPE training is deterministic and cached in ``MODELZOO_HOME``);
  the weights are those ``modelzoo evaluate`` reads (``best.ckpt``, else ``last.ckpt``).

A model object remembers where it came from (``create(...).load_report.source``), so a
model built from a weight set or file translates without more arguments; any other
model needs ``tokenizer=``.

Input text is normalised as the training data was (NFC, whitespace runs to one space,
ends stripped). Sources are batched by length and decoded with beam search (4 beams,
length penalty 1.0 by default).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.errors import CheckpointError, ConfigError, InputShapeError, WeightsError
from modelzoo.utils.devices import model_device

__all__ = [
    "METADATA_KEY",
    "TextSpec",
    "load_text_model",
    "read_text_spec",
    "save_text_weights",
    "text_metadata",
    "text_spec_from_info",
    "tokenizer_facts",
    "translate",
    "generate_text",
    "TranslationScores",
    "evaluate_translation",
    "score_translations",
]

_logger = logging.getLogger(__name__)

METADATA_KEY = "modelzoo.seq2seq"  # the safetensors metadata entry that carries a TextSpec
_FORMAT = 1
_TAG = re.compile(r"^<2([A-Za-z_]+)>$")  # a target-language tag token: <2de>, <2pt_BR>
_KINDS = ("translation", "summarization")


@dataclass
class TextSpec:
    """What turns text into a model's ids and back.

    Attributes:
        tokenizer: the subword tokenizer the model was trained with
            (:class:`~modelzoo.data.tokenizers.SubwordTokenizer`).
        kind: ``"translation"`` or ``"summarization"``.
        source_language: the language of the inputs (``"en"``; ``"python"`` for code).
        target_languages: the languages the model writes.
        lang_tags: target language -> tag token id put first in every source; empty for a
            model with one target language.
        normalize: whether inputs are normalised as the training text was (NFC, one space).
        arch: the registered model name (None when unknown).
        model_kwargs: the builder keywords that rebuild the model.
        dataset: the data it was trained on and its keywords, for the record.
    """

    tokenizer: Any
    kind: str = "translation"
    source_language: str = "en"
    target_languages: list[str] = field(default_factory=list)
    lang_tags: dict[str, int] = field(default_factory=dict)
    normalize: bool = True
    arch: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)

    @property
    def multilingual(self) -> bool:
        return bool(self.lang_tags)

    def to_json(self) -> str:
        """The metadata document (sorted keys, so a file's bytes do not depend on order)."""
        doc = {
            "format": _FORMAT,
            "kind": self.kind,
            "source_language": self.source_language,
            "target_languages": list(self.target_languages),
            "lang_tags": dict(self.lang_tags),
            "normalize": self.normalize,
            "arch": self.arch,
            "model_kwargs": self.model_kwargs,
            "dataset": self.dataset,
            "tokenizer": self.tokenizer.to_json(),
        }
        try:
            return json.dumps(doc, sort_keys=True, ensure_ascii=False)
        except TypeError as err:
            raise ConfigError(
                f"the model's keywords cannot be stored as JSON ({err}); build it with plain "
                "values (numbers, strings, lists), e.g. act_layer='gelu'"
            ) from err

    @classmethod
    def from_json(cls, text: str, where: str = "the metadata") -> TextSpec:
        from modelzoo.data.tokenizers import SubwordTokenizer

        try:
            doc = json.loads(text)
        except ValueError as err:
            raise WeightsError(f"{where}: {METADATA_KEY} is not JSON ({err})") from err
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise WeightsError(
                f"{where}: {METADATA_KEY} has format {found!r}; this modelzoo reads format "
                f"{_FORMAT}. Upgrade modelzoo, or re-save the weights with save_text_weights"
            )
        try:
            tags = {str(k): int(v) for k, v in doc["lang_tags"].items()}
            spec = cls(
                tokenizer=SubwordTokenizer.from_json(doc["tokenizer"]),
                kind=str(doc["kind"]),
                source_language=str(doc["source_language"]),
                target_languages=[str(x) for x in doc["target_languages"]],
                lang_tags=tags,
                normalize=bool(doc["normalize"]),
                arch=doc.get("arch"),
                model_kwargs=dict(doc.get("model_kwargs") or {}),
                dataset=dict(doc.get("dataset") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as err:
            raise WeightsError(f"{where}: {METADATA_KEY} is incomplete or damaged ({err})") from err
        if spec.kind not in _KINDS:
            raise WeightsError(f"{where}: kind must be one of {_KINDS}; got {spec.kind!r}")
        return spec


# --- building specs ----------------------------------------------------------------------


def _tags_of(tokenizer: Any) -> dict[str, int]:
    """Language tags among the tokenizer's special tokens (``<2de>`` -> ``de``)."""
    tags = {}
    for index in range(4, min(tokenizer.vocab_size, 512)):  # special tokens come first
        token = tokenizer.id_to_token(index)
        match = _TAG.match(token or "")
        if match:
            tags[match.group(1)] = index
    return tags


def text_spec_from_info(
    info: dict[str, Any],
    *,
    arch: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
) -> TextSpec:
    """The :class:`TextSpec` of a model trained on a data bundle with this ``info``
    (``po_translations`` or ``code_summaries``)."""
    tokenizer = info.get("tokenizer")
    if tokenizer is None:
        raise ConfigError(
            "the data gives no tokenizer (info['tokenizer']); text models are trained on "
            "po_translations or code_summaries"
        )
    summarizing = "python_version" in info
    return TextSpec(
        tokenizer=tokenizer,
        kind="summarization" if summarizing else "translation",
        source_language="python" if summarizing else str(info.get("source_language", "en")),
        target_languages=["en"] if summarizing else list(info.get("target_languages", [])),
        lang_tags={k: int(v) for k, v in (info.get("lang_tags") or {}).items()},
        normalize=not summarizing,
        arch=arch,
        model_kwargs=dict(model_kwargs or {}),
        dataset=dict(dataset or {}),
    )


def text_metadata(spec: TextSpec) -> dict[str, str]:
    """The safetensors metadata that carries ``spec`` (one entry, :data:`METADATA_KEY`)."""
    return {METADATA_KEY: spec.to_json()}


def tokenizer_facts(tokenizer: Any) -> dict[str, Any]:
    """What a weight card says about a tokenizer: model type, byte level, vocabulary size,
    special ids and the sha256 of its JSON."""
    doc = json.loads(tokenizer.to_json())
    pre = json.dumps(doc.get("pre_tokenizer"))
    return {
        "library": "tokenizers",
        "model": doc["model"]["type"],
        "byte_level": "ByteLevel" in pre,
        "vocab_size": tokenizer.vocab_size,
        "special_ids": {"pad": 0, "bos": 1, "eos": 2, "unk": 3},
        "placeholders_whole": sum(1 for t in doc.get("added_tokens", []) if not t["special"]),
        "sha256": hashlib.sha256(tokenizer.to_json().encode("utf-8")).hexdigest(),
        "stored_in": f"safetensors metadata {METADATA_KEY!r}",
    }


def save_text_weights(
    model: nn.Module,
    spec: TextSpec,
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model``'s weights as safetensors with ``spec`` in the header.

    The header's metadata entries are written in sorted order, so the same weights and
    spec give the same bytes in every process (safetensors itself writes them from a hash
    map, in an order that changes from process to process).

    Args:
        model: the model.
        spec: its tokenizer and language facts (:func:`text_spec_from_info`).
        path: the file to write.
        dtype: store floating-point tensors in this type (e.g. ``torch.float16`` halves
            the file; loading casts them back to the model's type).
    """
    from modelzoo.utils.io import atomic_write
    from modelzoo.weights import save_weights

    if spec.arch is None:
        spec.arch = getattr(model, "model_name", None)
    if not spec.model_kwargs:
        spec.model_kwargs = dict(getattr(model, "init_kwargs", {}) or {})
    path = Path(path)
    state = model.state_dict()
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_weights(state, path, metadata=text_metadata(spec))
    return atomic_write(path, canonical_safetensors(path.read_bytes()))


def canonical_safetensors(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its header's metadata keys in sorted order.

    The header is re-serialised compactly, as safetensors writes it; when that would not
    give a header of exactly the same length (an unusual writer), ``data`` is returned
    unchanged.
    """
    size = int.from_bytes(data[:8], "little")
    raw = data[8 : 8 + size]
    header = json.loads(raw.decode("utf-8"))
    meta = header.pop("__metadata__", None)
    ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta is not None else {}) | header
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > size:
        return data
    text += b" " * (size - len(text))  # safetensors pads its header with spaces
    if json.loads(text.decode("utf-8")) != json.loads(raw.decode("utf-8")):
        return data
    return data[:8] + text + data[8 + size :]


def read_text_spec(path: str | os.PathLike[str]) -> TextSpec | None:
    """The :class:`TextSpec` stored in a safetensors file, or None when it has none."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise WeightsError(f"{path} is not a readable safetensors file: {err}") from err
    text = meta.get(METADATA_KEY)
    return None if text is None else TextSpec.from_json(text, where=str(path))


# --- loading -------------------------------------------------------------------------------


def _attach(model: nn.Module, spec: TextSpec) -> nn.Module:
    model.text_spec = spec  # what translate() reads; create() keeps its own facts the same way
    return model.eval()


def _spec_from_weights_source(model: nn.Module) -> TextSpec | None:
    """The spec in the file a model was loaded from (``create(...).load_report.source``)."""
    report = getattr(model, "load_report", None)
    source = getattr(report, "source", None)
    if not source:
        return None
    from modelzoo.weights import fetch, get_weight_set, is_tag

    if Path(source).is_file():
        return read_text_spec(source)
    arch, _, tag = str(source).partition(".")
    if tag and is_tag(arch, tag):
        ws = get_weight_set(arch, tag)
        return read_text_spec(fetch(ws.files[0], progress=False))
    return None


def _from_file(path: Path) -> nn.Module:
    import modelzoo

    spec = read_text_spec(path)
    if spec is None or not spec.arch:
        raise WeightsError(
            f"{path} holds weights but no {METADATA_KEY!r} metadata (the tokenizer and the "
            "architecture), so it cannot translate on its own. Use the run directory it came "
            "from, or build the model and pass tokenizer=..."
        )
    model = modelzoo.create(spec.arch, pretrained=str(path), strict=True, **spec.model_kwargs)
    return _attach(model, spec)


def _from_run_dir(run_dir: Path, checkpoint: str | os.PathLike[str] | None) -> nn.Module:
    import modelzoo
    from modelzoo.config import load_recipe
    from modelzoo.data import build_data
    from modelzoo.registry import accepted_kwargs
    from modelzoo.train.checkpoint import evaluation_weights, load_checkpoint

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise CheckpointError(f"{run_dir} has no config.yaml; is it a modelzoo run directory?")
    recipe = load_recipe(config)
    data_kwargs = dict(recipe.data)
    data_name = data_kwargs.pop("name")
    data_kwargs.pop("batch_size", None)
    info = build_data(data_name, **data_kwargs).info  # rebuilds the run's tokenizer (cached)
    kwargs = dict(recipe.model)
    arch = kwargs.pop("name")
    if "vocab_size" in (accepted_kwargs(arch) or set()) and "vocab_size" not in kwargs:
        kwargs["vocab_size"] = info["vocab_size"]  # as the recipe runner passes it
    if checkpoint is None:
        best = run_dir / "checkpoints" / "best.ckpt"
        checkpoint = best if best.is_file() else run_dir / "checkpoints" / "last.ckpt"
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(
            f"{run_dir} has no checkpoint at {checkpoint}; train the run first or pass "
            "checkpoint=PATH"
        )
    model = modelzoo.create(arch, **kwargs)
    try:
        model.load_state_dict(evaluation_weights(load_checkpoint(checkpoint)))
    except RuntimeError as err:
        raise CheckpointError(f"{checkpoint} does not match the run's model: {err}") from err
    spec = text_spec_from_info(
        info, arch=arch, model_kwargs=kwargs, dataset={"name": data_name, **data_kwargs}
    )
    return _attach(model, spec)


def load_text_model(
    source: nn.Module | str | os.PathLike[str],
    *,
    tokenizer: Any = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """A text-to-text model with its :class:`TextSpec` attached as ``model.text_spec``.

    Args:
        source: a model (built from a weight set or file, or any seq2seq model together
            with ``tokenizer``), a weight set name (``transformer_seq2seq.po_en_de``), a
            safetensors file written by :func:`save_text_weights`, or a run directory.
        tokenizer: the tokenizer of a model that carries none; a multilingual model's
            target languages are read from its ``<2xx>`` tokens.
        checkpoint: with a run directory, the checkpoint to read (default best.ckpt,
            else last.ckpt).

    Raises:
        ConfigError: nothing says how to turn text into the model's ids.
        WeightsError: a weights file without the metadata, or with damaged metadata.
        CheckpointError: a run directory without config.yaml or checkpoint.
    """
    if isinstance(source, nn.Module):
        model = source
        if tokenizer is not None:
            spec = TextSpec(tokenizer=tokenizer, lang_tags=_tags_of(tokenizer))
            spec.target_languages = sorted(spec.lang_tags)
            return _attach(model, spec)
        spec = getattr(model, "text_spec", None) or _spec_from_weights_source(model)
        if spec is None:
            raise ConfigError(
                f"{type(model).__name__} carries no tokenizer: build it from a weight set or "
                "file (mz.create('transformer_seq2seq.po_en_de')), pass a run directory, or "
                "pass tokenizer=info['tokenizer'] of the data it was trained on"
            )
        return _attach(model, spec)
    path = Path(os.fspath(source))
    if path.is_dir():
        model = _from_run_dir(path, checkpoint)
    elif path.is_file():
        model = _from_file(path)
    else:
        import modelzoo

        text = os.fspath(source)
        if os.sep in text or "/" in text or text.endswith((".safetensors", ".ckpt")):
            raise ConfigError(
                f"no file or run directory at {text}; pass a run directory, a weights file "
                "or a weight set name (arch.tag, e.g. transformer_seq2seq.po_en_de)"
            )
        model = modelzoo.create(text)  # an unknown name raises, listing close matches
        spec = _spec_from_weights_source(model)
        if spec is None:
            raise ConfigError(
                f"{text} has no tokenizer in its weights; it is not a text-to-text weight set"
            )
        model = _attach(model, spec)
    if tokenizer is not None:
        model.text_spec.tokenizer = tokenizer
    return model


# --- decoding -----------------------------------------------------------------------------


def _normalize(text: str) -> str:
    from modelzoo.data.po_translations import normalize_text

    return normalize_text(text)


def _target_prefix(spec: TextSpec, target: str | None) -> list[int]:
    if spec.kind != "translation":
        if target not in (None, "en"):
            raise ConfigError(f"a {spec.kind} model writes English; got target={target!r}")
        return []
    if not spec.multilingual:
        own = spec.target_languages
        if target is not None and own and _lang_key(target) not in {_lang_key(t) for t in own}:
            raise ConfigError(
                f"this model translates {spec.source_language} -> {', '.join(own)} only; got "
                f"target={target!r}. Use a multilingual model (transformer_seq2seq.po_multi) "
                "or one trained for that language"
            )
        return []
    if target is None:
        raise ConfigError(
            f"this multilingual model needs a target language; pass target= one of "
            f"{', '.join(sorted(spec.lang_tags))}"
        )
    by_key = {_lang_key(lang): lang for lang in spec.lang_tags}
    lang = by_key.get(_lang_key(target))
    if lang is None:
        raise ConfigError(
            f"this model does not translate into {target!r}; it knows "
            f"{', '.join(sorted(spec.lang_tags))}"
        )
    return [spec.lang_tags[lang]]


def _lang_key(code: str) -> str:
    return code.replace("-", "_").lower()


@torch.no_grad()
def generate_text(
    model: nn.Module,
    texts: Sequence[str],
    *,
    prefix: Sequence[int] = (),
    beam_size: int = 4,
    length_penalty: float = 1.0,
    max_len: int | None = None,
    batch_size: int = 32,
    max_src_len: int | None = None,
) -> list[str]:
    """Decode ``texts`` with a model that has a ``text_spec`` (see :func:`load_text_model`).

    Args:
        model: the model, with ``model.text_spec``.
        texts: the inputs.
        prefix: ids put before every source (a target-language tag).
        beam_size: hypotheses kept per input (1: greedy).
        length_penalty: beam search ranks finished outputs by log-probability /
            length ** length_penalty.
        max_len: the most tokens per output (default: twice the input's plus 10, capped
            by the model's ``max_len``).
        batch_size: inputs decoded together (sorted by length, so padding stays small).
        max_src_len: cut longer inputs to this many tokens (summaries of long code);
            default: refuse inputs longer than the model accepts.

    Raises:
        InputShapeError: an input is longer than the model accepts.
    """
    from modelzoo.train.tasks.seq2seq import Seq2SeqTask

    spec: TextSpec = model.text_spec
    if isinstance(texts, str):
        raise ConfigError("texts must be a list of strings; wrap a single text: [text]")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ConfigError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    tok = spec.tokenizer
    inputs = [_normalize(t) if spec.normalize else t for t in texts]
    encoded = [list(prefix) + ids for ids in tok.encode_batch(inputs)] if inputs else []
    limit = getattr(model, "max_len", None)
    eos = [tok.eos_id]
    rows = []
    for i, ids in enumerate(encoded):
        if max_src_len is not None and len(ids) + 1 > max_src_len:
            ids = ids[: max_src_len - 1]
        if isinstance(limit, int) and len(ids) + 1 > limit:
            raise InputShapeError(
                f"text {i} is {len(ids) + 1} tokens long but the model reads at most {limit}; "
                "split it into sentences, or pass max_src_len to cut it"
            )
        rows.append(ids + eos)
    task = Seq2SeqTask(
        model,
        pad_id=tok.pad_id,
        bos_id=tok.bos_id,
        eos_id=tok.eos_id,
        beam_size=beam_size,
        length_penalty=length_penalty,
        max_decode_len=max_len,
        text_metrics=[],
    )
    was_training = model.training
    model.eval()
    out: list[str] = [""] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    device = model_device(model)
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(rows[i]) for i in chunk)
            src = torch.full((len(chunk), width), tok.pad_id, dtype=torch.long)
            for r, i in enumerate(chunk):
                src[r, : len(rows[i])] = torch.tensor(rows[i])
            src = src.to(device)
            ids = task.decode(src, task.decode_length(src))
            for r, i in enumerate(chunk):
                out[i] = tok.decode(ids[r].tolist()).strip()
    finally:
        model.train(was_training)
    return out


def translate(
    model: nn.Module | str | os.PathLike[str],
    texts: Sequence[str],
    target: str | None = None,
    *,
    beam_size: int = 4,
    length_penalty: float = 1.0,
    max_len: int | None = None,
    batch_size: int = 32,
    tokenizer: Any = None,
) -> list[str]:
    """Translate English ``texts`` into ``target``.

    Args:
        model: a model built from a weight set or file, a weight set name
            (``transformer_seq2seq.po_en_de``, ``transformer_seq2seq.po_multi``), a weights
            file, or a run directory (see :func:`load_text_model`).
        texts: the English strings (a list; placeholders such as ``%(count)d`` and
            ``{name}`` are copied as units by the shipped models).
        target: the target language (``"de"``, ``"pt_BR"``); required by a multilingual
            model, checked against a bilingual one.
        beam_size: beams of the search (1: greedy).
        length_penalty: beam search's length normalisation exponent.
        max_len: the most tokens per translation (default: twice the source's plus 10).
        batch_size: sentences decoded together.
        tokenizer: for a model that carries none (trained in Python): the data's
            ``info["tokenizer"]``.

    Returns:
        One translation per text, in order.

    Raises:
        ConfigError: an unknown target language, or a model without a tokenizer.
        InputShapeError: a text longer than the model reads.
    """
    loaded = load_text_model(model, tokenizer=tokenizer)
    spec: TextSpec = loaded.text_spec
    if spec.kind != "translation":
        raise ConfigError(
            f"this model does {spec.kind}, not translation; use modelzoo.summarize.summarize"
        )
    prefix = _target_prefix(spec, target)
    return generate_text(
        loaded,
        texts,
        prefix=prefix,
        beam_size=beam_size,
        length_penalty=length_penalty,
        max_len=max_len,
        batch_size=batch_size,
    )


# --- measuring -------------------------------------------------------------------------------


@dataclass
class TranslationScores:
    """A model's translations of one split of ``po_translations`` and their scores.

    Attributes:
        language: the target language.
        split: ``"val"`` or ``"test"``.
        sources: the split's distinct English sources (``reference_sets`` order).
        outputs: one translation per source.
        bleu: corpus BLEU (sacrebleu) against all human references of each source.
        chrf: corpus chrF (sacrebleu), same references.
        bleu_signature: sacrebleu's signature of ``bleu`` (tokenizer, references, version).
        chrf_signature: sacrebleu's signature of ``chrf``.
        placeholders: :class:`~modelzoo.metrics.translation.PlaceholderReport` of the outputs.
    """

    language: str
    split: str
    sources: list[str]
    outputs: list[str]
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    placeholders: Any

    def metrics(self) -> dict[str, float]:
        """The figures, as a card or a results file states them."""
        p = self.placeholders
        return {
            "bleu": self.bleu,
            "chrf": self.chrf,
            "placeholder_rate": p.rate,
            "placeholder_recall": p.recall,
            "placeholders_invented": float(p.invented),
            "sentences_with_placeholders": float(p.sentences),
            "sentences": float(len(self.sources)),
        }


def score_translations(
    language: str, split: str, sources: Sequence[str], outputs: Sequence[str]
) -> TranslationScores:
    """Score ``outputs`` (translations of ``sources``, a split's distinct sources in
    :func:`~modelzoo.data.po_translations.reference_sets` order) against the corpus's
    human references, with sacrebleu's tokenizer for ``language`` (``zh`` for Chinese,
    characters for Japanese, Korean and Thai, ``13a`` otherwise)."""
    from modelzoo.data.po_translations import reference_sets
    from modelzoo.metrics.translation import placeholder_report, sacrebleu_scores

    expected, references = reference_sets(f"en-{language}", split)
    if list(sources) != expected:
        raise ConfigError(
            f"the sources are not the en-{language} {split} split of po_translations (expected "
            f"{len(expected)} sources in reference_sets order, got {len(sources)})"
        )
    scores = sacrebleu_scores(list(outputs), references, target_language=language)
    return TranslationScores(
        language=language,
        split=split,
        sources=list(sources),
        outputs=list(outputs),
        bleu=scores.bleu,
        chrf=scores.chrf,
        bleu_signature=scores.bleu_signature,
        chrf_signature=scores.chrf_signature,
        placeholders=placeholder_report(list(sources), list(outputs)),
    )


def evaluate_translation(
    model: nn.Module | str | os.PathLike[str],
    language: str,
    split: str = "test",
    *,
    beam_size: int = 4,
    length_penalty: float = 1.0,
    batch_size: int = 32,
    tokenizer: Any = None,
) -> TranslationScores:
    """Translate every distinct English source of a ``po_translations`` split into
    ``language`` and score the result (:func:`score_translations`).

    Every source of the split is translated, including those longer than the training
    recipe kept (``data.max_len``): the score is that of the whole split.
    """
    from modelzoo.data.po_translations import reference_sets

    sources, _ = reference_sets(f"en-{language}", split)
    outputs = translate(
        model,
        sources,
        target=language,
        beam_size=beam_size,
        length_penalty=length_penalty,
        batch_size=batch_size,
        tokenizer=tokenizer,
    )
    return score_translations(language, split, sources, outputs)
