"""Which models the export tests run by default: one per family, the cheapest to export.

Imported as ``export_helpers`` by ``test_export.py`` (``tests/`` is on ``sys.path``
through its ``conftest.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

import modelzoo as mz

__all__ = ["DEFAULT_SAMPLE", "sampled_models"]

# One model per family in the default run: the cheapest to export, and one whose output
# is a dataclass or a distribution where the family has one. A family missing here is
# represented by its first model.
DEFAULT_SAMPLE = {
    "mlp": "mlp_small",
    "cnn": "cnn_small",
    "resnet": "resnet20",
    "vit": "vit_tiny_patch4_32",
    "rnn": "lstm_classifier",
    "transformer": "gpt_nano",
    "autoencoder": "conv_vae",
    "gan": "cgan",
    "rl": "actor_critic",
    "detection": "fcos_tiny",
    "segmentation": "unet_tiny",
    "audio": "audio_cnn",
}


def sampled_models() -> list[Any]:
    """Every registered model as a parameter: the family samples plain, the rest ``slow``."""
    names = mz.list_models()
    sample = set()
    for family in sorted({mz.model_card(n).family for n in names}):
        members = [n for n in names if mz.model_card(n).family == family]
        preferred = DEFAULT_SAMPLE.get(family)
        sample.add(preferred if preferred in members else members[0])
    return [n if n in sample else pytest.param(n, marks=pytest.mark.slow) for n in names]
