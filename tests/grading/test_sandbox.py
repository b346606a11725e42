"""The sandbox itself, for each kind this machine has (bubblewrap, and the unshare fallback): what a stage
sees, what it may change, its limits, and that none of its processes outlives it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from grading_kit import HW1, MARKER, leftover, sandbox_kinds

from seminar_lib.grading import sandbox as S
from seminar_lib.grading.assignment import Limits
from seminar_lib.grading.grader import ROOT

KINDS = sandbox_kinds()
LIMITS = Limits(memory_mb=512, processes=32, output_mb=1, disk_mb=8)


def mounts() -> S.Mounts:
    return S.Mounts((ROOT,), (*ROOT.glob("homework/*/private"), ROOT / "grades", ROOT / ".git"))


def bind_points_in_tmp() -> list[str]:
    """What a stage's own, empty /tmp holds: the top folders of the read-only binds (the project and its venv)
    when the checkout itself lives under /tmp (a CI clone there) — mount points, not the host's files."""
    tmp = Path("/tmp").resolve()
    return sorted({p.relative_to(tmp).parts[0] for p in (ROOT.resolve(), Path(sys.prefix).resolve())
                   if tmp in p.parents})


def run_python(kind: str, tmp_path: Path, code: str, *, timeout: float = 60, limits: Limits = LIMITS) -> S.StageRun:
    stage = S.Stage((sys.executable, "-c", textwrap.dedent(code)), tmp_path / "stage", mounts(), limits, timeout)
    return S.Sandbox(kind).run(stage)


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


def test_this_machine_has_a_sandbox():
    assert KINDS, "neither bubblewrap nor unshare works here"


def test_what_a_stage_sees_and_may_change(kind, tmp_path):
    host_marker = Path("/tmp") / f"host-only-{os.getpid()}"
    host_marker.write_text("the host's /tmp")
    os.environ["GRADER_SECRET_FOR_TEST"] = "s3cret"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    grader_cmdline = Path("/proc/self/cmdline").read_bytes().decode(errors="replace")
    try:
        run = run_python(kind, tmp_path, f"""
            import json, os, socket, sys, sysconfig
            out = {{"uid": os.getuid(), "cwd": os.getcwd(), "env": "GRADER_SECRET_FOR_TEST" in os.environ,
                   "private": os.listdir({str(HW1 / 'private')!r}), "host_tmp": os.path.exists({str(host_marker)!r}),
                   "tmp": os.listdir("/tmp")}}
            cmdlines = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdlines.append(open(f"/proc/{{pid}}/cmdline", "rb").read().decode(errors="replace"))
                except OSError:
                    pass
            out["grader_visible"] = {grader_cmdline!r} in cmdlines
            out["n_processes"] = len(cmdlines)
            writes = {{}}
            for target in [{str(ROOT / 'homework' / 'hw1_metrics_knn' / 'harness.py')!r},
                           {str(ROOT / 'seminar_lib' / 'grade.py')!r},
                           os.path.join(sysconfig.get_paths()["purelib"], "evil.pth"),
                           {str(ROOT / 'grades' / 'x.json')!r}, {str(HW1 / 'private' / 'cases.py')!r}]:
                try:
                    with open(target, "a") as f:
                        f.write("import os")
                    writes[target] = "written"
                except OSError as exc:
                    writes[target] = type(exc).__name__
            out["writes"] = writes
            open("mine.txt", "w").write("the stage's own folder is writable")
            open("/tmp/t.txt", "w").write("so is its /tmp")
            import multiprocessing.synchronize
            multiprocessing.synchronize.Lock(ctx=None)  # needs a writable /dev/shm (joblib checks this)
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3)
                out["host_port"] = "connected"
            except OSError as exc:
                out["host_port"] = type(exc).__name__
            inner = socket.socket(); inner.bind(("127.0.0.1", 0)); inner.listen()
            socket.create_connection(inner.getsockname(), timeout=3)
            out["loopback"] = "works"
            print(json.dumps(out))
        """)
    finally:
        listener.close()
        host_marker.unlink()
        del os.environ["GRADER_SECRET_FOR_TEST"]
    assert run.returncode == 0, run.output
    out = json.loads(run.output.strip().splitlines()[-1])
    assert out["cwd"] == "/sandbox/work" and not out["env"] and out["private"] == [] and not out["host_tmp"]
    assert out["tmp"] == bind_points_in_tmp() and not out["grader_visible"] and out["n_processes"] <= 3
    if os.geteuid() == 0:
        assert out["uid"] != 0
    assert "written" not in out["writes"].values(), out["writes"]  # read-only, or an empty tmpfs (private/, grades/)
    assert not (ROOT / "grades" / "x.json").exists() and "import os" not in (HW1 / "private" / "cases.py").read_text()
    assert out["host_port"] == "ConnectionRefusedError" and out["loopback"] == "works"
    assert (tmp_path / "stage" / "work" / "mine.txt").is_file()


def test_limits_memory_processes_file_size_and_output(kind, tmp_path):
    run = run_python(kind, tmp_path, f"""
        import os, subprocess, sys
        sys.stdout.write("y" * (3 << 20) + "\\n")  # more than output_mb: only the tail is kept
        try:
            block = bytearray({(LIMITS.memory_mb + 256) << 20})
            print("memory: allocated")
        except MemoryError:
            print("memory: refused")
        children = []
        try:
            for _ in range(2 * {LIMITS.processes}):
                children.append(subprocess.Popen(["sleep", "30"]))
            print("processes: all started")
        except OSError:
            print(f"processes: refused after {{len(children)}}")
        try:
            with open("big", "wb") as f:
                f.write(b"x" * ({LIMITS.disk_mb + 1} << 20))
            print("file: written")
        except OSError:
            print("file: refused")
    """)
    assert "memory: refused" in run.output and "file: refused" in run.output
    assert "processes: refused after" in run.output
    assert len(run.output) <= (LIMITS.output_mb << 20) + 200 and "bytes of output dropped" in run.output


def test_every_process_of_a_stage_dies_with_it(kind, tmp_path):
    code = f"""
        import os, subprocess, time
        for _ in range(5):
            subprocess.Popen(["sh", "-c", "exec -a {MARKER} sleep 300"], start_new_session=True)
        if os.fork() == 0:  # a double-forked daemon
            os.setsid()
            if os.fork() == 0:
                os.execvp("sh", ["sh", "-c", "exec -a {MARKER} sleep 300"])
            os._exit(0)
        time.sleep(1)
        print("spawned", flush=True)
        {{}}
    """
    for tail, timed_out in (("", False), ("while True: pass", True)):
        run = run_python(kind, tmp_path / tail[:5], code.format(tail) if tail else code.replace("{}", ""),
                         timeout=6)
        assert "spawned" in run.output and run.timed_out == timed_out, run.output
        assert leftover(MARKER) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("bwrap") is None, reason="needs root to become uid 65534")
def test_bwrap_also_works_for_an_unprivileged_grader(monkeypatch):
    """A TA's own account: bwrap makes a user namespace (here: uid 65534 through setpriv)."""
    tmp_path = Path(tempfile.mkdtemp(prefix="grading-unprivileged-"))
    tmp_path.chmod(0o755)
    monkeypatch.setattr(S, "_is_root", lambda: False)
    monkeypatch.setattr(S, "system_paths", lambda: [])
    stage = S.Stage(("/bin/sh", "-c", "id -u; ls /proc | grep -c '^[0-9]'; touch /usr/x 2>/dev/null || echo ro"),
                    tmp_path / "stage", S.Mounts(()), LIMITS, 30)
    S.Sandbox("bwrap").prepare(stage)
    os.chown(stage.folder, 65534, 65534)
    for path in stage.folder.rglob("*"):
        os.chown(path, 65534, 65534)
    argv = S.Sandbox("bwrap").bwrap_argv(stage)
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(tmp_path)
    uid, n, ro = proc.stdout.split()
    assert uid == "65534" and int(n) <= 4 and ro == "ro"


def test_no_sandbox_means_a_refusal_that_says_how_to_proceed(monkeypatch):
    monkeypatch.setattr(S, "bwrap_works", lambda: False)
    monkeypatch.setattr(S, "unshare_works", lambda: False)
    monkeypatch.delenv("SEMINAR_SANDBOX", raising=False)
    with pytest.raises(S.SandboxUnavailableError, match="--unsafe"):
        S.detect()
    with pytest.raises(S.SandboxUnavailableError, match="use one of"):
        S.detect("chroot")
    assert S.detect("none").kind == "none"
    monkeypatch.setenv("SEMINAR_SANDBOX", "unshare")
    with pytest.raises(S.SandboxUnavailableError, match="unshare does not work"):
        S.detect()


def test_a_stage_counts_its_physical_cores_without_a_warning(kind, tmp_path):
    """joblib/loky (scikit-learn's t-SNE, …) count physical cores with lscpu; where the stage's uid cannot read
    /sys/devices/system/cpu it warns into stderr, and a re-executed notebook then differs from the saved one."""
    run = run_python(kind, tmp_path, """
        import warnings
        warnings.simplefilter("error")
        from joblib.externals.loky import cpu_count
        print("physical", cpu_count(only_physical_cores=True))
    """)
    assert run.returncode == 0, run.output
    assert "physical" in run.output and "warn" not in run.output.lower(), run.output
