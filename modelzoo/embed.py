"""Latent vectors of any encoder in the zoo: ``mz.embed(model, data)``.

    import modelzoo as mz
    from modelzoo.data import build_data

    test = build_data("digits").test
    z = mz.embed("conv_autoencoder.digits", test)              # (359, 16) autoencoder codes
    z, y = mz.embed(mz.create("vae.digits"), test, return_labels=True)   # the posterior means
    f = mz.embed("resnet20.digits", build_data("digits", img_size=16).test)  # pre-logit features

What a model's latent is, in this order:

1. a classifier (``forward_features`` and ``forward_head``): the pooled pre-logit
   features, ``forward_head(forward_features(x), pre_logits=True)`` (timm's convention;
   the vector its linear classifier reads);
2. a model with ``encode(x)``: an autoencoder's code; for a VAE the posterior mean
   (the ``mu`` of its ``LatentGaussian``); for a sequence encoder (seq2seq, Conformer)
   its per-step outputs averaged over the steps.

The model runs in eval mode without gradients (its mode is restored afterwards),
batch by batch, and the latents come back as one float32 CPU tensor (N, D).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from modelzoo.errors import ConfigError

__all__ = ["embed", "embedding_kind"]

_logger = logging.getLogger(__name__)


def embedding_kind(model: nn.Module) -> str:
    """Which latent ``embed`` reads from ``model``: ``"features"`` or ``"encode"``.

    Raises:
        ConfigError: the model has neither a classifier's feature interface nor ``encode``.
    """
    if callable(getattr(model, "forward_features", None)) and callable(
        getattr(model, "forward_head", None)
    ):
        return "features"
    if callable(getattr(model, "encode", None)):
        return "encode"
    name = getattr(model, "model_name", type(model).__name__)
    raise ConfigError(
        f"{name} has no encoder to embed with: mz.embed reads the code of autoencoders and "
        "VAEs (.encode), the pre-logit features of classifiers (.forward_features and "
        ".forward_head) and the outputs of sequence encoders (.encode). "
        f"{type(model).__name__} has none of them; for a GAN, embed with its discriminator's "
        "features or a classifier instead."
    )


def _latent_of(output: Any) -> torch.Tensor:
    """The (B, D) latent in whatever ``encode`` returned."""
    mu = getattr(output, "mu", None)  # a VAE's LatentGaussian(mu, logvar)
    if isinstance(mu, torch.Tensor):
        return mu
    if isinstance(output, (tuple, list)):
        tensors = [t for t in output if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not tensors:
            raise ConfigError("the model's encode() returned no floating-point tensor to embed")
        output = tensors[0]  # (memory, mask, state) / (outputs, lengths): the outputs first
    if not isinstance(output, torch.Tensor):
        raise ConfigError(
            f"the model's encode() returned a {type(output).__name__}; mz.embed needs a tensor, "
            "a tuple starting with one, or an object with .mu"
        )
    if output.ndim == 3:  # (B, T, D) per-step outputs of a sequence encoder
        return output.mean(dim=1)
    if output.ndim > 2:
        return output.flatten(1)
    return output


def _batches(data: Any, batch_size: int) -> Iterable[tuple[Any, Any]]:
    """(inputs, labels or None) per batch, from tensors, arrays, datasets or loaders."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size], None
        return
    if isinstance(data, (TensorDataset, Subset)) and _tensor_backed(data):
        tensors = _tensors_of(data)
        for start in range(0, len(tensors[0]), batch_size):
            part = [t[start : start + batch_size] for t in tensors]
            yield part[0], part[1] if len(part) > 1 else None
        return
    if isinstance(data, Dataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, dict)):
        for batch in data:
            if isinstance(batch, (list, tuple)):
                yield batch[0], batch[1] if len(batch) > 1 else None
            elif isinstance(batch, torch.Tensor):
                yield batch, None
            else:
                raise ConfigError(
                    f"mz.embed reads batches of tensors or (inputs, labels, ...); got a "
                    f"{type(batch).__name__}"
                )
        return
    hint = ""
    if all(hasattr(data, s) for s in ("train", "val", "test", "info")):
        hint = " Pass one of its splits, e.g. bundle.test."
    raise ConfigError(
        f"mz.embed takes a tensor or array of inputs, a Dataset, a DataLoader or an iterable "
        f"of batches; got a {type(data).__name__}.{hint}"
    )


def _tensor_backed(data: Dataset) -> bool:
    if isinstance(data, TensorDataset):
        return True
    return isinstance(data, Subset) and _tensor_backed(data.dataset)


def _tensors_of(data: Dataset) -> list[torch.Tensor]:
    if isinstance(data, TensorDataset):
        return list(data.tensors)
    index = torch.as_tensor(list(data.indices), dtype=torch.long)
    return [t[index] for t in _tensors_of(data.dataset)]


def _resolve_model(model: nn.Module | str) -> nn.Module:
    if isinstance(model, nn.Module):
        return model
    if isinstance(model, str):
        from modelzoo.registry import create

        return create(model)  # "arch.tag" loads that weight set
    raise ConfigError(
        f"mz.embed takes a model (nn.Module) or a model name such as "
        f"'conv_autoencoder.digits'; got a {type(model).__name__}"
    )


@torch.no_grad()
def embed(
    model: nn.Module | str,
    data: Any,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    return_labels: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
    """Latent vectors of ``data`` under ``model``'s encoder, one row per input.

    Args:
        model: an autoencoder, VAE, classifier or sequence encoder, or a model name
            (``"conv_autoencoder.digits"`` builds it with those weights).
        data: inputs the model takes: a tensor or array (N, ...), a Dataset whose items
            are inputs or ``(input, label, ...)`` tuples, a DataLoader, or an iterable of
            such batches. Inputs go to the model as they are (no resizing).
        batch_size: inputs per forward pass (for tensors and datasets).
        device: where to run; None keeps the model where it is. A given device moves
            the model there (and it stays there).
        return_labels: also return the labels, the second element of each item,
            concatenated (None when the data has none).

    Returns:
        Latents (N, D) as a float32 CPU tensor; with ``return_labels``,
        ``(latents, labels)``.

    Raises:
        ConfigError: the model has no encoder (see ``embedding_kind``), the data is not
            a form listed above, or it is empty.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    model = _resolve_model(model)
    kind = embedding_kind(model)
    if device is not None:
        model.to(device)
    param = next(model.parameters(), None)
    target = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    latents: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    missing_labels = False
    try:
        for inputs, batch_labels in _batches(data, batch_size):
            inputs = inputs.to(target)
            if kind == "features":
                z = model.forward_head(model.forward_features(inputs), pre_logits=True)
                z = z.flatten(1) if z.ndim > 2 else z
            else:
                z = _latent_of(model.encode(inputs))
            latents.append(z.detach().float().cpu())
            if batch_labels is None:
                missing_labels = True
            else:
                labels.append(torch.as_tensor(batch_labels).cpu())
    finally:
        model.train(was_training)
    if not latents:
        raise ConfigError("mz.embed got no inputs: the data is empty")
    out = torch.cat(latents)
    _logger.debug("embedded %d inputs to %d dims (%s)", len(out), out.shape[1], kind)
    if not return_labels:
        return out
    return out, None if missing_labels else torch.cat(labels)
