"""A real IPython kernel with jobmagics loaded, shared by a module's tests."""
from __future__ import annotations

import pytest

from kernel_driver import Kernel


@pytest.fixture(scope="module")
def kernel():
    with Kernel() as k:
        result = k.run("%load_ext jobmagics")
        assert result.ok, result.stderr
        yield k
        k.run("%remove_job --state Running --force")
