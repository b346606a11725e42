"""The project's own promises: one dependency list, the documented commands exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_pip_list_equals_package_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml must have exactly one pip: list"
    pip = [p for p in pip_lists[0] if not p.startswith("-e ")]  # the editable install of this package itself
    assert sorted(pip) == sorted(deps)
    assert any(p.startswith("-e .") for p in pip_lists[0]), "environment.yml must install the package itself"


def test_readme_commands_exist_in_makefile():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    used = set(re.findall(r"\bmake ([a-z][a-z-]*)", readme))
    assert {"setup", "test"} <= used, "README must give the set-up and test commands"
    assert used <= targets, f"README uses make targets the Makefile lacks: {used - targets}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make setup" in ci and "make test" in ci
    assert "SEMINAR_DATA_DIR" in ci


def test_torch_is_pinned_for_setup_but_not_for_the_package():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_dep = next(d for d in deps if d.startswith("torch"))
    assert "==" not in torch_dep, "the package must accept any recent torch (GPU users bring their own)"
