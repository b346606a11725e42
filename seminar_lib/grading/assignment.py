"""An assignment as the grader reads it: ``homework/<name>/assignment.toml``, validated.

    name = "hw1_metrics_knn"
    files = ["solution.py", "hw1_metrics_knn.ipynb"]   # required files of a submission
    notebook = "hw1_metrics_knn.ipynb"
    max_points = 25                                     # optional cap on the total
    forbidden = ["seminar_lib.metrics", "seminar_lib.models.ease:EASE"]   # optional
    [limits]            # optional, see :class:`Limits`
    [points]            # notebook_runs, notebook_reproducible
    [points.cases]      # item -> points, decided by the cases
    [manual]            # item -> points, left to a reviewer

A malformed file raises :class:`AssignmentError` naming the file and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from seminar_lib.errors import SeminarError

NOTEBOOK_ITEMS = ("notebook_runs", "notebook_reproducible")


class AssignmentError(SeminarError, ValueError):
    """An assignment folder or its ``assignment.toml`` is unusable."""


@dataclass(frozen=True)
class Limits:
    """Per-stage limits of the sandbox (seconds, MiB, counts).

    ``memory_mb`` is per process (``RLIMIT_DATA``: heap and anonymous maps), ``processes`` per stage
    (``RLIMIT_NPROC`` in the stage's own uid or user namespace), ``disk_mb`` per written file
    (``RLIMIT_FSIZE``) and for the stage's ``/tmp``, ``output_mb`` the stdout + stderr kept.
    """

    cell_timeout: float = 300
    notebook_timeout: float = 600
    case_timeout: float = 60
    cases_timeout: float = 600
    memory_mb: int = 6144
    processes: int = 128
    output_mb: int = 16
    disk_mb: int = 512

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str) -> Limits:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AssignmentError(f"{where}: unknown [limits] key(s) {unknown}; known: {sorted(known)}")
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise AssignmentError(f"{where}: [limits] {key} must be a positive number, got {value!r}")
        return cls(**raw)


@dataclass(frozen=True)
class Assignment:
    """What the grader needs to know about one assignment (paths are absolute)."""

    name: str
    title: str
    folder: Path
    files: tuple[str, ...]
    notebook: str | None
    points: dict[str, float]  # the notebook items (notebook_runs, notebook_reproducible) present
    case_points: dict[str, float]
    manual: dict[str, float] = field(default_factory=dict)
    max_points: float | None = None
    forbidden: tuple[str, ...] = ()
    limits: Limits = Limits()

    @property
    def harness(self) -> Path:
        return self.folder / "harness.py"

    @property
    def public_cases(self) -> Path:
        return self.folder / "public_cases.py"

    def private_cases(self, private: Path) -> Path:
        return private / "cases.py"

    def reference_solution(self, private: Path) -> Path:
        return private / "reference" / "solution.py"


def _points_table(raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise AssignmentError(f"{where} must be a table of item = points")
    out = {}
    for item, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise AssignmentError(f"{where}.{item} must be a non-negative number of points, got {value!r}")
        out[str(item)] = float(value)
    return out


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise AssignmentError(f"{where} must be a list of non-empty strings")
    return tuple(raw)


def parse_assignment(text: str, folder: Path) -> Assignment:
    """The assignment described by the TOML ``text`` of ``folder/assignment.toml``."""
    where = str(folder / "assignment.toml")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{where} is not valid TOML: {exc}") from exc
    name = raw.get("name", folder.name)
    if name != folder.name:
        raise AssignmentError(f"{where}: name = {name!r} differs from its folder {folder.name!r}")
    files = _names(raw.get("files", []), f"{where}: files")
    for f in files:
        if Path(f).is_absolute() or ".." in Path(f).parts or "/" in f:
            raise AssignmentError(f"{where}: file {f!r} must be a plain file name inside the submission")
    notebook = raw.get("notebook")
    if notebook is not None and notebook not in files:
        raise AssignmentError(f"{where}: notebook {notebook!r} must be one of files {list(files)}")
    points_raw = dict(raw.get("points", {}))
    cases_raw = points_raw.pop("cases", {})
    points = _points_table(points_raw, f"{where}: [points]")
    unknown = sorted(set(points) - set(NOTEBOOK_ITEMS))
    if unknown:
        raise AssignmentError(f"{where}: [points] may hold only {list(NOTEBOOK_ITEMS)} and [points.cases]; "
                              f"move {unknown} into [points.cases]")
    if points and notebook is None:
        raise AssignmentError(f"{where}: notebook items need `notebook = \"...\"`")
    case_points = _points_table(cases_raw, f"{where}: [points.cases]")
    manual = _points_table(raw.get("manual", {}), f"{where}: [manual]")
    clash = sorted((set(points) | set(case_points)) & set(manual))
    if clash:
        raise AssignmentError(f"{where}: item(s) {clash} are both automatic and manual")
    max_points = raw.get("max_points")
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, (int, float))
                                   or max_points <= 0):
        raise AssignmentError(f"{where}: max_points must be a positive number, got {max_points!r}")
    return Assignment(
        name=name, title=str(raw.get("title", name)), folder=folder, files=files, notebook=notebook,
        points=points, case_points=case_points, manual=manual,
        max_points=float(max_points) if max_points is not None else None,
        forbidden=_names(raw.get("forbidden", []), f"{where}: forbidden"),
        limits=Limits.from_mapping(raw.get("limits", {}), where))


def load_assignment(name: str, homework_dir: Path) -> Assignment:
    """``homework_dir/name/assignment.toml``; an unknown name lists the known ones."""
    if not name or "/" in name or name.startswith("."):
        raise AssignmentError(f"{name!r} is not an assignment name")
    path = homework_dir / name / "assignment.toml"
    if not path.is_file():
        known = sorted(p.parent.name for p in homework_dir.glob("*/assignment.toml"))
        raise AssignmentError(f"unknown assignment {name!r} in {homework_dir}; known: {known}")
    return parse_assignment(path.read_text(encoding="utf-8"), path.parent.resolve())
