"""Dataset cache: where files live, how they are downloaded and verified.

The cache root is ``$SEMINAR_DATA_DIR`` if set, else ``$XDG_CACHE_HOME/seminar_lib`` (by default
``~/.cache/seminar_lib``). Dataset ``name`` lives in ``<root>/<name>/``. A folder that already
holds files whose SHA-256 matches is used as is (a read-only mirror works).

Downloads stream to ``<file>.part`` with a progress bar and are renamed into place only when
complete and verified; extracted files are moved in one by one with ``os.replace``, and the
``SHA256SUMS`` manifest is written last, so an interrupted download never looks complete.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

from seminar_lib.errors import ChecksumError, DatasetUnavailableError
from seminar_lib.files import atomic_write_text, sha256_file
from seminar_lib.progress import track

ENV_VAR = "SEMINAR_DATA_DIR"
MANIFEST = "SHA256SUMS"


class UnverifiedDataWarning(UserWarning):
    """A data file has no reference checksum to be verified against."""


def cache_root() -> Path:
    """The cache root folder (see the module docstring); not created here."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "seminar_lib"


def read_manifest(folder: Path) -> dict[str, str]:
    """Parse ``folder/SHA256SUMS`` (``<sha256>  <relpath>`` lines); empty if absent."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    hashes = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            hashes[rel.strip()] = digest
    return hashes


def write_manifest(folder: Path, hashes: Mapping[str, str]) -> None:
    atomic_write_text(folder / MANIFEST, "".join(f"{h}  {rel}\n" for rel, h in sorted(hashes.items())))


def verify_files(folder: Path, pinned: Mapping[str, str | None], dataset: str) -> None:
    """Check every file in ``pinned`` against its SHA-256.

    The reference is the pinned hash if known, else the manifest written when the files were
    downloaded from a verified archive. Files without any reference raise a warning, not an error.
    """
    manifest = read_manifest(folder)
    unverified = []
    for rel, pinned_hash in pinned.items():
        expected = pinned_hash or manifest.get(rel)
        if expected is None:
            unverified.append(rel)
            continue
        actual = sha256_file(folder / rel)
        if actual != expected:
            raise ChecksumError(
                f"{dataset}: checksum mismatch for {folder / rel}: SHA-256 is {actual}, expected {expected}. "
                f"The file is corrupted or is not the original; delete {folder} and load again to re-download."
            )
    if unverified:
        warnings.warn(
            f"{dataset}: no reference SHA-256 for {unverified} in {folder}; loaded without verification",
            UnverifiedDataWarning,
            stacklevel=3,
        )


def download(url: str, dest: Path, *, expected_sha256: str | None = None, retries: int = 3, timeout: float = 60.0) -> Path:
    """Stream ``url`` to ``dest`` (atomically, with a progress bar and retries with jitter).

    Raises:
        urllib.error.URLError / OSError: after ``retries`` failed attempts.
        ChecksumError: the downloaded bytes do not have ``expected_sha256``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                chunks = iter(lambda: response.read(1 << 20), b"")
                written = 0
                with track(total=total, desc=f"download {dest.name}", unit="B", unit_scale=True) as bar:
                    for chunk in chunks:
                        out.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
            if total is not None and written != total:
                raise OSError(f"incomplete download of {url}: {written} of {total} bytes")
            break
        except (urllib.error.URLError, OSError, TimeoutError):
            part.unlink(missing_ok=True)
            if attempt == retries:
                raise
            time.sleep(min(2**attempt, 10) * (0.5 + random.random()))
    if expected_sha256 is not None:
        actual = sha256_file(part)
        if actual != expected_sha256:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"downloaded {url} has SHA-256 {actual}, expected {expected_sha256}; the server sent a different "
                "file (or it was corrupted in transit). Try again later or download it by hand and check it."
            )
    os.replace(part, dest)
    return dest


def extract_members(archive: Path, members: Mapping[str, str], folder: Path) -> dict[str, str]:
    """Extract ``members`` (archive path → relative target path) of a zip into ``folder``.

    Each file is extracted to a temporary folder beside ``folder`` and moved into place with
    ``os.replace``. Returns the SHA-256 of every extracted file, keyed by target path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {}
    with zipfile.ZipFile(archive) as zf, tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.") as tmp:
        names = set(zf.namelist())
        for member, rel in members.items():
            if member not in names:
                raise DatasetUnavailableError(f"{archive.name} does not contain {member}; the archive layout changed")
            target = Path(tmp) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            hashes[rel] = sha256_file(target)
        for rel in members.values():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(tmp) / rel, folder / rel)
    return hashes
