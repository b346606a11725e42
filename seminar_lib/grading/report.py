"""A graded submission: points per item with reasons, written as ``report.json`` + ``report.md``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seminar_lib.files import atomic_write_text

STATUSES = ("graded", "rejected", "error")  # rejected: the submission could not be read as plain files


@dataclass
class Item:
    """One line of the point scheme and its outcome (``manual``: left to a human reviewer; ``value``: what a
    measuring check measured, e.g. the leaderboard's nDCG@10)."""

    name: str
    points: float
    earned: float = 0.0
    reason: str = ""
    manual: bool = False
    value: float | None = None


@dataclass
class Report:
    """Points per item; ``max_points`` caps the total (an open assignment offers more than it counts)."""

    assignment: str
    submission: str
    items: list[Item] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    max_points: float | None = None
    status: str = "graded"
    sha256: str = ""
    sandbox: str = ""
    student: str = ""  # in a class: the submission's path inside the class folder
    id: str = ""  # in a class: its report folder's name

    @property
    def total(self) -> float:
        full = sum(i.points for i in self.items)
        return min(full, self.max_points) if self.max_points is not None else full

    @property
    def earned(self) -> float:
        return min(sum(i.earned for i in self.items), self.total)

    @property
    def pending(self) -> float:
        """Points of the items left to manual review."""
        return sum(i.points for i in self.items if i.manual)

    def item(self, name: str) -> Item:
        for i in self.items:
            if i.name == name:
                return i
        raise KeyError(f"no item {name!r} in the report; items: {[i.name for i in self.items]}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"earned": self.earned, "total": self.total, "pending_manual_review": self.pending}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Inverse of :meth:`to_dict` (for merging reports made elsewhere); a malformed one raises ValueError."""
        try:
            items = [Item(**{k: v for k, v in i.items() if k in Item.__dataclass_fields__}) for i in data["items"]]
            fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "items"}
            return cls(**fields, items=items)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a grading report: {exc}") from None

    def to_markdown(self) -> str:
        room = min(self.pending, self.total - self.earned)  # manual points can add at most up to the cap
        pending = f" (+ up to {room:g} after manual review)" if self.pending else ""
        lines = [f"# {self.assignment}: {self.earned:g} / {self.total:g} points{pending}", "",
                 f"submission: `{self.submission}` · {self.status} in {self.seconds:.0f} s"
                 + (f" · sandbox: {self.sandbox}" if self.sandbox else ""), "",
                 "| item | points | earned | reason |", "| --- | --- | --- | --- |"]
        for i in self.items:
            reason = i.reason.replace("|", "\\|").replace("\n", " ")[:300] or "ok"
            if i.value is not None:
                reason += f" (measured {i.value:.4f})"
            earned = "manual" if i.manual else f"{i.earned:g}"
            lines.append(f"| {i.name} | {i.points:g} | {earned} | {reason} |")
        return "\n".join(lines) + "\n"


def write_report(report: Report, folder: Path) -> None:
    """``folder/report.json`` and ``report.md``, each written atomically."""
    atomic_write_text(folder / "report.json", report.to_json())
    atomic_write_text(folder / "report.md", report.to_markdown())


def read_report(folder: Path) -> Report:
    return Report.from_dict(json.loads((folder / "report.json").read_text(encoding="utf-8")))
