"""Shared test configuration."""

from __future__ import annotations

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker gets one core: two workers of one thread each beat two workers
    # fighting over the same two cores with two threads apiece.
    torch.set_num_threads(1)
