"""The committed reference results: the runner's run folder read back by ``seminar_lib.record.reference_results``.

The fixture folder is written by the real writers (``record_metrics`` with ``$SEMINAR_RUN_DIR``, the runner's
``RunState``), so a change to what a run writes that the reader does not follow fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from seminar_lib.config import PROFILES, configure, torch_threads
from seminar_lib.course import NotebookResult, RunState, notebook_settings
from seminar_lib.record import REFERENCE_COMMAND, find_results_folder, record_metrics, reference_results


def _run_folder(root: Path, monkeypatch: pytest.MonkeyPatch, *, status_06: str = "ok") -> Path:
    """``<root>/results/full-ml-100k`` as a two-notebook ``full`` run on ml-100k would leave it."""
    folder = root / "results" / "full-ml-100k"
    folder.mkdir(parents=True)
    monkeypatch.setenv("SEMINAR_RUN_DIR", str(folder))
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: None)
    record_metrics("05_sasrec_losses", {"TopPopular": {"ndcg@10": 0.0071, "coverage@10": 0.068, "ndcg@5": 0.005},
                                        "SASRec(softmax)": {"ndcg@10": 0.0226, "coverage@10": 0.83, "ndcg@5": 0.019}},
                   best_epochs={"SASRec(softmax)": 40})
    record_metrics("06_bert4rec_and_practice", {"cv SASRec": {"ndcg@10": 0.05, "seconds": 12.5}})
    params = {"PROFILE": "full", "DATASET": "ml-100k", "DEVICE": "cpu"}
    state = RunState(folder, params, status="complete", notebooks=[
        NotebookResult("05_sasrec_losses", "ok", 1534.2, settings={"epochs": 100, "bootstrap": 2000}),
        NotebookResult("06_bert4rec_and_practice", status_06, 61.0,
                       error=None if status_06 == "ok" else {"ename": "RuntimeError", "evalue": "boom"},
                       settings={"epochs": 60, "cv_epochs": 30})])
    state.environment = {"device": "cpu: x86_64 (2 cores)", "git_sha": "abc123", "torch_threads": 1}
    state.finished = "2026-12-02T15:00:00+00:00"
    state.save()
    return folder


def test_reference_results_reads_the_tidy_metrics_and_the_run_facts(tmp_path, monkeypatch):
    folder = _run_folder(tmp_path, monkeypatch)
    ref = reference_results("05", start=tmp_path)
    assert ref.notebook == "05_sasrec_losses" and ref.folder == folder
    assert ref.metrics.columns == ["model", "metric", "k", "value"]
    # the file's order: record_metrics writes models and metric names sorted
    assert ref.metrics.rows() == [("SASRec(softmax)", "coverage", 10, 0.83), ("SASRec(softmax)", "ndcg", 10, 0.0226),
                                  ("SASRec(softmax)", "ndcg", 5, 0.019), ("TopPopular", "coverage", 10, 0.068),
                                  ("TopPopular", "ndcg", 10, 0.0071), ("TopPopular", "ndcg", 5, 0.005)]
    assert (ref.profile, ref.dataset, ref.status, ref.seconds) == ("full", "ml-100k", "ok", 1534.2)
    assert ref.settings == {"epochs": 100, "bootstrap": 2000} and ref.extra == {"best_epochs": {"SASRec(softmax)": 40}}
    assert ref.device == "cpu: x86_64 (2 cores)" and ref.git_sha == "abc123"
    assert ref.describe() == ("reference run: 05_sasrec_losses, profile full, ml-100k, epochs 100, bootstrap 2000,"
                              " 26 min on cpu: x86_64 (2 cores) (read from results/full-ml-100k)")


def test_reference_results_values_without_k_and_model_names_with_spaces(tmp_path, monkeypatch):
    _run_folder(tmp_path, monkeypatch)
    ref = reference_results("06_bert4rec_and_practice", start=tmp_path)
    assert ref.metrics.rows() == [("cv SASRec", "ndcg", 10, 0.05), ("cv SASRec", "seconds", None, 12.5)]
    assert ref.wide().rows() == [("cv SASRec", 0.05)]  # only values with a k are metrics@k
    assert ref.describe().startswith("reference run: 06_bert4rec_and_practice, profile full, ml-100k, epochs 60, "
                                     "cv_epochs 30, 61 s on cpu")  # under two minutes in seconds


def test_wide_is_a_row_per_model_and_a_column_per_metric_at_k(tmp_path, monkeypatch):
    _run_folder(tmp_path, monkeypatch)
    ref = reference_results("05", start=tmp_path)
    wide = ref.wide(k=10)
    assert wide.columns == ["model", "coverage@10", "ndcg@10"]
    assert wide.rows() == [("SASRec(softmax)", 0.83, 0.0226), ("TopPopular", 0.068, 0.0071)]
    assert ref.wide().columns == ["model", "coverage@10", "ndcg@10", "ndcg@5"]
    with pytest.raises(ValueError, match=r"no metric at k=7; recorded k: \[5, 10\]"):
        ref.wide(k=7)


def test_the_folder_is_found_from_the_notebooks_folder_and_from_the_repository_root(tmp_path, monkeypatch):
    folder = _run_folder(tmp_path, monkeypatch)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert find_results_folder() == folder and reference_results("05").folder == folder
    monkeypatch.chdir(tmp_path)
    assert find_results_folder() == folder
    assert find_results_folder(folder) == folder  # an absolute path is taken as it is
    assert find_results_folder("full-ml-100k", start=tmp_path / "results") == folder
    # outside any checkout, the repository the package was loaded from is the last place looked
    monkeypatch.setattr("seminar_lib.record.PACKAGE_ROOT", tmp_path)
    monkeypatch.chdir("/")
    assert find_results_folder() == folder


def test_a_missing_folder_or_notebook_names_the_command_that_regenerates_it(tmp_path, monkeypatch):
    monkeypatch.setattr("seminar_lib.record.PACKAGE_ROOT", tmp_path / "elsewhere")  # not this checkout's results/
    with pytest.raises(FileNotFoundError, match="no run folder results/full-ml-100k") as missing:
        find_results_folder("results/full-ml-100k", start=tmp_path)
    assert REFERENCE_COMMAND in str(missing.value) and "--profile full --dataset ml-100k" in REFERENCE_COMMAND
    _run_folder(tmp_path, monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"no results for notebook '03'.*05_sasrec_losses"):
        reference_results("03", start=tmp_path)
    (tmp_path / "results" / "full-ml-100k" / "05_sasrec_losses.metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="05_sasrec_losses.metrics.json is missing"):
        reference_results("05", start=tmp_path)


def test_a_notebook_that_failed_in_the_run_is_refused(tmp_path, monkeypatch):
    _run_folder(tmp_path, monkeypatch, status_06="failed")
    with pytest.raises(ValueError, match="did not finish.*'failed'.*RuntimeError"):
        reference_results("06", start=tmp_path)


def test_the_runner_records_each_notebooks_resolved_settings():
    full = PROFILES["05_sasrec_losses"]["full"]
    settings = notebook_settings("05_sasrec_losses", {"PROFILE": "full", "EPOCHS": 2, "SEED": 1},
                                 accepted={"PROFILE", "EPOCHS", "SEED"})
    assert settings == {**full, "epochs": 2}
    # a parameter the notebook does not take (the runner passes each notebook only its own) changes nothing
    assert notebook_settings("05_sasrec_losses", {"PROFILE": "full", "EPOCHS": 2}, accepted={"PROFILE"}) == full
    assert notebook_settings("05_sasrec_losses", {}) == PROFILES["05_sasrec_losses"]["smoke"]
    assert notebook_settings("99_not_a_course_notebook", {"PROFILE": "full"}) is None


def test_a_cpu_run_of_the_full_profile_uses_one_torch_thread():
    import torch

    assert torch_threads("full", "cpu") == 1 and torch_threads("full", "cuda:0") is None
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        torch_threads("tiny", "cpu")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        configure("05_sasrec_losses", profile="full", device="cpu", print_config=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_run_json_written_by_the_runner_keeps_the_settings(tmp_path, monkeypatch):
    folder = _run_folder(tmp_path, monkeypatch)
    saved = json.loads((folder / "run.json").read_text())
    assert [n["settings"] for n in saved["notebooks"]] == [{"epochs": 100, "bootstrap": 2000},
                                                         {"epochs": 60, "cv_epochs": 30}]
    assert isinstance(reference_results("06", start=tmp_path).metrics, pl.DataFrame)
