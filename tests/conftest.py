"""Fixtures shared by several test modules."""
import pytest


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run a module's torch work on one thread: small tensors only gain contention from more on a shared CI box."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
