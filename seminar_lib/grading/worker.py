"""The sandboxed worker of the cases stage: ``python -m seminar_lib.grading.worker REQUEST REPLY``.

It reads ``REQUEST/request.json`` (the harness path, the forbidden names, the cases: index, probe,
inputs as JSON + ``REQUEST/<index>.npz``), installs the forbidden stubs, imports ``harness.py`` and the
submission's ``solution.py``, and for each case in order writes ``REPLY/<index>.started``, runs the probe
and writes ``REPLY/<index>.npz`` then ``REPLY/<index>.json`` (``{"outputs": JSON text | null, "error": str |
null, "seconds": float}``; the JSON file is written last, so its presence means the case is answered).
``REPLY/ready`` is written once the imports are done, ``REPLY/import.json`` instead if ``solution.py``
cannot be imported. Everything here runs with the student's code in the process, so the grader treats
every reply as untrusted plain data (:func:`seminar_lib.grading.cases.decode`, size limits, no pickle).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def serve(request_dir: Path, reply_dir: Path) -> int:
    """Answer every case of the request (see the module docstring); returns the exit code."""
    from seminar_lib.grading import cases as C
    from seminar_lib.grading.forbidden import guarded_builtins, install_stubs

    request = json.loads((request_dir / "request.json").read_text(encoding="utf-8"))
    reply_dir.mkdir(parents=True, exist_ok=True)
    harness = C.load_module(Path(request["harness"]), "harness")
    install_stubs(request.get("forbidden", []))
    solution_path = Path(request["solution"])
    sys.path.insert(0, str(solution_path.parent))
    try:
        if not solution_path.is_file():
            raise FileNotFoundError("solution.py is missing")
        solution = C.load_module(solution_path, "solution", guarded_builtins(request.get("forbidden", [])))
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit, anything at import
        _write(reply_dir / "import.json", json.dumps({"error": C.summarize_exception(exc)}).encode())
        return 0
    _write(reply_dir / "ready", b"")
    for case in request["cases"]:
        index = case["index"]
        _write(reply_dir / f"{index}.started", b"")
        npz = request_dir / f"{index}.npz"
        inputs = C.decode(case["inputs"], C.load_npz(npz.read_bytes()) if npz.exists() else {})
        result = C.run_probe(harness, solution, case["probe"], inputs)
        text, arrays = None, {}
        error = result.error
        if result.ok:
            try:
                text, arrays = C.encode(result.outputs)
            except (C.PlainDataError, ValueError) as exc:
                error = f"the result is not plain data ({C.summarize_exception(exc)})"
        _write(reply_dir / f"{index}.npz", C.save_npz(arrays))
        _write(reply_dir / f"{index}.json",
               json.dumps({"outputs": text, "error": error, "seconds": result.seconds}).encode())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m seminar_lib.grading.worker REQUEST_DIR REPLY_DIR", file=sys.stderr)
        return 2
    return serve(Path(args[0]), Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
