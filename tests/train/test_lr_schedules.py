"""The learning-rate schedules and weight decay the ResNet paper's CIFAR recipe needs:
multistep decay at given steps, a constant warm-up lr, and weight decay on every parameter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelzoo.config import TrainConfig, load_recipe
from modelzoo.errors import ConfigError
from modelzoo.train.optim import build_optimizer, build_scheduler


def _lrs(config: TrainConfig, steps: int) -> list[float]:
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model.named_parameters(), config, model=model)
    schedule = build_scheduler(optimizer, config, total_steps=steps)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return seen


def test_multistep_matches_torch_multisteplr():
    config = TrainConfig(
        optimizer="sgd", lr=0.1, scheduler="multistep", milestones=[20, 45], gamma=0.1
    )
    model = nn.Linear(3, 2)
    reference = torch.optim.SGD(model.parameters(), lr=0.1)
    torch_schedule = torch.optim.lr_scheduler.MultiStepLR(reference, [20, 45], gamma=0.1)
    expected = []
    for _ in range(60):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        torch_schedule.step()
    assert _lrs(config, 60) == pytest.approx(expected, rel=1e-12)
    # "/10 at 32k and 48k iterations": iterations 1..32000 at 0.1, then 0.01, then 0.001.
    assert expected[19] == pytest.approx(0.1) and expected[20] == pytest.approx(0.01)


def test_constant_warmup_holds_its_lr_then_the_schedule_takes_over():
    config = TrainConfig(
        optimizer="sgd",
        lr=0.1,
        warmup_steps=4,
        warmup_lr=0.01,
        scheduler="multistep",
        milestones=[8],
    )
    assert _lrs(config, 10) == pytest.approx([0.01] * 4 + [0.1] * 4 + [0.01] * 2)
    linear = TrainConfig(optimizer="sgd", lr=0.1, warmup_steps=4)  # unchanged: a ramp
    assert _lrs(linear, 5) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])


def test_weight_decay_all_decays_norms_and_biases_too():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2))
    names = {id(p): n for n, p in model.named_parameters()}

    def decays(config: TrainConfig) -> dict[str, float]:
        optimizer = build_optimizer(model.named_parameters(), config, model=model)
        groups = optimizer.param_groups
        return {names[id(p)]: g["weight_decay"] for g in groups for p in g["params"]}

    default = decays(TrainConfig(optimizer="sgd", weight_decay=1e-4))
    assert default["0.weight"] == 1e-4 and default["1.weight"] == 0 and default["3.bias"] == 0
    every = decays(TrainConfig(optimizer="sgd", weight_decay=1e-4, weight_decay_all=True))
    assert set(every.values()) == {1e-4} and len(every) == 6
    # The groups hold the same parameters either way, so a run resumes across the switch.
    grouped = [
        [names[id(p)] for p in g["params"]]
        for g in build_optimizer(
            model.named_parameters(), TrainConfig(weight_decay_all=True), model=model
        ).param_groups
    ]
    assert grouped == [
        [names[id(p)] for p in g["params"]]
        for g in build_optimizer(model.named_parameters(), TrainConfig(), model=model).param_groups
    ]


def test_milestones_from_the_command_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: mlp}\ndata: {name: digits}\ntrain: {optimizer: sgd}\n")
    loaded = load_recipe(recipe, ["train.scheduler=multistep", "train.milestones=[32000, 48000]"])
    assert loaded.train.milestones == [32000, 48000]
    assert loaded.train.to_dict()["milestones"] == [32000, 48000]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheduler": "multistep"}, "needs train.milestones"),
        ({"scheduler": "multistep", "milestones": [48000, 32000]}, "positive and increasing"),
        ({"scheduler": "multistep", "milestones": [0, 10]}, "positive and increasing"),
        ({"scheduler": "multistep", "milestones": ["a"]}, r"train\.milestones\[0\] must be an int"),
        ({"scheduler": "multistep", "milestones": 32000}, "must be a list"),
        ({"scheduler": "cosine", "milestones": [10]}, "only read by train.scheduler=multistep"),
        ({"warmup_lr": 0.01}, "warmup_steps"),
        ({"warmup_lr": 0.0, "warmup_steps": 4}, "warmup_lr=0.0 is out of range"),
    ],
)
def test_schedule_settings_that_would_be_ignored_or_wrong_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)
