"""Record a notebook's final metrics machine-readably (for tests, nbval and the leaderboard).

The last cell of every notebook calls :func:`record_metrics`. It displays a JSON bundle under the
MIME type :data:`MIME` (values rounded to 4 decimals, so nbval's exact comparison is stable) with a
table for people beside it — a metric a row, a model a column, split into blocks that fit 100
characters (text) and the same as HTML — and — when ``$SEMINAR_RUN_DIR`` is set — writes
``<run dir>/<notebook>.metrics.json`` with full precision, atomically.
:func:`read_recorded_metrics` reads the bundle back from an executed ``.ipynb``; :func:`collect_metrics`
reads a run's ``*.metrics.json`` files back as structured rows, and :func:`write_leaderboard` makes the
run's leaderboard from them; :func:`reference_results` reads one notebook's metrics and run facts from a
committed run folder (``results/full-ml-100k/``: the ``full`` profile's numbers the notebooks show beside
their own) — this module is the one that writes and reads those files.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from seminar_lib.display import Column, Grid, Group, format_number
from seminar_lib.files import atomic_write_bytes, atomic_write_text
from seminar_lib.metrics.keys import metric_key, metric_key_expr, split_key
from seminar_lib.paths import PACKAGE_ROOT

MIME = "application/vnd.seminar-lib.metrics+json"
RUN_DIR_VAR = "SEMINAR_RUN_DIR"
DIGITS = 4

Metrics = Mapping[str, Mapping[str, float]]  # model → {"ndcg@10": value, ...}


def metrics_from_table(table: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Tidy ``model, metric, k, value`` (as :func:`seminar_lib.evaluation.fit_and_evaluate` and
    ``evaluate_next_item(..., name=...)`` report, or several of their tables concatenated) →
    ``{model: {"<metric>@<k>": value}}``. Other columns (``ci_low``, ``n_users`` …) are ignored; a null ``k``
    is a metric without a cut-off."""
    missing = [c for c in ("model", "metric", "k", "value") if c not in table.columns]
    if missing:
        raise ValueError(f"a metrics table needs the columns model, metric, k, value; it has no {', '.join(missing)}"
                         + (" (give the report a name=...)" if missing == ["model"] else ""))
    out: dict[str, dict[str, float]] = {}
    for model, metric, k, value in table.select("model", "metric", "k", "value").iter_rows():
        out.setdefault(model, {})[metric_key(metric, k)] = value
    return out


def _clean(metrics: Metrics, digits: int | None) -> dict[str, dict[str, float | None]]:
    def num(v: float) -> float | None:
        v = float(v)
        if not math.isfinite(v):
            return None
        return round(v, digits) if digits is not None else v
    return {str(model): {str(name): num(v) for name, v in values.items()} for model, values in metrics.items()}


def record_metrics(notebook: str, metrics: Metrics | pl.DataFrame, **extra: Any) -> None:
    """Display and (with ``$SEMINAR_RUN_DIR``) save ``metrics`` of ``notebook`` (its file stem).

    ``metrics``: ``{model: {"ndcg@10": 0.21, ...}}`` or a tidy table with ``model, metric, k, value`` (a
    report's ``metrics``, or ``pl.concat`` of several; other columns are ignored).
    ``extra``: other JSON-serialisable facts worth keeping (e.g. ``best_regularization=500``).
    """
    if isinstance(metrics, pl.DataFrame):
        metrics = metrics_from_table(metrics)
    full = {"notebook": notebook, "metrics": _clean(metrics, None), **extra}
    shown = {"notebook": notebook, "metrics": _clean(metrics, DIGITS), **extra}
    run_dir = os.environ.get(RUN_DIR_VAR)
    if run_dir:
        atomic_write_text(Path(run_dir) / f"{notebook}.metrics.json", json.dumps(full, indent=1, sort_keys=True))
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency of the course environment
        print(_title(shown) + "\n" + _grid(shown).text())
    else:
        grid = _grid(shown)
        display({MIME: shown, "text/plain": _title(shown) + "\n" + grid.text(),
                 "text/html": f"<p>{html.escape(_title(shown))}</p>\n{grid.html()}"}, raw=True)


def _title(bundle: Mapping[str, Any]) -> str:
    return f"recorded metrics of {bundle['notebook']}"


def _grid(bundle: Mapping[str, Any]) -> Grid:
    """Metrics as rows (in metric, then k order), models as columns."""
    metrics = bundle["metrics"]
    names = sorted({n for values in metrics.values() for n in values}, key=_metric_order)
    groups = [Group(str(model), [Column(str(model), [format_number(values.get(n), DIGITS) for n in names])])
              for model, values in metrics.items()]
    return Grid("metric", names, groups)


def _metric_order(name: str) -> tuple[str, int]:
    metric, k = split_key(name)
    return metric, k if k is not None else 0


def read_recorded_metrics(notebook_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The last metrics bundle displayed in an executed notebook (raises if there is none)."""
    nb = json.loads(Path(notebook_path).read_text())
    found = None
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                found = data[MIME]
    if found is None:
        raise ValueError(f"{notebook_path} has no recorded metrics (no output of type {MIME}); "
                         "did its last cell call record_metrics and did it run to the end?")
    return found


# ------------------------------------------------------------------------------------ leaderboard
def collect_metrics(run_dir: Path) -> pl.DataFrame:
    """Every recorded metric of a run, structured: ``notebook, model, metric, k, value`` (one row per
    value; ``k`` null for a key without ``@k``)."""
    rows = []
    for path in sorted(run_dir.glob("*.metrics.json")):
        bundle = json.loads(path.read_text())
        for model, values in bundle["metrics"].items():
            rows += [{"notebook": bundle["notebook"], "model": model, **dict(zip(("metric", "k"), split_key(key))),
                      "value": v} for key, v in values.items()]
    schema = {"notebook": pl.String, "model": pl.String, "metric": pl.String, "k": pl.Int64, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def leaderboard(run_dir: Path, k: int = 10) -> pl.DataFrame:
    """One row per (notebook, model), the metrics @k as columns (``ndcg@10`` …), best nDCG first."""
    tidy = collect_metrics(run_dir).filter(pl.col("k") == k)
    if tidy.is_empty():
        return pl.DataFrame(schema={"notebook": pl.String, "model": pl.String})
    wide = (tidy.with_columns(metric_key_expr().alias("metric"))
            .pivot("metric", index=["notebook", "model"], values="value"))
    key = metric_key("ndcg", k)
    metrics = sorted(c for c in wide.columns if c not in ("notebook", "model"))
    if key not in metrics:
        return wide.select("notebook", "model", *metrics)
    metrics.remove(key)
    return wide.select("notebook", "model", key, *metrics).sort(key, descending=True, nulls_last=True)


def markdown_table(df: pl.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (floats rounded)."""
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "|".join(" --- " for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines) + "\n"


def write_leaderboard(run_dir: Path, k: int = 10) -> pl.DataFrame:
    """``leaderboard.csv`` / ``.md`` / ``.png`` (nDCG@k against coverage@k, one labelled point per model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = leaderboard(run_dir, k)
    atomic_write_text(run_dir / "leaderboard.csv", board.write_csv())
    atomic_write_text(run_dir / "leaderboard.md", f"# Course leaderboard (@{k})\n\n" + markdown_table(board))
    x, y = metric_key("coverage", k), metric_key("ndcg", k)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if {x, y} <= set(board.columns):
        for nb, model, xv, yv in board.select("notebook", "model", x, y).iter_rows():
            if xv is None or yv is None:
                continue
            ax.scatter(xv, yv, s=40)
            ax.annotate(f"{model} ({nb[:2]})", (xv, yv), xytext=(4, 3), textcoords="offset points", fontsize=8)
    ax.set(xlabel=x, ylabel=y, title="Accuracy against catalogue coverage, every model of the course")
    ax.grid(True, alpha=0.3)
    with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
        fig.savefig(tmp.name, dpi=100, bbox_inches="tight")
        atomic_write_bytes(run_dir / "leaderboard.png", Path(tmp.name).read_bytes())
    plt.close(fig)
    return board


# ------------------------------------------------------------------------------ reference results
#: The committed run folder of the ``full`` profile on ml-100k, relative to the repository root.
REFERENCE_DIR = "results/full-ml-100k"
#: The command (run at the repository root) that regenerates :data:`REFERENCE_DIR`.
REFERENCE_COMMAND = ("OMP_NUM_THREADS=1 .venv/bin/python -m seminar_lib.course run --profile full --dataset ml-100k "
                     "--device cpu --output results/full-ml-100k")
_METRICS_SCHEMA = {"model": pl.String, "metric": pl.String, "k": pl.Int64, "value": pl.Float64}


@dataclass(frozen=True)
class ReferenceResults:
    """One notebook's recorded metrics from a run folder, with the facts of the run that made them.

    ``metrics``: tidy ``model, metric, k, value`` (one row per recorded value in the file's order —
    models and metric names sorted, as :func:`record_metrics` writes them; ``k`` is null for a value
    without ``@k``); ``profile``, ``dataset``, ``device``: the run's;
    ``settings``: the notebook's resolved profile settings (epochs …) as the runner recorded them (None
    in a run made before the runner recorded them); ``seconds``: the notebook's wall time in that run;
    ``extra``: other facts the notebook recorded (``record_metrics(..., best_epochs=...)``).
    """

    notebook: str
    folder: Path
    metrics: pl.DataFrame
    profile: str | None
    dataset: str | None
    device: str | None
    settings: Mapping[str, Any] | None
    seconds: float | None
    status: str | None
    finished: str | None
    git_sha: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def wide(self, k: int | None = None, digits: int | None = 4) -> pl.DataFrame:
        """A row per model, a ``<metric>@<k>`` column per value (:func:`seminar_lib.metrics.to_wide`),
        only the values at ``k`` when given, rounded to ``digits``."""
        from seminar_lib.metrics import to_wide

        table = self.metrics.drop_nulls("k")
        if k is not None:
            table = table.filter(pl.col("k") == k)
        if table.is_empty():
            have = sorted(set(self.metrics["k"].drop_nulls().to_list()))
            raise ValueError(f"{self.notebook}'s reference results have no metric at k={k}; recorded k: {have}")
        return to_wide(table, digits=digits)

    def describe(self) -> str:
        """One line that labels a table of these numbers: notebook, profile, dataset, budget, time (the label of a table of these numbers)."""
        budget = ""
        if self.settings:
            shown = [f"{name} {self.settings[name]}" for name in ("epochs", "cv_epochs", "bootstrap")
                     if name in self.settings]
            budget = ", " + ", ".join(shown) if shown else ""
        took = ""
        if self.seconds is not None and self.device:
            took = f", {self.seconds:.0f} s" if self.seconds < 120 else f", {self.seconds / 60:.0f} min"
            took += f" on {self.device}"
        return (f"reference run: {self.notebook}, profile {self.profile}, {self.dataset}{budget}{took} "
                f"(read from {'/'.join(self.folder.parts[-2:])})")


def find_results_folder(folder: str | os.PathLike[str] = REFERENCE_DIR, start: str | os.PathLike[str] | None = None) -> Path:
    """The run folder ``folder``: as given if absolute, else the first ``<dir>/<folder>`` that exists for
    ``<dir>`` = ``start`` (default: the working directory) and each of its parents — a notebook runs with
    its working directory in ``notebooks/`` or at the repository root — then the repository this
    package was loaded from. Raises ``FileNotFoundError`` naming the places looked and the command that
    regenerates the folder."""
    folder = Path(folder)
    if folder.is_absolute():
        candidates = [folder]
    else:
        here = Path(start if start is not None else Path.cwd()).resolve()
        candidates = [d / folder for d in (here, *here.parents)]
        package_root = PACKAGE_ROOT / folder
        if package_root not in candidates:
            candidates.append(package_root)
    for candidate in candidates:
        if (candidate / "run.json").is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates[:3]) + (" …" if len(candidates) > 3 else "")
    raise FileNotFoundError(f"no run folder {folder} with a run.json (looked in {looked}); regenerate it at the "
                            f"repository root with:  {REFERENCE_COMMAND}")


def reference_results(notebook: str, folder: str | os.PathLike[str] = REFERENCE_DIR, *,
                      start: str | os.PathLike[str] | None = None) -> ReferenceResults:
    """``notebook``'s recorded metrics (``<folder>/<notebook>.metrics.json``) and its run's facts
    (``<folder>/run.json``); ``folder`` is found by :func:`find_results_folder`.

    ``notebook`` is the file stem (``"05_sasrec_losses"``) or its two-digit prefix (``"05"``). Raises
    ``FileNotFoundError`` (with the regenerate command) when the folder or the notebook's metrics are
    missing, ``ValueError`` when the run did not finish the notebook.
    """
    root = find_results_folder(folder, start)
    run = json.loads((root / "run.json").read_text())
    entries = {entry["notebook"]: entry for entry in run.get("notebooks", [])}
    stems = sorted({*entries, *(p.name.removesuffix(".metrics.json") for p in root.glob("*.metrics.json"))})
    matches = [s for s in stems if s == notebook or s.startswith(f"{notebook}_")]
    if len(matches) != 1:
        raise FileNotFoundError(f"{root} has {'no' if not matches else 'several'} results for notebook {notebook!r}"
                                f"{': ' + ', '.join(matches) if matches else ''}; it has {stems}. Regenerate with:  "
                                f"{REFERENCE_COMMAND}")
    stem = matches[0]
    entry = entries.get(stem, {})
    if entry and entry.get("status") != "ok":
        raise ValueError(f"{stem} did not finish in the run {root} (status {entry.get('status')!r}"
                         f"{', error ' + str(entry['error']) if entry.get('error') else ''}); rerun it with:  "
                         f"{REFERENCE_COMMAND}")
    path = root / f"{stem}.metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; regenerate the folder with:  {REFERENCE_COMMAND}")
    bundle = json.loads(path.read_text())
    rows = [{"model": model, "metric": metric, "k": k, "value": value}
            for model, values in bundle["metrics"].items()
            for metric, k, value in ((*split_key(name), value) for name, value in values.items())]
    params = run.get("parameters", {})
    environment = run.get("environment", {})
    extra = {key: value for key, value in bundle.items() if key not in ("notebook", "metrics")}
    seconds = entry.get("seconds")
    return ReferenceResults(
        notebook=stem, folder=root, metrics=pl.DataFrame(rows, schema=_METRICS_SCHEMA),
        profile=params.get("PROFILE"), dataset=params.get("DATASET"), device=environment.get("device"),
        settings=entry.get("settings"), seconds=float(seconds) if seconds is not None else None,
        status=entry.get("status"), finished=run.get("finished"), git_sha=environment.get("git_sha"), extra=extra)
