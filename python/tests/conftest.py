import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")

# The examples the tests run (python/examples/*.py).
sys.path.append(os.path.join(ROOT, "python", "examples"))


def pytest_configure(config):
    # The virtualenv is shared by every clone and `make python` installs the package editable:
    # make sure these tests exercise this clone's build, not another clone's.
    import lepton

    here = os.path.join(ROOT, "python", "lepton")
    if os.path.dirname(os.path.abspath(lepton.__file__)) != here:
        raise pytest.UsageError(
            f"lepton is imported from {os.path.dirname(lepton.__file__)}, not this clone "
            f"({here}): run `make python` here first (make test does)"
        )
