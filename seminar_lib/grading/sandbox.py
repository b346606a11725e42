"""Run a stage of student code in a sandbox: bubblewrap, else util-linux ``unshare``, with ``prlimit`` limits.

Inside a stage the filesystem is a whitelist, all read-only: ``/usr`` (and ``/bin``, ``/lib*``, ``/sbin``),
a few files of ``/etc``, the Python installation, the project with its venv, and, where a stage asks for
it, the dataset folder. Over these, every folder in :attr:`Mounts.hidden` (each homework's ``private/``,
``grades/``, the project's ``.git``, a class's submissions, the report folders) is an empty tmpfs. The
stage's own folder (``work/`` with the copied submission, ``home/``) is the only writable host folder, at
``/sandbox``; ``/tmp`` is a fresh tmpfs of ``disk_mb``. ``/proc`` belongs to a new PID namespace (the
grader's processes are not visible), ``/dev`` holds only null, zero, full, random, urandom, tty and shm,
``/sys/devices/system/cpu`` is read-only (core counts), and the network namespace is the stage's own
(loopback only, so a Jupyter kernel still talks to its client). The process limits (``prlimit``): ``RLIMIT_DATA`` = ``memory_mb`` per process, ``RLIMIT_NPROC`` =
``processes``, ``RLIMIT_CPU`` = the stage timeout × CPU count, ``RLIMIT_FSIZE`` = ``disk_mb``, no core files.
When the grader runs as root, student code runs as a fresh unprivileged uid (one per stage, so the process
limit is the stage's own) with no capabilities and ``no_new_privs``.

Every process of a stage ends with it: the stage's PID namespace dies with its first process (bubblewrap's
``--die-with-parent``, ``unshare --kill-child``), and the grader kills the stage's process group on a
timeout. Output (stdout + stderr) is read through a pipe and only the last ``output_mb`` are kept.

Where neither tool works (macOS, a kernel without user namespaces), :func:`detect` raises
:class:`SandboxUnavailableError`; ``kind="none"`` (the CLI's ``--unsafe``) runs stages unsandboxed, for a
student checking their own work. ``SEMINAR_SANDBOX=bwrap|unshare|none`` forces a kind.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from seminar_lib.errors import SeminarError
from seminar_lib.grading.assignment import Limits

INSIDE = Path("/sandbox")  # where the stage folder appears inside the sandbox
KINDS = ("bwrap", "unshare", "none")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "passwd", "group", "nsswitch.conf",
             "localtime", "ssl", "ca-certificates", "alternatives", "mime.types", "hosts")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# the CPU topology, read-only: BLAS, torch and joblib/loky count cores there (loky warns without it)
SYS_FILES = ("/sys/devices/system/cpu",)
UID_RANGE = (200_000, 260_000)
# SIOCGIFFLAGS / SIOCSIFFLAGS: set IFF_UP on "lo" (what `ip link set lo up` does, without needing iproute2)
LOOPBACK_UP = ("import fcntl, socket, struct\n"
               "s = socket.socket()\n"
               "flags = struct.unpack('16sH', fcntl.ioctl(s, 0x8913, struct.pack('16sH14s', b'lo', 0, b''))[:18])[1]\n"
               "fcntl.ioctl(s, 0x8914, struct.pack('16sH14s', b'lo', flags | 1, b''))\n")  # uids a root grader gives stages (none of them owns a file)


class SandboxUnavailableError(SeminarError, RuntimeError):
    """No sandbox can be made on this machine."""


@dataclass(frozen=True)
class Mounts:
    """What a stage sees of the host: read-only folders (bound at their own path) and hidden ones."""

    read_only: tuple[Path, ...]
    hidden: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One sandboxed command: ``argv`` runs in ``folder/work`` (``/sandbox/work`` inside)."""

    argv: tuple[str, ...]
    folder: Path  # host folder bound read-write at /sandbox; holds work/ and home/
    mounts: Mounts
    limits: Limits
    timeout: float
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StageRun:
    """How a stage ended: its exit code (None: killed at the timeout) and its output's tail."""

    returncode: int | None
    output: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def system_paths() -> list[Path]:
    """The Python installation and the interpreter (read-only in every stage)."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.exec_prefix).resolve(),
             Path(sys.executable).resolve().parent}
    return sorted(p for p in paths if p.exists())


@lru_cache(maxsize=None)
def _works(argv: tuple[str, ...]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _is_root() -> bool:
    return os.geteuid() == 0


def bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    if bwrap is None or shutil.which("prlimit") is None:
        return False
    ns = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"] if _is_root() else ["--unshare-all"]
    return _works((bwrap, *ns, "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--", "true"))


def unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("prlimit") is None or shutil.which("setpriv") is None:
        return False
    user = [] if _is_root() else ["--user", "--map-root-user"]
    return _works((unshare, *user, "--mount", "--pid", "--fork", "--net", "--kill-child", "true"))


def detect(kind: str | None = None) -> Sandbox:
    """The sandbox to use: ``kind``, else ``$SEMINAR_SANDBOX``, else bwrap, else unshare; or an error."""
    kind = kind or os.environ.get("SEMINAR_SANDBOX") or None
    if kind is not None and kind not in KINDS:
        raise SandboxUnavailableError(f"SEMINAR_SANDBOX={kind!r}: use one of {list(KINDS)}")
    if kind == "none":
        return Sandbox("none")
    if kind in (None, "bwrap") and bwrap_works():
        return Sandbox("bwrap")
    if kind in (None, "unshare") and unshare_works():
        return Sandbox("unshare")
    wanted = kind or "bwrap or unshare"
    raise SandboxUnavailableError(
        f"no sandbox for student code on this machine ({sys.platform}): {wanted} does not work here. "
        "Grade on Linux with bubblewrap (`apt-get install bubblewrap`) or util-linux `unshare` and "
        "unprivileged user namespaces. A student checking their own work may pass --unsafe, which runs "
        "the submission unsandboxed with full access to this account.")


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


@dataclass(frozen=True)
class Sandbox:
    """A way to run :class:`Stage` s (``kind``: bwrap, unshare or none)."""

    kind: str

    @property
    def sandboxed(self) -> bool:
        return self.kind != "none"

    def inside(self, stage: Stage | Path, path: Path) -> str:
        """The path a host ``path`` under the stage folder has inside the sandbox."""
        folder = stage.folder if isinstance(stage, Stage) else stage
        return str(path) if not self.sandboxed else str(INSIDE / path.relative_to(folder))

    # ----------------------------------------------------------------------------------- command lines
    def _limits_argv(self, stage: Stage) -> list[str]:
        lim = stage.limits
        cpu = int(stage.timeout * max(1, os.cpu_count() or 1)) + 1
        return ["prlimit", f"--data={lim.memory_mb << 20}", f"--nproc={lim.processes}", f"--cpu={cpu}",
                f"--fsize={lim.disk_mb << 20}", "--core=0", "--"]

    def _drop_argv(self) -> list[str]:
        """Inside the sandbox: a fresh uid (when the grader is root), no capabilities, no new privileges."""
        ids = []
        if _is_root():
            uid = random.randrange(*UID_RANGE)
            ids = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        return ["setpriv", *ids, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]

    def _env(self, stage: Stage) -> dict[str, str]:
        home = str(INSIDE / "home") if self.sandboxed else str(stage.folder / "home")
        tmp = "/tmp" if self.sandboxed else str(stage.folder / "tmp")
        path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
        return {"PATH": path, "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                "MPLCONFIGDIR": f"{home}/.cache/matplotlib", "JUPYTER_RUNTIME_DIR": f"{tmp}/jupyter-runtime",
                "IPYTHONDIR": f"{home}/.ipython", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                "TQDM_DISABLE": "1", "LOKY_MAX_CPU_COUNT": str(os.cpu_count() or 1), **stage.env}

    def _root_dirs(self) -> list[tuple[str, str]]:
        """(how, path) for /bin, /lib, /lib64, /sbin: a symlink where the host has one, else a bind."""
        out = []
        for name in ("bin", "lib", "lib32", "lib64", "sbin", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                out.append(("symlink", os.readlink(host)))
            elif host.is_dir():
                out.append(("bind", str(host)))
            else:
                out.append(("skip", ""))
        return out

    def _visible(self, stage: Stage) -> list[Path]:
        seen: list[Path] = []
        for p in [Path("/usr"), *system_paths(), *stage.mounts.read_only]:
            p = p.resolve()
            if p.exists() and not any(p == q or q in p.parents for q in seen):
                seen = [q for q in seen if p not in q.parents] + [p]
        return sorted(seen)

    def _hidden(self, stage: Stage, visible: list[Path]) -> list[Path]:
        out = []
        for h in stage.mounts.hidden:
            h = h.resolve() if h.exists() else h
            if h.is_dir() and not h.is_symlink() and any(h == v or v in h.parents for v in visible):
                out.append(h)
        return sorted(set(out))

    def bwrap_argv(self, stage: Stage) -> list[str]:
        ns = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"] \
            if _is_root() else ["--unshare-all", "--unshare-user", "--disable-userns"]
        # /tmp first: a read-only folder or the stage folder below the host's /tmp is bound onto this tmpfs
        argv = ["bwrap", *ns, "--die-with-parent", "--new-session", "--clearenv",
                "--perms", "1777", "--size", str(stage.limits.disk_mb << 20), "--tmpfs", "/tmp"]
        made: set[Path] = set()
        visible = self._visible(stage)
        for p in visible:
            for a in _ancestors(p):
                if a not in made and a not in visible:
                    argv += ["--perms", "0755", "--dir", str(a)]
                    made.add(a)
            argv += ["--ro-bind", str(p), str(p)]
        for (how, target), name in zip(self._root_dirs(), ("bin", "lib", "lib32", "lib64", "sbin", "libx32")):
            if how == "symlink":
                argv += ["--symlink", target, f"/{name}"]
            elif how == "bind":
                argv += ["--ro-bind", target, f"/{name}"]
        for name in ETC_FILES:
            if (Path("/etc") / name).exists():
                argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        for path in SYS_FILES:  # parents made traversable for the stage's uid (bwrap makes them 0700 otherwise)
            for a in _ancestors(Path(path)):
                if a not in made:
                    argv += ["--perms", "0755", "--dir", str(a)]
                    made.add(a)
            argv += ["--ro-bind-try", path, path]
        for h in self._hidden(stage, visible):
            argv += ["--size", str(1 << 20), "--tmpfs", str(h)]
        # /dev/shm writable for the stage's uid (multiprocessing's semaphores; joblib warns without them)
        argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(stage.limits.disk_mb << 20),
                 "--tmpfs", "/dev/shm", "--bind", str(stage.folder), str(INSIDE), "--chdir", str(INSIDE / "work")]
        for key, value in self._env(stage).items():
            argv += ["--setenv", key, value]
        if _is_root():  # setpriv needs these to switch to the stage's uid, then drops every capability
            argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        return [*argv, "--", *self._drop_argv(), *self._limits_argv(stage), *stage.argv]

    def unshare_argv(self, stage: Stage, root: Path) -> list[str]:
        """util-linux ``unshare`` (user, mount, PID, network, IPC, UTS namespaces) and a shell script that
        builds the same whitelisted root as bwrap under ``root`` (an empty host folder) and chroots into it."""
        q = shlex.quote
        r = q(str(root))
        lines = ["set -e", f"mount -t tmpfs -o mode=0755 tmpfs {r}", f"mkdir {r}/tmp",
                 f"mount -t tmpfs -o size={stage.limits.disk_mb}m,mode=1777 tmpfs {r}/tmp"]
        visible = self._visible(stage)
        for p in visible:
            lines += [f"mkdir -p {r}{q(str(p))}", f"mount --rbind {q(str(p))} {r}{q(str(p))}",
                      f"mount -o remount,bind,ro {r}{q(str(p))}"]
        for (how, target), name in zip(self._root_dirs(), ("bin", "lib", "lib32", "lib64", "sbin", "libx32")):
            if how == "symlink":
                lines.append(f"ln -s {q(target)} {r}/{name}")
            elif how == "bind":
                lines += [f"mkdir -p {r}/{name}", f"mount --rbind /{name} {r}/{name}",
                          f"mount -o remount,bind,ro {r}/{name}"]
        lines.append(f"mkdir -p {r}/etc")
        for name in ETC_FILES:
            src = Path("/etc") / name
            if src.exists():
                make = f"mkdir -p {r}/etc/{name}" if src.is_dir() else f"touch {r}/etc/{name}"
                lines += [make, f"mount --bind /etc/{name} {r}/etc/{name}",
                          f"mount -o remount,bind,ro {r}/etc/{name}"]
        for path in SYS_FILES:
            if Path(path).is_dir():
                lines += [f"mkdir -p {r}{path}", f"mount --rbind {path} {r}{path}", f"mount -o remount,bind,ro {r}{path}"]
        for h in self._hidden(stage, visible):
            lines.append(f"mount -t tmpfs -o size=1m,mode=0755 tmpfs {r}{q(str(h))}")
        lines += [f"mkdir -p {r}/proc {r}/dev {r}/sandbox", f"mount -t proc proc {r}/proc",
                  f"mount -t tmpfs -o mode=0755 tmpfs {r}/dev", f"mkdir {r}/dev/shm",
                  f"mount -t tmpfs -o size={stage.limits.disk_mb}m,mode=1777 tmpfs {r}/dev/shm"]
        for d in DEVICES:
            lines += [f"touch {r}/dev/{d}", f"mount --bind /dev/{d} {r}/dev/{d}"]
        lines.append(f"mount --bind {q(str(stage.folder))} {r}/sandbox")
        lines.append(f"{q(sys.executable)} -c {q(LOOPBACK_UP)}")  # a new network namespace starts with lo down
        inner = [*self._drop_argv(), *self._limits_argv(stage), *stage.argv]
        chroot = shutil.which("chroot", path="/usr/sbin:/sbin:/usr/bin:/bin") or "chroot"
        lines.append(f"exec {chroot} {r} /usr/bin/env -C {INSIDE / 'work'} {' '.join(q(a) for a in inner)}")
        user = [] if _is_root() else ["--user", "--map-root-user"]
        return ["unshare", *user, "--mount", "--pid", "--fork", "--net", "--ipc", "--uts", "--kill-child",
                "--propagation", "private", "/bin/sh", "-c", "\n".join(lines)]

    # ------------------------------------------------------------------------------------------- running
    def prepare(self, stage: Stage) -> None:
        """Make the stage folder (work/, home/) usable by the stage's uid."""
        for sub in ("work", "home", "tmp"):
            (stage.folder / sub).mkdir(parents=True, exist_ok=True)
        if self.sandboxed and _is_root():
            for path in [stage.folder, *stage.folder.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(0o777 if path.is_dir() else 0o666)

    def start(self, stage: Stage) -> RunningStage:
        """Start ``stage``; the caller waits or kills it (:class:`RunningStage`)."""
        self.prepare(stage)
        env = self._env(stage)
        root = None
        if self.kind == "bwrap":
            argv = self.bwrap_argv(stage)
            env = {"PATH": "/usr/bin:/bin"}
        elif self.kind == "unshare":
            root = stage.folder.parent / f".{stage.folder.name}-root"
            root.mkdir(exist_ok=True)
            argv = self.unshare_argv(stage, root)
        else:
            argv = list(stage.argv)
        proc = subprocess.Popen(argv, cwd=stage.folder / "work", env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        return RunningStage(proc, stage.limits.output_mb << 20, time.perf_counter(), root)

    def run(self, stage: Stage) -> StageRun:
        """Run ``stage`` to its end or its timeout (then every process of it is killed)."""
        running = self.start(stage)
        return running.wait(stage.timeout)


class RunningStage:
    """A started stage: its process (group), and its output read into a bounded buffer by a thread."""

    def __init__(self, proc: subprocess.Popen[bytes], cap: int, started: float, root: Path | None) -> None:
        self.proc, self.cap, self.started, self.root = proc, cap, started, root
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._dropped = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read1(1 << 16), b""):  # type: ignore[union-attr]
            self._chunks.append(chunk)
            self._size += len(chunk)
            while self._size > self.cap and len(self._chunks) > 1:
                old = self._chunks.popleft()
                self._size -= len(old)
                self._dropped += len(old)

    def output(self) -> str:
        text = b"".join(self._chunks)[-self.cap:].decode("utf-8", errors="replace")
        return (f"[{self._dropped} bytes of output dropped]\n" if self._dropped else "") + text

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        """SIGKILL the stage's process group (bwrap / unshare, whose PID namespace dies with it)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> StageRun:
        try:
            code: int | None = self.proc.wait(timeout=max(0.0, timeout - self.elapsed()))
        except subprocess.TimeoutExpired:
            code = None
        return self.finish(code)

    def finish(self, code: int | None) -> StageRun:
        """Kill whatever is left of the stage, collect its output, clean the unshare root."""
        self.kill()
        self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.root is not None:
            try:
                self.root.rmdir()
            except OSError:
                pass
        return StageRun(code, self.output(), self.elapsed())
