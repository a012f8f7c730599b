"""Predict: class names and probabilities for images and audio, prepared as the card says.

    import modelzoo as mz
    model = mz.create("resnet20.digits")
    mz.predict(model, ["seven.png", "digits/"], top_k=3)
    # [[("7", 0.98), ("1", 0.01), ("9", 0.004)], ...]   one list per image, folders expanded

    mz.predict("resnet50.tv2_in1k", "cat.jpg")          # a name: the model is loaded first

Images are read with Pillow (turned upright by their EXIF orientation, as a viewer shows
them), prepared with :func:`modelzoo.transforms` for the model (its card: size, crop,
interpolation, mean/std, channels), run in batches under ``torch.inference_mode``, and
scored with a softmax. The class names come from the card (``label_names``); a model
whose card names none, or whose head has another number of outputs than the card has
names, gets its class indices as labels (with a warning).

What a model can be loaded from (:func:`load_model`): a weight set (``resnet50.tv2_in1k``,
``resnet20.digits``), an architecture (its default weight set), ``timm/``/``torchvision/``
names with weights, a ``save_pretrained`` folder (its ``config.json`` ``pretrained_cfg``
or ``model_card.json`` ``input_spec`` says how inputs are prepared) and a run directory
(``config.yaml`` and ``checkpoints/``: its best checkpoint, else the last; a fine-tune run's
``model/`` folder when there is one).

Inputs are routed by kind at one place (:func:`input_kind`) to their preprocessing
(``_PREPROCESSORS``): images as above, ``.wav`` files as audio::

    mz.predict("audio_cnn.spoken_words", "clip.wav", top_k=3)
    # [[("seven", 0.97), ("eleven"...)]]    a keyword spotter: the top-k words
    mz.predict("ctc_lstm.spoken_digits", ["call.wav", "recordings/"])
    # [[("four one seven", 0.91), ...], ...]  a CTC recognizer: the top-k transcripts

Audio is read with soundfile, mixed down to mono and resampled to the model's sample rate
(``modelzoo.data.audio.load_audio``). A classifier trained on fixed-length clips (its
card's ``num_samples``) gets a clip of that length: the loudest window of a longer
recording (where the word is), or a shorter one zero-padded on both sides. A CTC
recognizer gets the whole recording and answers with the most probable transcripts of a
prefix beam search, each with the probability the model gives it (summed over its
alignments); the transcript is written with the card's ``tokens`` (e.g. digit ids as
words).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.errors import CheckpointError, ConfigError, ModelzooError
from modelzoo.utils.devices import model_device

__all__ = [
    "predict",
    "iter_predictions",
    "load_model",
    "expand_inputs",
    "input_kind",
    "IMAGE_EXTENSIONS",
    "AUDIO_EXTENSIONS",
]

_logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
AUDIO_EXTENSIONS = (".wav",)
Prediction = list[tuple[str, float]]
# Builder keywords a run's model takes from its data's facts when its recipe leaves them out
# (modelzoo.train.recipes does the same when it builds the run's model).


# --- inputs -----------------------------------------------------------------------------------


def input_kind(path: str | os.PathLike[str]) -> str:
    """``"image"`` or ``"audio"``: the one place an input file is routed by its kind.

    Raises:
        ConfigError: a file of neither kind (the message lists the extensions taken).
    """
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    raise ConfigError(
        f"{path}: cannot predict from a {suffix or 'extension-less'} file; pass images "
        f"({', '.join(IMAGE_EXTENSIONS)}), audio ({', '.join(AUDIO_EXTENSIONS)}) or folders "
        "of them"
    )


def _folder_files(folder: Path) -> list[Path]:
    from modelzoo.registry import natural_key

    files = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS + AUDIO_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: natural_key(str(p.relative_to(folder))))


def expand_inputs(inputs: Any) -> list[tuple[str, Any]]:
    """``(name, item)`` for every input: files as paths, folders as their files, images as is.

    Args:
        inputs: a path (an image file or a folder, searched recursively in natural order,
            hidden files skipped), a PIL image, a ``(C, H, W)`` tensor or a ``(B, C, H, W)``
            batch, or a list of these.

    Raises:
        ConfigError: a path that does not exist, a folder without images, a file that is
            no image, or an input of another type.
    """
    from PIL import Image

    items: list[tuple[str, Any]] = []
    pending = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    for value in pending:
        if isinstance(value, (str, os.PathLike)):
            path = Path(value).expanduser()
            if path.is_dir():
                files = _folder_files(path)
                if not files:
                    raise ConfigError(
                        f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)}) and no audio "
                        f"({', '.join(AUDIO_EXTENSIONS)}), also not in its subfolders"
                    )
                items.extend((str(f), f) for f in files)
            elif path.is_file():
                input_kind(path)  # refuses other files before anything is loaded
                items.append((str(value), path))
            else:
                raise ConfigError(f"no file or folder at {path} (relative to {Path.cwd()})")
        elif isinstance(value, Image.Image):
            items.append((f"<image {len(items)}>", value))
        elif isinstance(value, torch.Tensor):
            if value.ndim == 4:
                items.extend((f"<image {len(items) + i}>", v) for i, v in enumerate(value))
            elif value.ndim == 3:
                items.append((f"<image {len(items)}>", value))
            elif value.ndim == 2:  # (H, W): one grey image
                items.append((f"<image {len(items)}>", value.unsqueeze(0)))
            else:
                raise ConfigError(
                    f"a tensor input must be an image (C, H, W) or a batch (B, C, H, W); got "
                    f"shape {tuple(value.shape)}"
                )
        else:
            raise ConfigError(
                "predict() takes image files, folders, PIL images or image tensors; got "
                f"{type(value).__name__}"
            )
    return items


def _open_image(path: Path) -> Any:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image)  # as a viewer shows the photo
            upright.load()
            return upright
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path} as an image: {err}") from err


def _image_preprocessor(model: nn.Module) -> Callable[[Any], torch.Tensor]:
    from modelzoo.transforms import transforms

    pipeline = transforms(model)

    def prepare(item: Any) -> torch.Tensor:
        if isinstance(item, Path):
            item = _open_image(item)
        return pipeline(item)

    return prepare


def audio_spec(model: nn.Module) -> dict[str, Any]:
    """How audio is prepared for ``model``, and how a recognizer's tokens are written.

    Read from the model's ``pretrained_cfg``: its ``audio`` entry (a run directory's), else
    the ``input_spec`` of the weight set it names; the model's own ``sample_rate`` fills
    what neither states.

    Returns:
        ``sample_rate``, ``num_samples`` (the clip length a classifier was trained on, or
        None: whole recordings), and for recognizers ``tokens`` (the text of each id, or
        None), ``separator`` and ``blank_id``.

    Raises:
        ConfigError: the model states no sample rate.
    """
    cfg = getattr(model, "pretrained_cfg", None)
    cfg = cfg if isinstance(cfg, Mapping) else {}
    facts: Mapping[str, Any] = cfg.get("audio") or {}
    if not facts and cfg.get("architecture") and cfg.get("tag"):
        from modelzoo.weights import get_weight_set

        try:
            facts = get_weight_set(cfg["architecture"], cfg["tag"]).input_spec
        except ModelzooError as err:
            _logger.debug("no card for %s.%s: %s", cfg["architecture"], cfg["tag"], err)
    rate = facts.get("sample_rate") or getattr(model, "sample_rate", None)
    if not rate:
        name = getattr(model, "model_name", None) or type(model).__name__
        raise ConfigError(
            f"{name} states no sample rate, so audio cannot be prepared for it; predict .wav "
            "files with an audio model of the zoo (e.g. audio_cnn.spoken_words)"
        )
    tokens = facts.get("tokens") or facts.get("itos")
    return {
        "sample_rate": int(rate),
        "num_samples": int(facts["num_samples"]) if facts.get("num_samples") else None,
        "tokens": [str(t) for t in tokens] if tokens else None,
        "separator": str(facts.get("separator", "" if facts.get("itos") else " ")),
        "blank_id": int(facts.get("blank_id", 0)),
    }


def fit_clip(wave: torch.Tensor, num_samples: int) -> torch.Tensor:
    """A recording cut or padded to ``num_samples``: the loudest window of a longer one (a
    keyword clip holds the word somewhere), a shorter one zero-padded on both sides.

    Args:
        wave: (N,) samples.
        num_samples: the clip length the model was trained on.
    """
    n = wave.shape[-1]
    if n == num_samples:
        return wave
    if n < num_samples:
        before = (num_samples - n) // 2
        return torch.nn.functional.pad(wave, (before, num_samples - n - before))
    energy = torch.cat([wave.new_zeros(1), wave.double().square().cumsum(0)])
    window = energy[num_samples:] - energy[:-num_samples]  # energy of each window start
    start = int(window.argmax())
    return wave[start : start + num_samples]


def _audio_preprocessor(model: nn.Module) -> Callable[[Any], torch.Tensor]:
    from modelzoo.data.audio import load_audio

    spec = audio_spec(model)

    def prepare(item: Any) -> torch.Tensor:
        wave = load_audio(item, spec["sample_rate"])
        if wave.numel() == 0:
            raise ConfigError(f"{item} holds no audio samples")
        if spec["num_samples"] is not None and not is_recognizer(model):
            wave = fit_clip(wave, spec["num_samples"])
        return wave

    return prepare


def is_recognizer(model: nn.Module) -> bool:
    """Whether ``model`` is a CTC speech recognizer (it returns ``CTCOutput``), by its
    registered task or, for models outside the registry, by its class."""
    from modelzoo.models.audio import CTCLSTM, ConformerCTC, Wav2Vec2

    name = getattr(model, "model_name", None)
    if name:
        from modelzoo.registry import model_card

        try:
            return model_card(name).task == "speech_recognition"
        except ModelzooError:
            pass
    return isinstance(model, (CTCLSTM, ConformerCTC, Wav2Vec2))


# kind -> (model -> a function that turns one input into the model's input tensor).
_PREPROCESSORS: dict[str, Callable[[nn.Module], Callable[[Any], torch.Tensor]]] = {
    "image": _image_preprocessor,
    "audio": _audio_preprocessor,
}


def _kind_of(item: Any) -> str:
    return input_kind(item) if isinstance(item, Path) else "image"


def _preprocessor(model: nn.Module, kind: str) -> Callable[[Any], torch.Tensor]:
    factory = _PREPROCESSORS.get(kind)
    if factory is None:
        raise ConfigError(
            f"predict() does not take {kind} inputs; it takes images "
            f"({', '.join(IMAGE_EXTENSIONS)}) and audio ({', '.join(AUDIO_EXTENSIONS)})"
        )
    return factory(model)


# --- labels -----------------------------------------------------------------------------------


def _labels(model: nn.Module, num_outputs: int) -> list[str]:
    from modelzoo.transforms import resolve_pretrained_cfg

    name = getattr(model, "model_name", None) or type(model).__name__
    try:
        names = resolve_pretrained_cfg(model).get("label_names")
    except ModelzooError:
        names = None
    if names and len(names) == num_outputs:
        return [str(n) for n in names]
    if names:
        _logger.warning(
            "%s has %d outputs but its card names %d classes (its head was changed); "
            "labelling the outputs by index",
            name,
            num_outputs,
            len(names),
        )
    else:
        _logger.warning("%s's card names no classes; labelling the outputs by index", name)
    return [str(i) for i in range(num_outputs)]


# --- prediction -------------------------------------------------------------------------------


def iter_predictions(
    model: nn.Module | str | os.PathLike[str],
    inputs: Any,
    top_k: int = 5,
    *,
    batch_size: int = 32,
    labels: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> Iterator[tuple[str, Prediction]]:
    """``(input name, [(label, probability), ...])`` per input, computed batch by batch.

    The generator form of :func:`predict` (the same arguments): results come as each
    batch is done, so a folder of thousands of images needs memory for one batch only.
    Input names are file paths as given (folders expanded), or ``<image N>`` for images
    passed as objects.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be an integer >= 1, got {top_k!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, device=device)
    elif device is not None:
        model = model.to(device)
    items = expand_inputs(inputs)
    kinds = {_kind_of(item) for _, item in items}
    prepare = {kind: _preprocessor(model, kind) for kind in sorted(kinds)}
    device = model_device(model)
    # A recognizer answers with transcripts; they are not classes, so labels do not apply.
    transcribe = "audio" in kinds and is_recognizer(model)
    if transcribe and labels is not None:
        raise ConfigError("labels name a classifier's classes; a speech recognizer has none")
    was_training = model.training
    model.eval()
    bar = None
    if progress:
        from modelzoo.train.run import progress_bar

        unit = "image" if kinds == {"image"} else "file"
        bar = progress_bar(len(items), unit=unit, desc="predict")
    names = None if labels is None else [str(label) for label in labels]
    try:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            tensors = [prepare[_kind_of(item)](item) for _, item in chunk]
            if transcribe:
                found = _transcribe(model, tensors, top_k, device)
                yield from zip([name for name, _ in chunk], found, strict=True)
                if bar is not None:
                    bar.update(len(chunk))
                continue
            shapes = {tuple(t.shape) for t in tensors}
            if len(shapes) > 1 and "audio" not in kinds:
                raise ConfigError(
                    f"the prepared inputs differ in shape ({sorted(shapes)}); the model's "
                    "preprocessing must give every input the same size"
                )
            with torch.inference_mode():
                if len(shapes) > 1:  # whole recordings of several lengths: one at a time
                    logits = torch.cat([model(t[None].to(device)) for t in tensors])
                else:
                    logits = model(torch.stack(tensors).to(device))
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                raise ConfigError(
                    f"predict() needs a classifier that returns (batch, classes) scores; "
                    f"{getattr(model, 'model_name', type(model).__name__)} returned "
                    f"{type(logits).__name__}"
                    + (f" of shape {tuple(logits.shape)}" if hasattr(logits, "shape") else "")
                )
            if names is None:
                names = _labels(model, logits.shape[1])
            elif len(names) != logits.shape[1]:
                raise ConfigError(
                    f"labels names {len(names)} classes but the model has {logits.shape[1]} outputs"
                )
            probs = logits.float().softmax(dim=1)
            values, indices = probs.topk(min(top_k, probs.shape[1]), dim=1)
            for (name, _), row_v, row_i in zip(chunk, values.tolist(), indices.tolist()):
                yield name, [(names[i], float(v)) for v, i in zip(row_v, row_i)]
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)


def _transcribe(
    model: nn.Module, waves: list[torch.Tensor], top_k: int, device: torch.device
) -> list[Prediction]:
    """The ``top_k`` transcripts of each waveform by prefix beam search, with probabilities."""
    from modelzoo.train.tasks.ctc import beam_search, tokens_to_text

    spec = audio_spec(model)
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)  # zeros after each one
    with torch.inference_mode():
        out = model(batch.to(device), lengths.to(device))
    log_probs = getattr(out, "log_probs", None)
    if not isinstance(log_probs, torch.Tensor) or log_probs.ndim != 3:
        raise ConfigError(
            f"{getattr(model, 'model_name', type(model).__name__)} returned "
            f"{type(out).__name__}, not CTCOutput(log_probs, lengths); predict() transcribes "
            "with CTC recognizers (ctc_lstm, conformer_ctc, wav2vec2_base with a head)"
        )
    tokens = spec["tokens"]
    if tokens is None:
        _logger.warning("the model's card names no tokens; writing the transcripts as token ids")
        tokens = [str(i) for i in range(log_probs.shape[-1])]
        separator = " "
    else:
        separator = spec["separator"]
        if len(tokens) != log_probs.shape[-1]:
            raise ConfigError(
                f"the card names {len(tokens)} tokens but the model scores "
                f"{log_probs.shape[-1]}; its head was changed after the card was written"
            )
    beams = beam_search(log_probs, out.lengths, beam_size=max(8, top_k), blank=spec["blank_id"])
    results: list[Prediction] = []
    for hyps in beams:
        merged: dict[str, float] = {}
        for ids, score in hyps:  # prefixes that write the same text share its probability
            text = tokens_to_text(ids, tokens, separator)
            merged[text] = merged.get(text, 0.0) + math.exp(score)
        ranked = sorted(merged.items(), key=lambda kv: -kv[1])
        results.append(ranked[:top_k])
    return results


def predict(
    model: nn.Module | str | os.PathLike[str],
    images_or_paths: Any,
    top_k: int = 5,
    *,
    batch_size: int = 32,
    labels: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> list[Prediction]:
    """The ``top_k`` classes of each input, with their probabilities.

    Args:
        model: a classifier or CTC speech recognizer made by ``modelzoo.create`` (or
            loaded by ``from_pretrained``), or anything :func:`load_model` takes:
            ``"arch.tag"``, a folder, a run directory.
        images_or_paths: an image or ``.wav`` file, a folder of them (recursive, natural
            order), a PIL image, a ``(C, H, W)`` or grey ``(H, W)`` tensor (uint8 0..255 or
            float 0..1), a ``(B, C, H, W)`` batch, or a list of these.
        top_k: how many classes (or, for a recognizer, transcripts) per input, most
            probable first.
        batch_size: inputs per forward pass.
        labels: class names to use instead of the card's.
        device: where to run the model (default: where its parameters are).
        progress: show a progress bar on stderr.

    Returns:
        One list of ``(label, probability)`` per input, in input order (a folder counts
        as its files); for a recognizer the labels are transcripts.

    Raises:
        ConfigError: an input that cannot be read, a model that is no classifier or whose
            preprocessing is unknown (the message says what to pass).
    """
    return [
        preds
        for _, preds in iter_predictions(
            model,
            images_or_paths,
            top_k,
            batch_size=batch_size,
            labels=labels,
            device=device,
            progress=progress,
        )
    ]


# --- loading ----------------------------------------------------------------------------------


def load_model(
    source: str | os.PathLike[str], *, device: str | torch.device | None = None
) -> nn.Module:
    """A model ready for :func:`predict`, in eval mode, with its ``pretrained_cfg``.

    Args:
        source: a weight set (``"resnet50.tv2_in1k"``, ``"resnet20.digits"``), an
            architecture with weight sets (its default one), ``"timm/<arch>[.<tag>]"`` or
            ``"torchvision/<arch>[.<WEIGHTS>]"`` (the library's weights), a
            ``save_pretrained`` folder, or a run directory.
        device: where to put the model (default CPU).

    Raises:
        ConfigError: a folder that is neither kind, a run without checkpoints.
        WeightsError: no such weights; offline without them (the message says where
            to put the file).
    """
    import modelzoo
    from modelzoo.registry import EXTERNAL_PREFIXES, HUB_PREFIX, split_name

    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        model = _load_directory(path)
    elif text.startswith(HUB_PREFIX):  # the repo's config.json says how inputs are prepared
        model = modelzoo.create(text)
    elif text.startswith(EXTERNAL_PREFIXES):
        model = modelzoo.create(text, pretrained=True)
    else:
        arch, tag = split_name(text)
        model = modelzoo.create(text, pretrained=True if tag is None else False)
        if getattr(model, "pretrained_cfg", None) is None:
            from modelzoo.registry import resolve_weight_set
            from modelzoo.transforms import pretrained_cfg

            model.pretrained_cfg = pretrained_cfg(resolve_weight_set(arch, tag or True))
    if device is not None:
        model = model.to(device)
    return model.eval()


def _load_directory(path: Path) -> nn.Module:
    from modelzoo.transforms import folder_pretrained_cfg

    for folder in (path, path / "model"):  # a fine-tune run keeps its model in model/
        if (folder / "config.json").is_file():
            from modelzoo.weights.pretrained import from_pretrained

            model = from_pretrained(folder)
            cfg = folder_pretrained_cfg(folder)
            if cfg is not None:
                model.pretrained_cfg = cfg
            return model
    if (path / "config.yaml").is_file():
        return _load_run(path)
    raise ConfigError(
        f"{path} holds neither config.json (a save_pretrained folder) nor config.yaml and "
        "checkpoints/ (a run directory); pass a weight set such as resnet50.tv2_in1k or one "
        "of those folders"
    )


def _load_run(run_dir: Path) -> nn.Module:
    """The model of a run directory with its best (else last) checkpoint's evaluated weights."""
    import modelzoo
    from modelzoo.config import load_recipe
    from modelzoo.data import build_data
    from modelzoo.registry import split_name

    checkpoints = run_dir / "checkpoints"
    found = [checkpoints / n for n in ("best.ckpt", "last.ckpt") if (checkpoints / n).is_file()]
    if not found:
        raise CheckpointError(
            f"{run_dir} is a run directory without checkpoints/best.ckpt or last.ckpt; "
            f"train it first (modelzoo resume {run_dir})"
        )
    recipe = load_recipe(run_dir / "config.yaml")
    from modelzoo.train.recipes import data_options

    data_name, data = data_options(recipe)
    try:
        # The data's facts (classes, channels, size) complete the model's arguments and
        # name the classes, as when the run was trained.
        bundle = build_data(data_name, **data)
    except ConfigError as err:
        raise ConfigError(
            f"{run_dir}: predict rebuilds the run's data ({data_name}) to learn its classes "
            f"and input size, and that failed: {err}"
        ) from err
    info = dict(bundle.info)
    from modelzoo.train.recipes import model_kwargs

    name, kwargs = model_kwargs(recipe, info)
    name = split_name(str(name))[0]
    kwargs.pop("pretrained", None)  # the checkpoint replaces what the run started from
    from modelzoo.train.checkpoint import evaluation_weights, load_checkpoint

    model = modelzoo.create(name, **kwargs)
    state = load_checkpoint(found[0])
    try:
        # The weights the run evaluated (its EMA copy when it kept one), every tensor of them:
        # a mismatch is an error, not a silently re-initialized layer.
        model.load_state_dict(evaluation_weights(state))
    except RuntimeError as err:
        raise CheckpointError(
            f"{found[0]} does not fit the model its run's config.yaml builds "
            f"({name}, {kwargs}): {err}"
        ) from err
    model.pretrained_cfg = _run_cfg(data_name, data, info, found[0])
    if "sample_rate" in info:
        model.pretrained_cfg["audio"] = _run_audio_facts(info, recipe.task)
    return model


def _run_audio_facts(info: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    """An audio run's preprocessing (sample rate, clip length) and, for a recognizer, how its
    tokens are written: the recipe's ``task.tokens`` when it names them, else the data's
    ``itos`` (the blank written as nothing)."""
    facts: dict[str, Any] = {"sample_rate": int(info["sample_rate"])}
    if info.get("num_samples"):
        facts["num_samples"] = int(info["num_samples"])
    blank = int(info.get("blank_id", task.get("blank_id", 0)))
    if task.get("tokens"):
        facts["tokens"] = [str(t) for t in task["tokens"]]
        facts["separator"] = str(task.get("separator", ""))
    elif info.get("itos"):
        facts["tokens"] = ["" if i == blank else str(t) for i, t in enumerate(info["itos"])]
        facts["separator"] = ""
    facts["blank_id"] = blank
    return facts


def _run_cfg(
    data_name: str, data: Mapping[str, Any], info: Mapping[str, Any], checkpoint: Path
) -> dict[str, Any]:
    from modelzoo.transforms import pretrained_cfg

    recorded = info.get("preprocessing")  # an image folder prepared with a card's pipeline
    spec: dict[str, Any] = dict(recorded) if isinstance(recorded, Mapping) else {}
    if not spec and "img_size" in info:
        chans = int(info.get("in_chans", 1))
        spec = {
            "img_size": int(info["img_size"]),
            "in_chans": chans,
            "flatten": bool(data.get("flatten", False)),
            "mean": [0.0] * chans,
            "std": [1.0] * chans,
            "interpolation": "bilinear",
        }
    spec["dataset"] = data_name
    classes = data.get("classes")
    labels = info.get("classes") or (
        sorted(classes) if classes else list(range(int(info.get("num_classes", 0))))
    )
    if labels:
        spec["labels"] = [str(c) for c in labels]
    cfg = pretrained_cfg(spec)
    cfg["source"] = str(checkpoint)
    return cfg
