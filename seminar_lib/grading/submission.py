"""Copying a submission into a stage, plain files only, and hashing it.

A submission is a folder of plain files (or a single file). Symlinks (the folder itself or anything in
it), devices, FIFOs and sockets are refused with a reason, and so is a submission above the size limit;
names starting with ``.`` and ``__pycache__`` are not copied. Nothing is ever followed, so a link to the
reference solution or to ``/dev/zero`` cannot be read through.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from seminar_lib.errors import SeminarError

MAX_SUBMISSION_MB = 64
MAX_FILES = 2000


class SubmissionError(SeminarError, ValueError):
    """The submission cannot be graded as it is (the message says why)."""


@dataclass(frozen=True)
class SubmittedFile:
    relative: str
    size: int


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


def list_submission(path: Path, max_bytes: int = MAX_SUBMISSION_MB << 20) -> list[SubmittedFile]:
    """The plain files of the submission ``path`` (a folder or one file), sorted; :class:`SubmissionError`
    for a missing path, a symlink, a special file, too many files or too many bytes."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        raise SubmissionError(f"the submission {path} does not exist") from None
    if stat.S_ISLNK(top.st_mode):
        raise SubmissionError(f"the submission {path} is a symbolic link; submit the folder itself")
    if stat.S_ISREG(top.st_mode):
        files = [SubmittedFile(path.name, top.st_size)]
    elif stat.S_ISDIR(top.st_mode):
        files = []
        for folder, dirs, names in os.walk(path, followlinks=False):
            base = Path(folder)
            dirs[:] = sorted(d for d in dirs if not _skipped(d))
            for d in dirs:
                if os.path.islink(base / d):
                    raise SubmissionError(f"{(base / d).relative_to(path)} is a symbolic link; submit plain files only")
            for name in sorted(names):
                if _skipped(name):
                    continue
                st = os.lstat(base / name)
                rel = str((base / name).relative_to(path))
                if stat.S_ISLNK(st.st_mode):
                    raise SubmissionError(f"{rel} is a symbolic link; submit plain files only")
                if not stat.S_ISREG(st.st_mode):
                    raise SubmissionError(f"{rel} is not a plain file (a device, FIFO or socket); submit plain files only")
                files.append(SubmittedFile(rel, st.st_size))
                if len(files) > MAX_FILES:
                    raise SubmissionError(f"the submission holds more than {MAX_FILES} files")
    else:
        raise SubmissionError(f"the submission {path} is not a folder or a plain file")
    total = sum(f.size for f in files)
    if total > max_bytes:
        raise SubmissionError(f"the submission is {total / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    return sorted(files, key=lambda f: f.relative)


def read_plain_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of the plain file ``path``, opened without following a link (``O_NOFOLLOW``, so a link or a
    device is refused, not read), at most ``max_bytes``; else :class:`SubmissionError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SubmissionError(f"{path.name} cannot be read as a plain file ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SubmissionError(f"{path.name} is not a plain file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise SubmissionError(f"{path.name} is larger than {max_bytes} bytes")
    return data


def copy_submission(path: Path, destination: Path, max_bytes: int = MAX_SUBMISSION_MB << 20) -> list[SubmittedFile]:
    """Copy the submission's plain files into ``destination`` (created; must not hold those names yet)."""
    files = list_submission(path, max_bytes)
    destination.mkdir(parents=True, exist_ok=True)
    for f in files:
        source = path if path.is_file() else path / f.relative
        target = destination / f.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:
            out.write(read_plain_file(source, f.size))
    return files


def submission_sha256(path: Path, max_bytes: int = MAX_SUBMISSION_MB << 20) -> str:
    """SHA-256 over the submission's files: for each, sorted by path, ``path \\0 size \\0 bytes``."""
    digest = hashlib.sha256()
    for f in list_submission(path, max_bytes):
        source = path if path.is_file() else path / f.relative
        digest.update(f.relative.encode() + b"\0" + str(f.size).encode() + b"\0")
        digest.update(read_plain_file(source, f.size))
    return digest.hexdigest()
