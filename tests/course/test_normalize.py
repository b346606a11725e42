"""The committed form of a notebook (seminar_lib.course.normalize)."""

from __future__ import annotations

import json
from pathlib import Path

from seminar_lib import course


def test_normalize_notebook_strips_run_metadata():
    nb = {"metadata": {"papermill": {"a": 1}, "kernelspec": {"name": "venv"}, "language_info": {"version": "3.11"}},
          "nbformat": 4, "nbformat_minor": 4,
          "cells": [{"cell_type": "code", "metadata": {"papermill": {}, "execution": {}, "tags": []}, "source": "",
                     "outputs": []},
                    {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "", "outputs": []}]}
    out = course.normalize_notebook(nb)
    assert "papermill" not in out["metadata"] and out["nbformat_minor"] == 5
    assert out["metadata"]["language_info"] == {"version": "3.11"}  # JupyterLab writes the kernel's own
    assert out["cells"][0]["metadata"] == {} and out["cells"][1]["metadata"] == {"tags": ["parameters"]}


def test_normalize_notebook_writes_the_kernelspec_the_course_kernel_installs(tmp_path):
    from seminar_lib.cpu_kernels import install_kernelspec

    folder = Path(install_kernelspec(prefix=str(tmp_path)))
    spec = json.loads((folder / "kernel.json").read_text())
    out = course.normalize_notebook({"metadata": {"kernelspec": {"name": "venv", "display_name": "x"}}, "cells": []})
    # JupyterLab copies name, display name and language of the kernel it starts into the notebook
    assert out["metadata"]["kernelspec"] == {"display_name": spec["display_name"], "language": spec["language"],
                                             "name": folder.name}


def test_normalize_notebook_writes_outputs_as_jupyterlab_saves_them():
    stream = lambda name, text: {"output_type": "stream", "name": name, "text": text}  # noqa: E731
    bundle = {"output_type": "display_data", "metadata": {"w": 2.0},
              "data": {"application/x+json": {"b": [0.0, 0.5, 3.0, True], "a": {"n": -1.0}}, "text/plain": ["x"]}}
    cell = {"cell_type": "code", "metadata": {}, "source": "", "execution_count": 1,
            "outputs": [stream("stdout", ["a\n", "b"]), stream("stdout", "c\n"), stream("stderr", "e\n"),
                        stream("stdout", ["d\n"]), bundle]}
    out = course.normalize_notebook({"metadata": {}, "cells": [cell]})["cells"][0]["outputs"]
    # consecutive outputs of one stream merge (JupyterLab's output area does on load); stdout after stderr does not
    assert out[:3] == [stream("stdout", ["a\n", "bc\n"]), stream("stderr", "e\n"), stream("stdout", ["d\n"])]
    # JavaScript prints 0.0 as 0; bools stay bools; keys sorted as nbformat writes them
    assert out[3] == {"data": {"application/x+json": {"a": {"n": -1}, "b": [0, 0.5, 3, True]}, "text/plain": ["x"]},
                      "metadata": {"w": 2}, "output_type": "display_data"}
    assert list(out[3]["data"]["application/x+json"]) == ["a", "b"]
    assert isinstance(out[3]["data"]["application/x+json"]["b"][3], bool)
