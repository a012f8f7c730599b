"""The files of a saved model folder: the Hugging Face Hub's layout, which
``save_pretrained`` writes, ``from_pretrained`` and ``load_pretrained`` read, and
``push_to_hub`` uploads."""

from __future__ import annotations

__all__ = ["CONFIG_NAME", "LIBRARY_NAME", "README_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "config.json"  # the architecture, its builder arguments, the card's facts
WEIGHTS_NAME = "model.safetensors"  # the weights (no pickle)
README_NAME = "README.md"  # the model card
LIBRARY_NAME = "modelzoo"  # the Hub's library_name for repos the zoo writes
