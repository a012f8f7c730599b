"""Shared test configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

# One torch thread per test process. The suite runs with pytest-xdist (-n 2: one worker per
# core), and the models under test are small: with two threads per worker, OpenMP threads of
# two processes wait on each other and small steps run tens of times slower.
torch.set_num_threads(1)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """For tests that must run single-threaded whatever the session's setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
