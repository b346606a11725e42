"""The command line, ``python -m seminar_lib.course run | write-back …`` (see :mod:`seminar_lib.course`)."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import seminar_lib.course as course_package
from seminar_lib.course.execute import list_notebooks
from seminar_lib.course.normalize import write_back
from seminar_lib.course.run import run_course
from seminar_lib.paths import NOTEBOOKS_DIR, PACKAGE_ROOT

ROOT = PACKAGE_ROOT
COMMON_PARAMETERS = ("DATASET", "PROFILE", "DEVICE", "SEED", "K")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seminar_lib.course", description=course_package.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks in order into a new run folder")
    r.add_argument("--notebooks", nargs="*", help="prefixes such as 01 03 (default: all)")
    r.add_argument("--dataset", help="e.g. ml-100k, ml-1m, kion, synthetic")
    r.add_argument("--profile", choices=["smoke", "full"])
    r.add_argument("--device", help="auto, cpu or cuda")
    r.add_argument("--seed", type=int)
    r.add_argument("--k", type=int)
    r.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="extra papermill parameter (JSON value), e.g. -p EPOCHS=50")
    r.add_argument("--workers", type=int, default=1, help="notebooks run at once (default 1: one GPU)")
    r.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    r.add_argument("--output", type=Path, help="run folder (default runs/<time>-<profile>; must not exist)")
    r.add_argument("--resume", action="store_true",
                   help="run the selected notebooks into the existing run folder --output (same parameters): "
                        "their results replaced, the other notebooks' kept, the leaderboard rewritten")
    r.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR)
    r.add_argument("--write-back", action="store_true", help="regenerate the committed notebooks in place")
    w = sub.add_parser("write-back", help="re-execute the given notebooks with their defaults, in place")
    w.add_argument("paths", nargs="+", type=Path, help="notebooks, e.g. homework/*/private/reference/*.ipynb")
    w.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)

    if args.command == "write-back":
        for path in args.paths:
            if path.suffix != ".ipynb" or not path.is_file():
                parser.error(f"{path} is not a notebook file")
            print(f"{path}: written back in {write_back(path, args.timeout):.0f} s", flush=True)
        return 0

    notebooks = list_notebooks(args.notebooks, args.notebooks_dir)
    params: dict[str, Any] = {name: getattr(args, name.lower()) for name in COMMON_PARAMETERS
                              if getattr(args, name.lower()) is not None}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p expects NAME=VALUE, got {item!r}")
        params[name] = _parse_value(value)
    if args.write_back:
        if params:
            parser.error("--write-back regenerates the committed notebooks with their own defaults; "
                         "do not pass parameters with it")
        for nb in notebooks:
            print(f"{nb.name}: written back in {write_back(nb, args.timeout):.0f} s", flush=True)
        return 0
    if args.resume and args.output is None:
        parser.error("--resume needs --output: the run folder to resume")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = args.output or ROOT / "runs" / f"{stamp}-{params.get('PROFILE', 'smoke')}"
    state = run_course(notebooks, params, out_dir, workers=args.workers, timeout=args.timeout, resume=args.resume)
    if state.stopped_by is not None:
        running = [r.notebook for r in state.notebooks if r.status == "interrupted"]
        print(f"interrupted by {state.stopped_by}" + (f" while running {', '.join(running)}" if running else "")
              + f"; no kernel is left running\nrun folder: {out_dir}", flush=True)
        return 128 + int(signal.Signals[state.stopped_by])
    failed = [r.notebook for r in state.notebooks if r.status != "ok"]
    print(f"{state.status}: {len(state.notebooks) - len(failed)}/{len(state.notebooks)} notebooks ok"
          + (f"; failed: {', '.join(failed)}" if failed else "") + f"\nrun folder: {out_dir}")
    board = out_dir / "leaderboard.md"
    if board.is_file():
        print(board.read_text())
    return 1 if failed else 0
