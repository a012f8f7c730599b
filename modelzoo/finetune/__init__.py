"""Fine-tune a zoo model, a weight set or a timm/torchvision model on new data, in one call.

    from modelzoo.finetune import finetune
    result = finetune("resnet20.digits_0to4", "digits",
                      data_kwargs={"classes": [5, 6, 7, 8, 9], "train_per_class": 10},
                      epochs=30, freeze_epochs=5, run_dir="runs/ft")
    result.metrics            # {"digits[5,6,7,8,9]/test": {"accuracy": ..., "loss": ...}}
    result.run_dir / "model"  # save_pretrained layout + model_card.json / model_card.md

A fine-tune is four steps, each a public function:

1. :func:`resolve_source` reads the model argument once — a name, ``arch.tag``, a
   ``timm/``/``torchvision/`` name, a ``save_pretrained`` folder or a run directory —
   into a :class:`Source`: the architecture, the weights, the facts about them;
2. :func:`resolve_data` builds the data (a built-in dataset name, an image folder with
   one subfolder per class, or a CSV file) and :func:`build_model` the model, with a new
   head for the data's classes (``num_classes`` and ``in_chans`` come from the data;
   the loader adapts the pretrained head and first layer);
3. the project's ``Trainer`` trains it: ``freeze_epochs`` with the backbone frozen
   (BatchNorm statistics included, ``transfer.GradualUnfreeze``), ``layer_decay`` as
   ``train.layer_decay`` (learning rates shrinking per layer away from the head);
4. the report: metrics on the held-out splits, the card, the model folder.

The run directory is a regular one (``config.yaml``, ``metrics.csv``,
``checkpoints/``, ``plots/``; ``modelzoo evaluate`` and ``modelzoo resume`` work on
it) plus ``finetune.json`` (the settings the recipe cannot hold) and ``model/``: the
fine-tuned model in the ``save_pretrained`` layout with its card. The run is written
into a hidden sibling folder and renamed into place when it is complete, so a failed
fine-tune leaves nothing behind.

When a weight set is fine-tuned on the dataset it was trained on, the data's
preprocessing (``img_size``, ``flatten``, ``seq_len``, ``vocab``) defaults to the
weight set's recipe, so ``finetune("mlp.digits", "digits")`` flattens the images
as the weights expect. An image folder defaults to the weights' image size and
channels and holds out 20% of each class for testing.
"""

from modelzoo.finetune.card import CARD_NAME, build_card, card_markdown
from modelzoo.finetune.data import PREPROCESSING_KEYS, data_label, parse_key_values, resolve_data
from modelzoo.finetune.run import SETTINGS_NAME, FinetuneResult, build_model, finetune
from modelzoo.finetune.source import Source, resolve_source

__all__ = [
    "CARD_NAME",
    "PREPROCESSING_KEYS",
    "SETTINGS_NAME",
    "FinetuneResult",
    "Source",
    "build_card",
    "build_model",
    "card_markdown",
    "data_label",
    "finetune",
    "parse_key_values",
    "resolve_data",
    "resolve_source",
]
