"""The generated workflows' modules are imported by name, by the tests and by the worker
processes a ``ProcessExecutor`` spawns (which start with this process's ``sys.path``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
