"""Run the course's notebooks with papermill, and keep the committed notebooks clean.

    python -m seminar_lib.course run --write-back          # regenerate the committed outputs (smoke, CPU)
    python -m seminar_lib.course run --profile full --dataset ml-1m --device cuda   # into runs/<time>-full/

Committed notebooks come only from ``run --write-back``: each notebook is executed with its own
(smoke) defaults into a temporary file, normalised (:func:`normalize_notebook`) and moved into place.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
COMMON_PARAMETERS = ("DATASET", "PROFILE", "DEVICE", "SEED", "K")


def list_notebooks(names: Sequence[str] | None = None, folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course notebooks (``NN_*.ipynb``) in order; ``names`` selects by prefix, e.g. ``["01", "03"]``."""
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return found
    chosen = [p for p in found if any(p.stem == n or p.stem.startswith(f"{n}_") for n in names)]
    unknown = [n for n in names if not any(p.stem == n or p.stem.startswith(f"{n}_") for p in found)]
    if unknown:
        raise ValueError(f"no notebook matches {unknown}; notebooks: {[p.stem for p in found]}")
    return chosen


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The ``parameters`` cell's names and default values (via ``papermill.inspect_notebook``)."""
    import papermill

    params = papermill.inspect_notebook(str(path))
    return {name: info["default"] for name, info in params.items()}


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_notebook(src: Path, dst: Path, parameters: Mapping[str, Any] | None = None, *,
                     run_dir: Path | None = None, timeout: int = 1800, log_output: bool = False) -> Path:
    """Execute ``src`` into ``dst`` with papermill (kernel ``python3``, ``cwd`` = the notebook's folder).

    Unknown parameter names are refused. Progress bars are disabled (``TQDM_DISABLE=1``) so outputs are
    reproducible; ``run_dir`` becomes ``$SEMINAR_RUN_DIR`` (where ``record_metrics`` writes its JSON).
    """
    import papermill

    parameters = dict(parameters or {})
    known = notebook_parameters(src)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{src.name} has no parameter(s) {unknown}; its parameters: {sorted(known)}")
    env = {"TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    if run_dir is not None:
        env["SEMINAR_RUN_DIR"] = str(run_dir)
    with _environ(env):
        papermill.execute_notebook(str(src), str(dst), parameters=parameters, kernel_name="python3",
                                   cwd=str(src.parent), progress_bar=False, log_output=log_output,
                                   request_save_on_cell_execute=True, execution_timeout=timeout)
    return dst


def normalize_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """Strip what differs between runs and machines: papermill metadata, execution timings, empty
    tags, the Python version; set the kernelspec to ``python3``."""
    meta = nb.setdefault("metadata", {})
    meta.pop("papermill", None)
    meta.pop("widgets", None)
    meta["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    meta.get("language_info", {}).pop("version", None)
    for cell in nb.get("cells", []):
        cm = cell.setdefault("metadata", {})
        cm.pop("papermill", None)
        cm.pop("execution", None)
        if not cm.get("tags", True):
            cm.pop("tags")
    return nb


def write_back(path: Path, timeout: int = 1800) -> float:
    """Re-execute ``path`` with its defaults and replace it with the normalised result. Returns seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        execute_notebook(path, out, {}, timeout=timeout)
        nb = normalize_notebook(json.loads(out.read_text()))
        from seminar_lib.files import atomic_write_text
        atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    notebooks = list_notebooks(args.notebooks)
    params: dict[str, Any] = {}
    for name in COMMON_PARAMETERS:
        value = getattr(args, name.lower())
        if value is not None:
            params[name] = value
    for item in args.parameter or []:
        key, _, value = item.partition("=")
        params[key] = json.loads(value) if value[:1] in "[{0123456789-tfn\"" else value
    if args.write_back:
        if params:
            raise SystemExit("--write-back regenerates the committed notebooks with their own defaults; "
                             "do not pass parameters with it")
        for nb in notebooks:
            print(f"{nb.name}: executing", flush=True)
            print(f"{nb.name}: written back in {write_back(nb):.0f} s", flush=True)
        return 0
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.output or ROOT / "runs" / f"{stamp}-{params.get('PROFILE', 'smoke')}")
    out_dir.mkdir(parents=True, exist_ok=False)
    failed = []
    for nb in notebooks:
        start = time.perf_counter()
        try:
            execute_notebook(nb, out_dir / nb.name, params, run_dir=out_dir)
            print(f"{nb.name}: ok in {time.perf_counter() - start:.0f} s", flush=True)
        except Exception as exc:  # one failing notebook does not stop the others
            failed.append(nb.name)
            print(f"{nb.name}: FAILED after {time.perf_counter() - start:.0f} s: {str(exc).splitlines()[0][:300]}",
                  flush=True)
    print(f"outputs in {out_dir}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seminar_lib.course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks in order")
    r.add_argument("--notebooks", nargs="*", help="prefixes such as 01 03 (default: all)")
    r.add_argument("--dataset")
    r.add_argument("--profile", choices=["smoke", "full"])
    r.add_argument("--device", help="auto, cpu or cuda")
    r.add_argument("--seed", type=int)
    r.add_argument("--k", type=int)
    r.add_argument("-p", "--parameter", action="append", help="extra papermill parameter NAME=VALUE")
    r.add_argument("--output", help="run folder (default runs/<time>-<profile>)")
    r.add_argument("--write-back", action="store_true", help="regenerate the committed notebooks in place")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
