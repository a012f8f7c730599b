"""CTC speech recognition: edit distance, character error rate, the task's metrics, and a
short real training run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchaudio  # noqa: F401  (a declared dependency: a broken install must fail here)
from torch import nn

import modelzoo as mz
from modelzoo.data import build_data
from modelzoo.errors import InputShapeError
from modelzoo.models.audio import CTCOutput
from modelzoo.train import Trainer
from modelzoo.train.tasks import TASKS, CTCTask
from modelzoo.train.tasks.ctc import character_error_rate, edit_distance


@pytest.mark.parametrize(
    "a, b, distance",
    [
        ("kitten", "sitting", 3),  # two substitutions and an insertion
        ("", "abc", 3),
        ("abc", "", 3),
        ("abc", "abc", 0),
        ("flaw", "lawn", 2),
        ([1, 2, 3, 4], [1, 3, 4], 1),
        ([5, 5], [6], 2),
    ],
)
def test_edit_distance_by_hand(a, b, distance: int) -> None:
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


def test_character_error_rate_sums_edits_over_reference_length() -> None:
    # (1 substitution + 1 deletion) / (3 + 3) reference characters
    assert character_error_rate(["abd", "xy"], ["abc", "xyz"]) == pytest.approx(2 / 6)
    assert character_error_rate(["aaaa"], ["b"]) == pytest.approx(4.0)  # insertions count
    with pytest.raises(ValueError):
        character_error_rate(["a"], [])


class _Fixed(nn.Module):
    """A recognizer stand-in that returns given scores; records the lengths it was given."""

    def __init__(self, best: torch.Tensor, steps: torch.Tensor | None) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))
        self.scores = F.one_hot(best, 5).float() * 5.0
        self.steps = steps
        self.seen: list[torch.Tensor | None] = []

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None) -> CTCOutput:
        self.seen.append(lengths)
        return CTCOutput((self.scores + self.bias).log_softmax(-1), self.steps)


def test_ctc_task_metrics_by_hand() -> None:
    best = torch.tensor(
        [
            [1, 1, 0, 2, 3, 0],  # -> 1 2 3: exact
            [4, 0, 4, 0, 0, 0],  # -> 4 4, reference 4: one insertion
            [2, 0, 0, 0, 1, 1],  # -> 2 (the 1s lie past its 4 valid steps), reference 2 3
        ]
    )
    steps = torch.tensor([6, 6, 4])
    targets = torch.tensor([[1, 2, 3], [4, 0, 0], [2, 3, 0]])
    target_lengths = torch.tensor([3, 1, 2])
    waves, lengths = torch.zeros(3, 100), torch.tensor([100, 100, 70])
    model = _Fixed(best, steps)
    task = CTCTask(model)
    totals = task.validation_step((waves, lengths, targets, target_lengths))
    assert totals["cer"] == (2.0, 6)  # one insertion + one deletion over 3 + 1 + 2 characters
    assert totals["exact_match"] == (1.0, 3)
    log_probs = model(waves).log_probs
    expected = F.ctc_loss(log_probs.transpose(0, 1), targets, steps, target_lengths)
    loss_sum, count = totals["loss"]
    assert count == 3
    assert loss_sum / count == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(model.seen[0], lengths)  # the sample lengths reach the model
    assert task.compute_metrics(totals)["cer"] == pytest.approx(1 / 3)
    assert task.predict_step((waves, lengths)) == [[1, 2, 3], [4, 4], [2]]


def test_ctc_task_without_output_lengths_scores_every_frame() -> None:
    best = torch.tensor([[1, 0, 2, 0]])
    task = CTCTask(_Fixed(best, None))
    batch = (torch.zeros(1, 10), torch.tensor([10]), torch.tensor([[1, 2]]), torch.tensor([2]))
    assert task.validation_step(batch)["cer"] == (0.0, 2)
    with pytest.raises(InputShapeError, match="collate_ctc"):
        task.training_step(batch[:2], "main")


def test_ctc_tasks_are_registered_by_name() -> None:
    assert TASKS["ctc"] is CTCTask and TASKS["speech_recognition"] is CTCTask
    assert build_data("dtmf_ctc", n_train=1, n_val=0, n_test=0).info["task"] in TASKS


def test_ctc_lstm_learns_dtmf() -> None:
    data = build_data("dtmf_ctc", n_train=640, n_val=64, n_test=0, sample_rate=8000, max_digits=3)
    torch.manual_seed(0)
    model = mz.create(
        "ctc_lstm",
        vocab_size=data.info["vocab_size"],
        sample_rate=8000,
        n_mels=32,
        frame_stride=2,
        hidden_size=64,
        num_layers=1,
        drop_rate=0.0,
    )
    config = dict(epochs=2, lr=1e-2, clip_grad_norm=1.0, seed=0, progress=False, plots=False)
    trainer = Trainer(
        CTCTask(model), dict(config, tensorboard=False), batch_size=16, collate_fn=data.collate_fn
    )
    before = trainer.evaluate(data.val)
    metrics = trainer.fit(data.train, data.val)
    losses = [s["loss"] for s in trainer.step_losses]
    assert sum(losses[-3:]) < 0.2 * sum(losses[:3])
    assert metrics["loss"] < 0.2 * before["loss"]
    # past the all-blank plateau: most keys are transcribed (an untrained model's CER is > 1)
    assert metrics["cer"] < 0.3 < 1 < before["cer"]
