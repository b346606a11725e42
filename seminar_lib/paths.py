"""Where the course's folders are: the one place that computes them from this package's location.

:data:`PACKAGE_ROOT` is the folder holding ``seminar_lib/`` — in a checkout, the repository — and
the course folders beside the package are under it. Files that ship inside the package (the nbval
sanitizer) are found next to their module instead.
"""

from __future__ import annotations

from pathlib import Path

#: The folder holding ``seminar_lib/`` (the repository root in a checkout).
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: The course notebooks the runner executes.
NOTEBOOKS_DIR = PACKAGE_ROOT / "notebooks"
#: The homework assignments (``homework/<assignment>/assignment.toml``).
HOMEWORK_DIR = PACKAGE_ROOT / "homework"
