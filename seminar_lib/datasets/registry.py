"""The dataset registry and :func:`load`."""

from __future__ import annotations

import tempfile
import urllib.error
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seminar_lib.datasets import cache
from seminar_lib.datasets.base import RecDataset
from seminar_lib.errors import DatasetError, DatasetUnavailableError, UnknownDatasetError
from seminar_lib.feature_specs import FeaturePreset


@dataclass(frozen=True)
class DatasetSpec:
    """How to get and parse one dataset.

    Attributes:
        name: registry key.
        description: one line for listings.
        parser: ``parser(folder, **options) -> RecDataset``; for generated datasets ``folder`` is None.
        files: relative path → SHA-256 of every file the parser reads (None: not pinned; then the
            manifest written at download time, from an archive verified by ``archive_sha256`` if known,
            is the reference).
        url: archive to download (zip); None for datasets that are never downloaded.
        archive_sha256: SHA-256 of the archive, if known.
        archive_root: folder inside the archive that holds ``files``.
        source: ``"download"``, ``"local"`` (user-given folder only) or ``"generated"``.
        license_note: what users must know about the data's license.
        features: which user and item columns DSSM tokenises (:func:`seminar_lib.features.get_preset` of
            the dataset's name); None: the dataset has no feature preset.
    """

    name: str
    description: str
    parser: Callable[..., RecDataset]
    files: Mapping[str, str | None] = field(default_factory=dict)
    url: str | None = None
    archive_sha256: str | None = None
    archive_root: str = ""
    source: str = "download"
    license_note: str = ""
    features: FeaturePreset | None = None


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def available() -> list[str]:
    """Registered dataset names."""
    return sorted(REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(available())}") from None


def dataset_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder that holds (or will hold) the files of dataset ``name``."""
    get_spec(name)
    return Path(data_dir).expanduser() if data_dir is not None else cache.cache_root() / name


def load(name: str = "ml-100k", *, data_dir: str | Path | None = None, download: bool = True, **options: Any) -> RecDataset:
    """Load a dataset into the common shape (see :class:`RecDataset`).

    Args:
        name: a registered name (:func:`available`).
        data_dir: the folder holding this dataset's files; default ``<cache root>/<name>``
            (``$SEMINAR_DATA_DIR/<name>`` when that variable is set). Required for ``ozon``.
        download: fetch missing files from the dataset's URL.
        options: passed to the parser (e.g. ``n_users=..., seed=...`` for ``synthetic``).

    >>> ds = load("synthetic", n_users=50, n_items=30, seed=1)
    >>> ds.interactions.columns[:4]
    ['user_id', 'item_id', 'timestamp', 'weight']
    """
    spec = get_spec(name)
    if spec.source == "generated":
        return spec.parser(None, **options)
    folder = dataset_dir(name, data_dir)
    if spec.source == "local" and data_dir is None and not folder.is_dir():
        raise DatasetError(
            f"{name}: {spec.description}. It is never downloaded: pass data_dir='/path/to/folder' "
            f"(or put the files in {folder}). {spec.license_note}"
        )
    ensure_local(spec, folder, download=download)
    return spec.parser(folder, **options)


def ensure_local(spec: DatasetSpec, folder: Path, *, download: bool = True) -> Path:
    """Make sure ``folder`` holds verified copies of ``spec.files``, downloading them if needed."""
    missing = [rel for rel in spec.files if not (folder / rel).is_file()]
    if not missing:
        cache.verify_files(folder, spec.files, spec.name)
        return folder
    if spec.url is None:
        raise DatasetError(
            f"{spec.name}: {folder} does not hold {missing}. {spec.description}. {spec.license_note}".strip()
        )
    hint = (
        f"Set {cache.ENV_VAR} to a folder that holds {spec.name}/ (or pass data_dir=), "
        f"or use the offline dataset: load('synthetic')."
    )
    if not download:
        raise DatasetUnavailableError(f"{spec.name}: no local copy in {folder} and download=False. {hint}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{spec.name}-download.") as tmp:
        archive = Path(tmp) / Path(spec.url).name
        try:
            cache.download(spec.url, archive, expected_sha256=spec.archive_sha256)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DatasetUnavailableError(
                f"{spec.name}: not found in {folder} and the download from {spec.url} failed ({exc}). "
                f"If you are offline: {hint}"
            ) from exc
        root = f"{spec.archive_root}/" if spec.archive_root else ""
        try:
            hashes = cache.extract_members(archive, {root + rel: rel for rel in spec.files}, folder)
        except zipfile.BadZipFile as exc:
            raise cache.ChecksumError(f"{spec.name}: the archive downloaded from {spec.url} is not a valid zip "
                                      f"({exc}); try again later") from exc
    for rel, expected in spec.files.items():
        if expected is not None and hashes[rel] != expected:
            (folder / rel).unlink(missing_ok=True)
            raise cache.ChecksumError(
                f"{spec.name}: checksum mismatch for {rel} extracted from {spec.url}: SHA-256 is {hashes[rel]}, "
                f"expected {expected}"
            )
    if spec.archive_sha256 is None and any(h is None for h in spec.files.values()):
        warnings.warn(
            f"{spec.name}: no reference SHA-256 is pinned for {spec.url}; the files were accepted as downloaded "
            f"and their hashes recorded in {folder / cache.MANIFEST}, which later loads verify against",
            cache.UnverifiedDataWarning,
            stacklevel=3,
        )
    cache.write_manifest(folder, {**cache.read_manifest(folder), **hashes})
    return folder
