"""The kernel library does not need the grader: no grading dependency is imported by it (issue 20)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRADING_DEPENDENCIES = ("pytest", "nbval", "ipykernel", "psutil", "nbclient", "nbformat", "jupyter_client")
KERNEL_MODULES = ("approximations", "batching", "dual", "dynamics", "empirical", "finite_width", "inference",
                  "linearize", "spectral", "stax", "training", "cli", "grading.checks")


def test_importing_the_package_and_its_kernel_modules_imports_no_grading_dependency():
    code = (f"import sys, importlib, ntkcourse\n"
            f"for name in {KERNEL_MODULES!r}: importlib.import_module('ntkcourse.' + name)\n"
            f"print(sorted(m for m in {GRADING_DEPENDENCIES!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=True).stdout
    assert out.strip() == "[]"
