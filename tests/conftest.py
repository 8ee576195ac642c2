import os
import sys
from pathlib import Path

# Tests import helpers from tests/ (e.g. tests/oracle/nt_cases.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MPLBACKEND", "Agg")
