"""``modelzoo benchmark`` and the library behind it: rows, units, FLOPs, memory, interleaving,
CSV/JSON output, precision through the trainer's Precision, MFU arithmetic, card facts, and the
committed CPU table (scripts/throughput_results.py --check)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import modelzoo as mz
from modelzoo.benchmark import (
    CSV_COLUMNS,
    BenchmarkSettings,
    StepRunner,
    benchmark_module,
    benchmark_side_by_side,
    count_flops,
    mfu,
    peak_bf16_tflops,
    read_csv,
    rotated,
    throughput_unit,
    write_csv,
)
from modelzoo.cli import main as cli_main
from modelzoo.errors import ConfigError
from modelzoo.train.precision import Precision

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "throughput_results.py"
FAST = ["--warmup-steps", "1", "--min-steps", "2", "--max-steps", "3", "--min-time", "0"]

# Hand counts, two FLOPs per multiply-add. mlp_small: Linear 64->64, Linear 64->10.
MLP_SMALL_FORWARD = 2 * (64 * 64 + 64 * 10)
# Its backward: the head's input and weight gradients, the first layer's weight gradient only
# (the input needs no gradient).
MLP_SMALL_BACKWARD = 2 * (64 * 10) + 2 * (64 * 10) + 2 * (64 * 64)
# lenet5 on 1x32x32: conv 1->6 5x5 (28x28 out), conv 6->16 5x5 (10x10 out), 400->120->84->10.
LENET5_FORWARD = (
    2 * 6 * 28 * 28 * 25 + 2 * 16 * 10 * 10 * 6 * 25 + 2 * 400 * 120 + 2 * 120 * 84 + 2 * 84 * 10
)


# --- FLOPs and card facts ----------------------------------------------------------------------


def test_card_gflops_equal_hand_counts() -> None:
    assert mz.model_card("mlp_small").gflops() == pytest.approx(MLP_SMALL_FORWARD / 1e9, rel=1e-12)
    assert mz.model_card("lenet5").gflops() == pytest.approx(LENET5_FORWARD / 1e9, rel=1e-12)


def test_card_gflops_agree_with_the_libraries_for_the_same_architecture() -> None:
    # Counted on different code (ours, torchvision's, timm's): the same network, the same count.
    assert mz.model_card("torchvision/resnet18").gflops() == mz.model_card("resnet18").gflops()
    ours, timm_vit = (
        mz.model_card("vit_tiny_patch16_224"),
        mz.model_card("timm/vit_tiny_patch16_224"),
    )
    assert ours.gflops() == timm_vit.gflops()


def test_attention_is_counted_on_the_cpu() -> None:
    # FlopCounterMode alone misses the CPU flash-attention kernel; the benchmark adds it.
    q = torch.randn(2, 4, 8, 16)
    flops = count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert flops == 2 * (2 * 2 * 4 * 8 * 8 * 16)  # Q K^T and (softmax) V


def test_card_file_size_is_the_weight_sets_files(capsys: pytest.CaptureFixture[str]) -> None:
    card = mz.model_card("resnet20")
    digits = next(w for w in card.weights if w.tag == "digits")
    assert card.file_size() == sum(f.size for f in digits.files)  # the default set
    other = next(w for w in card.weights if w.tag == "digits_0to4")
    assert card.file_size("digits_0to4") == other.files[0].size
    assert mz.model_card("lenet5").file_size() is None  # no weight sets
    with pytest.raises(ConfigError, match="digits_0to4"):
        card.file_size("nope")
    assert cli_main(["info", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert f"GFLOPs      {LENET5_FORWARD / 1e9:.4g} per sample" in out
    assert cli_main(["info", "resnet20.digits_0to4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["file_size"] == other.files[0].size
    assert info["gflops"] == card.gflops()


def test_units() -> None:
    def unit(name: str) -> tuple[str, int]:
        card = mz.model_card(name)
        return throughput_unit(card.input_spec, card.family, card.task)

    assert unit("lenet5") == ("images/s", 1)
    assert unit("gpt_nano") == ("tokens/s", 16)
    assert unit("lstm_seq2seq") == ("tokens/s", 16 + 12)  # source and target tokens
    assert unit("q_network") == ("env-steps/s", 1)
    assert unit("nature_cnn_actor_critic") == ("env-steps/s", 1)  # frames, but RL observations
    assert unit("audio_cnn") == ("clips/s", 1)
    assert unit("mlp") == ("samples/s", 1)
    assert unit("cgan") == ("samples/s", 1)  # a class label is no token sequence
    assert unit("timm/resnet18") == ("images/s", 1)


# --- the command -------------------------------------------------------------------------------


def test_command_rows_csv_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    argv = ["benchmark", "mlp_small", "--mode", "infer,train", "--batch-sizes", "1,4"]
    argv += ["--precision", "32,bf16-mixed", "--threads", "1", "--csv", str(out), "--json", *FAST]
    assert cli_main(argv) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)  # stdout is the JSON document only; progress on stderr
    assert "mlp_small" in captured.err
    settings = {(r["mode"], r["batch_size"], r["precision"]) for r in rows}
    assert settings == {
        (m, b, p) for m in ("infer", "train") for b in (1, 4) for p in ("32", "bf16-mixed")
    }
    for r in rows:
        assert r["model"] == "mlp_small" and r["unit"] == "samples/s" and r["device"] == "cpu"
        assert r["threads"] == 1 and r["num_params"] == mz.model_card("mlp_small").num_params
        assert r["throughput"] == pytest.approx(r["batch_size"] / (r["step_ms"] / 1e3))
        assert r["step_ms_min"] <= r["step_ms"] <= r["step_ms_max"]
        assert 2 <= r["steps"] <= 3 and r["warmup_steps"] == 1
        want = MLP_SMALL_FORWARD + (MLP_SMALL_BACKWARD if r["mode"] == "train" else 0)
        assert r["gflops_per_sample"] == pytest.approx(want / 1e9, rel=1e-12)
        assert r["optimizer"] == ("sgd" if r["mode"] == "train" else "")
    # The CSV holds the same rows, in the command's columns.
    assert out.read_text().splitlines()[0].split(",") == list(CSV_COLUMNS)
    back = read_csv(out)
    assert [r.to_dict()["gflops_per_sample"] for r in back] == [
        pytest.approx(r["gflops_per_sample"], rel=1e-5) for r in rows
    ]
    assert [(r.mode, r.batch_size, r.precision) for r in back] == [
        (r["mode"], r["batch_size"], r["precision"]) for r in rows
    ]


def test_command_token_model_counts_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["benchmark", "gpt_nano", "--batch-sizes", "2", "--json", *FAST]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["unit"] == "tokens/s" and row["items_per_sample"] == 16
    assert row["throughput"] == pytest.approx(2 * 16 / (row["step_ms"] / 1e3))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-sizes", "1,x"], "whole numbers >= 1"),
        (["--batch-sizes", "0"], "whole numbers >= 1"),
        (["--precision", "fp8"], "'fp8' is not one of 32, bf16-mixed"),
        (["--mode", "serve"], "'serve' is not one of infer, train"),
        (["--device", "tpu"], "device must be cpu, cuda or cuda:N"),
    ],
)
def test_command_refuses_bad_settings_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "rows.csv"
    assert cli_main(["benchmark", "mlp_small", "--csv", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a CPU-only torch")
def test_command_cuda_without_a_gpu_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["benchmark", "mlp_small", "--device", "cuda"]) == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


# --- the library -------------------------------------------------------------------------------


def test_bf16_mixed_runs_through_the_trainers_precision() -> None:
    seen: list[torch.dtype] = []
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    runner = StepRunner(model, (torch.randn(4, 8),), BenchmarkSettings(precision="bf16-mixed"))
    assert isinstance(runner.precision, Precision) and runner.precision.mode == "bf16-mixed"
    runner.timed_step()
    assert seen == [torch.bfloat16]  # autocast from Precision.autocast(), not from the model
    true = StepRunner(
        nn.Linear(8, 2), (torch.randn(4, 8),), BenchmarkSettings(precision="bf16-true")
    )
    assert true.model.weight.dtype == torch.bfloat16 and true.inputs[0].dtype == torch.bfloat16


def test_train_mode_steps_the_optimizer() -> None:
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    before = model.weight.detach().clone()
    for optimizer in ("sgd", "adamw"):
        settings = BenchmarkSettings(mode="train", batch_size=4, optimizer=optimizer)
        runner = StepRunner(model, (torch.randn(4, 8),), settings)
        assert type(runner.optimizer).__name__ == {"sgd": "SGD", "adamw": "AdamW"}[optimizer]
        runner.timed_step()
    assert not torch.equal(model.weight.detach(), before)


def test_channels_last_converts_model_and_images() -> None:
    model = nn.Conv2d(3, 4, 3)
    runner = StepRunner(model, (torch.randn(2, 3, 8, 8),), BenchmarkSettings(channels_last=True))
    assert runner.inputs[0].is_contiguous(memory_format=torch.channels_last)
    assert runner.model.weight.is_contiguous(memory_format=torch.channels_last)


# Run in a fresh interpreter: the process-wide high-water mark must not see what other tests
# in the same pytest worker (threads they left, the allocator's state) are doing.
_PEAK_PROBE = """
import torch
from torch import nn
from modelzoo.benchmark import BenchmarkSettings, benchmark_module


class Allocates(nn.Module):
    # Holds 64 MiB of activations during its forward.
    def forward(self, x):
        big = torch.ones(16 * 2**20, dtype=torch.float32) * x.mean()
        return big[:1] + x


row = benchmark_module(
    Allocates(), (torch.ones(1, 1),), BenchmarkSettings(), name="alloc", min_time=0
)
print(row.memory)
print(row.peak_memory_mb)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc only")
def test_cpu_peak_memory_sees_what_a_step_allocates() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_PROBE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    memory, peak = result.stdout.strip().splitlines()[-2:]
    assert memory.startswith("cpu peak RSS")
    assert 60 <= float(peak) < 200  # 64 MiB (and a temporary of the multiplication)


def test_side_by_side_interleaves_and_rotates() -> None:
    calls: list[str] = []

    class Tagged(nn.Linear):
        def __init__(self, tag: str) -> None:
            super().__init__(4, 2)
            self.tag = tag

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(self.tag)
            return super().forward(x)

    x = torch.randn(3, 4)
    sides = {tag: (Tagged(tag), (x,)) for tag in ("a", "b", "c")}
    rows = benchmark_side_by_side(
        sides, BenchmarkSettings(batch_size=3), group="g", warmup_steps=2, repeats=3
    )
    assert calls[:6] == ["a", "a", "b", "b", "c", "c"]  # each side's warm-up, in turn
    assert calls[6:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # rotated repeats
    assert [r.model for r in rows] == ["a", "b", "c"]
    assert all(r.group == "g" and r.steps == 3 and r.batch_size == 3 for r in rows)
    assert rotated(["a", "b"], 3) == ["b", "a"]


def test_settings_and_counts_are_checked() -> None:
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        BenchmarkSettings(batch_size=0)
    with pytest.raises(ConfigError, match="optimizer must be one of sgd, adamw"):
        BenchmarkSettings(optimizer="lion")
    with pytest.raises(ConfigError, match="warmup_steps must be >= 1"):
        benchmark_module(
            nn.Linear(2, 2), (torch.ones(1, 2),), BenchmarkSettings(), name="x", warmup_steps=0
        )
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="trainable parameters"):
        StepRunner(frozen, (torch.ones(1, 2),), BenchmarkSettings(mode="train"))


def test_csv_round_trip_and_bad_files(tmp_path: Path) -> None:
    row = benchmark_module(
        nn.Linear(4, 2),
        (torch.ones(2, 4),),
        BenchmarkSettings(batch_size=2),
        name="lin",
        min_time=0,
    )
    path = write_csv([row], tmp_path / "a" / "t.csv")
    (back,) = read_csv(path)
    assert back.model == "lin" and back.batch_size == 2 and back.channels_last is False
    assert back.step_ms == pytest.approx(row.step_ms, rel=1e-5) and back.cpu_ms is not None
    bad = tmp_path / "bad.csv"
    bad.write_text("model,mode\nx,infer\n")
    with pytest.raises(ConfigError, match="header"):
        read_csv(bad)
    lines = path.read_text().splitlines()
    bad.write_text(lines[0] + "\n" + lines[1].replace(",2,", ",two,", 1) + "\n")
    with pytest.raises(ConfigError, match=r"bad\.csv:2"):
        read_csv(bad)


def test_mfu_arithmetic() -> None:
    # The peaks are NVIDIA's dense bf16 figures (half the 2:4-sparsity ones on the sheets).
    assert peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert peak_bf16_tflops("NVIDIA H100 PCIe") == 756.5
    assert peak_bf16_tflops("NVIDIA H100 NVL") == 835.5
    assert peak_bf16_tflops("NVIDIA H200") == 989.4
    assert peak_bf16_tflops("NVIDIA A100-SXM4-80GB") is None
    # gpt2_small-like: 6 N per token (N = 124M), 16 x 1024 tokens, 0.5 s a step on an H100.
    flops = 6 * 124e6 * 16 * 1024
    assert mfu(flops, 0.5, 989.4) == pytest.approx(flops / 0.5 / 989.4e12)
    assert mfu(989.4e12 * 0.45, 1.0, 989.4) == pytest.approx(0.45)
    with pytest.raises(ConfigError):
        mfu(1.0, 0.0, 989.4)


@pytest.mark.slow
def test_mfu_pipeline_runs_on_the_cpu() -> None:
    # The --mfu path end to end (train step, FLOP count, arithmetic) with a tiny model; slow
    # only because of the fresh interpreter (imports) on a busy 2-core machine.
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--mfu",
            "--device",
            "cpu",
            "--peak-tflops",
            "1",
            "--mfu-model",
            "gpt_nano",
            "--mfu-batch",
            "2",
            "--mfu-seq-len",
            "32",
            "--mfu-warmup",
            "1",
            "--mfu-steps",
            "2",
            "--no-compile",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["mode"] == "train" and result["optimizer"] == "adamw"
    assert result["precision"] == "bf16-mixed" and result["unit"] == "tokens/s"
    assert result["flops_per_step"] == pytest.approx(result["gflops_per_sample"] * 2e9)
    assert result["mfu"] == pytest.approx(
        result["flops_per_step"] / (result["step_ms"] / 1e3) / 1e12
    )


# --- the committed table -----------------------------------------------------------------------


def _check(csv_path: Path, md_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--csv", str(csv_path), "--md", str(md_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_committed_cpu_table_holds() -> None:
    proc = _check(ROOT / "benchmarks/throughput_cpu.csv", ROOT / "benchmarks/throughput_cpu.md")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_finds_a_changed_number_and_a_missing_model(tmp_path: Path) -> None:
    csv_path, md_path = tmp_path / "t.csv", tmp_path / "t.md"
    shutil.copy(ROOT / "benchmarks/throughput_cpu.md", md_path)
    rows = read_csv(ROOT / "benchmarks/throughput_cpu.csv")
    # Slow one zoo side of a comparison down: its ratio, hence the report, must change.
    k = next(i for i, r in enumerate(rows) if r.group and r.model == r.group)
    rows[k] = dataclasses.replace(rows[k], cpu_ms=rows[k].cpu_ms * 1.5)
    write_csv([r for r in rows if r.model != "lenet5"], csv_path)
    proc = _check(csv_path, md_path)
    assert proc.returncode == 1
    assert "is not what the CSV gives" in proc.stdout
    assert "lenet5: 0 infer fp32 rows at batch 1" in proc.stdout
