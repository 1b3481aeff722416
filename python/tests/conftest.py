import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")

# The examples the tests run (python/examples/*.py).
sys.path.append(os.path.join(ROOT, "python", "examples"))
