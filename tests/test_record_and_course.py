"""Recorded metrics, notebook configuration and the notebook runner's helpers."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import polars as pl
import pytest

from seminar_lib.config import PROFILES, configure
from seminar_lib.course import list_notebooks, normalize_notebook
from seminar_lib.record import MIME, read_recorded_metrics, record_metrics


def test_record_metrics_displays_rounded_json_and_writes_full_precision(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEMINAR_RUN_DIR", str(tmp_path))
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    record_metrics("99_demo", {"EASE": {"ndcg@10": 0.123456789, "coverage@10": float("nan")}}, best=500)
    assert shown[MIME] == {"notebook": "99_demo", "metrics": {"EASE": {"ndcg@10": 0.1235, "coverage@10": None}},
                           "best": 500}
    assert "EASE" in shown["text/plain"] and "0.1235" in shown["text/plain"]
    saved = json.loads((tmp_path / "99_demo.metrics.json").read_text())
    assert saved["metrics"]["EASE"]["ndcg@10"] == 0.123456789


def test_record_metrics_shows_a_metric_a_row_and_a_model_a_column(monkeypatch):
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    record_metrics("x", {"EASE": {"ndcg@10": 0.2, "recall@10": 0.25, "ndcg@5": 0.1}, "Pop": {"ndcg@10": 0.123456}})
    assert shown["text/plain"] == (
        "recorded metrics of x\n"
        "metric       EASE     Pop\n"
        "ndcg@5     0.1000       -\n"
        "ndcg@10    0.2000  0.1235\n"
        "recall@10  0.2500       -")
    assert "<td style=\"text-align:right;\">0.1235</td>" in shown["text/html"]


def test_record_metrics_splits_many_models_into_blocks_of_at_most_100_columns(monkeypatch):
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    models = {f"SASRec(loss_number_{i})": {f"{m}@{k}": i / 10 for m in ("ndcg", "hit_rate", "coverage")
                                           for k in (5, 10, 20)} for i in range(9)}
    record_metrics("wide", models)
    text = shown["text/plain"]
    blocks = text.split("\n\n")
    assert max(len(line) for line in text.splitlines()) <= 100 and len(blocks) == 3
    assert all(b.splitlines()[-1].startswith("ndcg@20") for b in blocks)  # every block has every metric
    headers = [line for line in text.splitlines() if line.startswith("metric ")]
    assert len(headers) == 3 and sum(h.count("SASRec(") for h in headers) == 9


def test_record_metrics_accepts_a_tidy_table(monkeypatch):
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    table = pl.DataFrame({"model": ["A", "A"], "metric": ["ndcg", "recall"], "k": [10, 10], "value": [0.2, 0.3]})
    record_metrics("x", table)
    assert shown[MIME]["metrics"] == {"A": {"ndcg@10": 0.2, "recall@10": 0.3}}


def test_read_recorded_metrics(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={MIME: {"notebook": "n", "metrics": {}},
                                                                         "text/plain": "t"})]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert read_recorded_metrics(path)["notebook"] == "n"
    nb.cells[0].outputs = []
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no recorded metrics"):
        read_recorded_metrics(path)


def test_configure_resolves_profiles_and_overrides(capsys):
    cfg = configure("03_matrix_factorization", profile="smoke", seed=1, epochs=None, factors=8)
    assert cfg["epochs"] == PROFILES["03_matrix_factorization"]["smoke"]["epochs"] and cfg["factors"] == 8
    printed = capsys.readouterr().out
    assert "factors   8" in printed and "cpu" not in printed and "/" not in printed
    with pytest.raises(ValueError, match="no setting 'EPOCH'"):
        configure("03_matrix_factorization", EPOCH=3)
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        configure("03_matrix_factorization", profile="tiny")
    with pytest.raises(KeyError, match="has no setting 'lr'"):
        cfg["lr"]


def test_normalize_notebook_strips_run_metadata():
    nb = {"metadata": {"papermill": {"a": 1}, "kernelspec": {"name": "venv"}, "language_info": {"version": "3.11"}},
          "nbformat": 4, "nbformat_minor": 4,
          "cells": [{"cell_type": "code", "metadata": {"papermill": {}, "execution": {}, "tags": []}, "source": "",
                     "outputs": []},
                    {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "", "outputs": []}]}
    out = normalize_notebook(nb)
    assert "papermill" not in out["metadata"] and out["nbformat_minor"] == 5
    assert out["metadata"]["language_info"] == {"version": "3.11"}  # JupyterLab writes the kernel's own
    assert out["cells"][0]["metadata"] == {} and out["cells"][1]["metadata"] == {"tags": ["parameters"]}


def test_normalize_notebook_writes_the_kernelspec_the_course_kernel_installs(tmp_path):
    from seminar_lib.cpu_kernels import install_kernelspec

    folder = Path(install_kernelspec(prefix=str(tmp_path)))
    spec = json.loads((folder / "kernel.json").read_text())
    out = normalize_notebook({"metadata": {"kernelspec": {"name": "venv", "display_name": "x"}}, "cells": []})
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
    out = normalize_notebook({"metadata": {}, "cells": [cell]})["cells"][0]["outputs"]
    # consecutive outputs of one stream merge (JupyterLab's output area does on load); stdout after stderr does not
    assert out[:3] == [stream("stdout", ["a\n", "bc\n"]), stream("stderr", "e\n"), stream("stdout", ["d\n"])]
    # JavaScript prints 0.0 as 0; bools stay bools; keys sorted as nbformat writes them
    assert out[3] == {"data": {"application/x+json": {"a": {"n": -1}, "b": [0, 0.5, 3, True]}, "text/plain": ["x"]},
                      "metadata": {"w": 2}, "output_type": "display_data"}
    assert list(out[3]["data"]["application/x+json"]) == ["a", "b"]
    assert isinstance(out[3]["data"]["application/x+json"]["b"][3], bool)


def test_list_notebooks_selects_by_prefix():
    names = [p.stem for p in list_notebooks()]
    assert names == sorted(names) and all(n[:2].isdigit() for n in names)
    if names:
        assert [p.stem for p in list_notebooks([names[0][:2]])] == [names[0]]
    with pytest.raises(ValueError, match="no notebook matches"):
        list_notebooks(["77"])


def test_smoke_profile_pins_one_torch_thread():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        configure("01_data_and_baselines", profile="smoke", print_config=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
