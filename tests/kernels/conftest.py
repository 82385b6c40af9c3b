"""The kernels' tests run Triton in its CPU interpreter: set before the kernels are first imported
(Triton chooses compile or interpret when a kernel is decorated)."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
