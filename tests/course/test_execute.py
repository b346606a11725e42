"""One notebook through papermill (seminar_lib.course.execute): the notebook list, the kernel's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from seminar_lib import course


def test_list_notebooks_selects_by_prefix():
    names = [p.stem for p in course.list_notebooks()]
    assert names == sorted(names) and all(n[:2].isdigit() for n in names)
    if names:
        assert [p.stem for p in course.list_notebooks([names[0][:2]])] == [names[0]]
    with pytest.raises(ValueError, match="no notebook matches"):
        course.list_notebooks(["77"])


def test_kernels_get_the_run_folder_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = course.kernel_environment(Path("results/run"))
    assert env["SEMINAR_RUN_DIR"] == str(tmp_path / "results" / "run")
