"""``one_torch_thread``: run a test module's small models on one torch thread.

Import it into a test module (``from test.single_thread import one_torch_thread  # noqa:
F401``) and it applies to every test there. On a busy 2-core machine torch's default
thread pool spends most of a tiny model's time waiting for its second thread (a train
step measured 3 to 10 times slower than on one thread); restored after the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
