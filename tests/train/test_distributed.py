"""torchrun with 2 CPU processes (gloo) trains to the same parameters as one process."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import torch
    import modelzoo as mz
    from modelzoo.data import build_data
    from modelzoo.train import Trainer
    from modelzoo.train.tasks import ClassificationTask

    batch_size, out, fsdp = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "fsdp"
    torch.manual_seed(0)
    model = mz.create("mlp", hidden_sizes=(32, 32))
    data = torch.utils.data.Subset(build_data("digits", flatten=True).train, range(320))
    config = dict(epochs=2, optimizer="sgd", lr=0.1, grad_accum=2, progress=False,
                  plots=False, tensorboard=False, fsdp=fsdp)
    trainer = Trainer(ClassificationTask(model), config, batch_size=batch_size,
                      run_dir=out + "-run")
    trainer.fit(data)
    state = trainer._model_state_dict()  # a collective under FSDP: every rank calls it
    if trainer.dist.is_main:
        torch.save({k: v.detach().cpu() for k, v in state.items()}, out)
    trainer.dist.close()  # gloo's threads must stop before the interpreter exits
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown, where gloo's FSDP threads can still abort on CPU
    """
)


def _torchrun() -> list[str]:
    exe = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    return [exe, "--standalone", "--nproc_per_node=2"]


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_match_one_with_the_same_global_batch(tmp_path: Path, mode: str) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    subprocess.run([sys.executable, str(script), "16", str(one), mode], check=True)
    result = subprocess.run(
        [*_torchrun(), str(script), "8", str(two), mode], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    a = torch.load(one, weights_only=True)
    b = torch.load(two, weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)
    checkpoint = torch.load(tmp_path / "two.pt-run/checkpoints/last.ckpt", weights_only=True)
    for key in a:  # full (unsharded) tensors, loadable by one process
        torch.testing.assert_close(checkpoint["model"][key], b[key])
