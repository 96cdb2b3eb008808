"""The unit tier runs every job on one torch thread.

Its networks are tiny: a second thread only adds synchronisation, and jobs with the default
``threads=0`` run as many threads as cores with OpenMP's idle threads spinning
(hnet.job.environment.omp_wait_policy), which on a machine shared with anything else (CI, other
test sessions) made single tests 10-100x slower (test_train.py::test_beta_protects_earlier_tasks:
246 s against 2 s). ``OMP_NUM_THREADS=1`` is the user's way to ask for one thread
(hnet.job.environment.available_cores); the tests of thread handling (test_cores.py,
test_environment.py) clear it themselves."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(before)
