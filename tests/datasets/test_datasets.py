"""Dataset loaders: the real ML-100K mirror, every parser on files in its exact format, every error."""

from __future__ import annotations

import http.server
import io
import shutil
import socket
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seminar_lib.datasets import REGISTRY, RecDataset, UnverifiedDataWarning, load, make_interactions
from seminar_lib.datasets import registry as registry_module
from seminar_lib.datasets.base import TIMESTAMP_DTYPE
from seminar_lib.errors import ChecksumError, DatasetError, DatasetUnavailableError, SchemaError, UnknownDatasetError
from seminar_lib.files import sha256_file

ML100K_FILES = ("u.data", "u.item", "u.user", "u.genre")


# --------------------------------------------------------------------------- ML-100K (real mirror)
def test_ml100k_mirror_has_the_documented_shape(ml100k):
    inter = ml100k.interactions
    assert inter.height == 100_000
    assert inter["user_id"].n_unique() == 943 and inter["item_id"].n_unique() == 1682
    assert inter.columns == ["user_id", "item_id", "timestamp", "weight", "rating"]
    assert inter.schema["timestamp"] == TIMESTAMP_DTYPE
    assert inter["weight"].unique().to_list() == [1.0]
    assert inter["rating"].min() == 1 and inter["rating"].max() == 5
    assert str(inter["timestamp"].min())[:10] == "1997-09-20"
    # first line of u.data: 196  242  3  881250949
    assert inter.row(0)[:2] == (196, 242) and inter["rating"][0] == 3
    assert inter["timestamp"].dt.epoch("s")[0] == 881250949


def test_ml100k_features(ml100k):
    users, items = ml100k.users, ml100k.items
    assert users.height == 943 and users.columns == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert set(users["gender"]) == {"M", "F"} and users["occupation"].n_unique() == 21
    assert items.height == 1682
    genre_flags = [c for c in items.columns if c.startswith("genre_")]
    assert len(genre_flags) == 19 and "genre_childrens" in genre_flags and "genre_film_noir" in genre_flags
    toy_story = items.row(0, named=True)
    assert toy_story["title"] == "Toy Story (1995)" and toy_story["year"] == 1995
    assert toy_story["genres"] == ["Animation", "Children's", "Comedy"]
    # latin-1 titles decode correctly
    assert items.filter(pl.col("title").str.contains("Misérables")).height >= 1
    flags = items.select(genre_flags).to_numpy()
    assert (flags.sum(axis=1) == items["genres"].list.len().to_numpy()).all()


def test_summary_is_a_dataset_card(ml100k):
    card = dict(ml100k.summary().iter_rows())
    assert card["users"] == "943" and card["items"] == "1,682" and card["interactions"] == "100,000"
    assert card["density"] == "6.3047%"


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'ml-10k'; known datasets: .*ml-100k.*synthetic"):
        load("ml-10k")


# --------------------------------------------------------------------------- cache: hit, corrupt, offline, download
def copy_ml100k(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ML100K_FILES:
        shutil.copy(src / name, dst / name)
    return dst


def test_a_folder_with_verified_files_is_used_as_is(ml100k_dir, tmp_path):
    folder = copy_ml100k(ml100k_dir, tmp_path / "copy")
    ds = load("ml-100k", data_dir=folder, download=False)
    assert ds.interactions.height == 100_000
    assert sorted(p.name for p in folder.iterdir()) == sorted(ML100K_FILES)  # nothing added


def test_corrupted_file_raises_a_checksum_error_naming_it(ml100k_dir, tmp_path):
    folder = copy_ml100k(ml100k_dir, tmp_path / "copy")
    data = bytearray((folder / "u.data").read_bytes())
    data[100] = ord("9") if data[100] != ord("9") else ord("8")
    (folder / "u.data").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"checksum mismatch for .*u\.data"):
        load("ml-100k", data_dir=folder)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ml-100k.zip"  # nothing listens there any more: connection refused


@pytest.fixture
def patched_spec(monkeypatch):
    def patch(name: str, **changes):
        spec = replace(REGISTRY[name], **changes)
        monkeypatch.setitem(REGISTRY, name, spec)
        return spec
    return patch


def test_offline_without_a_copy_names_dataset_url_variable_and_synthetic(tmp_path, monkeypatch, patched_spec):
    monkeypatch.setenv("SEMINAR_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("seminar_lib.datasets.cache.time.sleep", lambda s: None)
    spec = patched_spec("ml-100k", url=closed_port_url())
    with pytest.raises(DatasetUnavailableError) as info:
        load("ml-100k")
    message = str(info.value)
    for needle in ("ml-100k", spec.url, "SEMINAR_DATA_DIR", "synthetic"):
        assert needle in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


def test_download_false_without_a_copy(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="download=False"):
        load("ml-100k", data_dir=tmp_path / "nothing", download=False)


class ZipServer:
    """Serves one in-memory archive on loopback; ``truncate`` sends a short body to simulate a broken download."""

    def __init__(self, payload: bytes, truncate: bool = False):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2] if truncate else payload)

            def log_message(self, *args):
                pass

        self.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/archive.zip"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ml100k_zip(ml100k_dir: Path) -> bytes:
    """An archive in the layout of ml-100k.zip, built at test time from the mirror (never committed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ML100K_FILES:
            zf.write(ml100k_dir / name, f"ml-100k/{name}")
    return buf.getvalue()


def test_download_extracts_verifies_and_writes_a_manifest(ml100k_dir, tmp_path, monkeypatch, patched_spec):
    payload = ml100k_zip(ml100k_dir)
    server = ZipServer(payload)
    try:
        import hashlib
        patched_spec("ml-100k", url=server.url, archive_sha256=hashlib.sha256(payload).hexdigest())
        monkeypatch.setenv("SEMINAR_DATA_DIR", str(tmp_path))
        ds = load("ml-100k")
        assert ds.interactions.height == 100_000
        folder = tmp_path / "ml-100k"
        assert sorted(p.name for p in folder.iterdir()) == sorted([*ML100K_FILES, "SHA256SUMS"])
        manifest = dict(line.split()[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
        assert manifest["u.data"] == sha256_file(ml100k_dir / "u.data")
        assert not list(tmp_path.glob(".*"))  # temporary folders are gone
        load("ml-100k")  # a cache hit: no second request
        assert server.requests == 1
    finally:
        server.close()


def test_archive_with_wrong_checksum_is_rejected_and_nothing_is_left(ml100k_dir, tmp_path, monkeypatch, patched_spec):
    server = ZipServer(ml100k_zip(ml100k_dir))
    try:
        patched_spec("ml-100k", url=server.url, archive_sha256="0" * 64)
        monkeypatch.setenv("SEMINAR_DATA_DIR", str(tmp_path))
        with pytest.raises(ChecksumError, match="expected 0000"):
            load("ml-100k")
        assert not (tmp_path / "ml-100k").exists() or not any((tmp_path / "ml-100k").iterdir())
        assert not list(tmp_path.glob(".*"))
    finally:
        server.close()


def test_truncated_download_leaves_nothing_that_looks_complete(ml100k_dir, tmp_path, monkeypatch, patched_spec):
    server = ZipServer(ml100k_zip(ml100k_dir), truncate=True)
    monkeypatch.setattr("seminar_lib.datasets.cache.time.sleep", lambda s: None)
    try:
        patched_spec("ml-100k", url=server.url, archive_sha256=None)
        monkeypatch.setenv("SEMINAR_DATA_DIR", str(tmp_path))
        with pytest.raises(DatasetUnavailableError):
            load("ml-100k")
        assert server.requests == 3  # retried
        assert not (tmp_path / "ml-100k" / "SHA256SUMS").exists()
        assert not list(tmp_path.glob(".*"))
    finally:
        server.close()


# --------------------------------------------------------------------------- malformed files
def test_malformed_u_data_names_file_and_line(ml100k_dir, tmp_path):
    folder = copy_ml100k(ml100k_dir, tmp_path / "copy")
    lines = (folder / "u.data").read_text().splitlines()
    lines[2] = "22\t377\t1"  # a field is missing
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    spec = REGISTRY["ml-100k"]
    with pytest.raises(SchemaError, match=r"u\.data, line 3: 3 field\(s\) where 4 fields"):
        spec.parser(folder)
    lines[2] = "22\t377\tx\t878887116"
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError, match=r"u\.data, line 3: column 'rating' should be Int8, got 'x'"):
        spec.parser(folder)


def test_interactions_schema_errors_say_what_is_wrong():
    good = make_interactions(pl.DataFrame({"user_id": [1], "item_id": [2], "timestamp": [0]}))
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['weight'\]"):
        RecDataset("x", good.drop("weight"))
    with pytest.raises(SchemaError, match="must be Datetime in UTC"):
        RecDataset("x", good.with_columns(pl.col("timestamp").dt.replace_time_zone(None)))
    with pytest.raises(SchemaError, match="null values"):
        RecDataset("x", good.with_columns(pl.lit(None, pl.Float64).alias("weight")))
    with pytest.raises(SchemaError, match="integer or string ids"):
        RecDataset("x", good.with_columns(pl.col("user_id").cast(pl.Float64)))
    with pytest.raises(SchemaError, match="expected Unix seconds, Date or Datetime"):
        make_interactions(pl.DataFrame({"user_id": [1], "item_id": [2], "timestamp": ["yesterday"]}))


# --------------------------------------------------------------------------- ML-1M on files in its exact format
def write_ml1m(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_bytes(b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (folder / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "3::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1"))
    (folder / "users.dat").write_bytes(b"1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def test_ml1m_parser(tmp_path):
    folder = write_ml1m(tmp_path / "ml-1m")
    with pytest.warns(UnverifiedDataWarning, match="no reference SHA-256"):
        ds = load("ml-1m", data_dir=folder)
    assert ds.interactions.height == 3 and ds.interactions["rating"].to_list() == [5, 3, 4]
    assert ds.interactions["timestamp"].dt.epoch("s").to_list() == [978300760, 978302109, 978298413]
    items = ds.items.sort("item_id")
    assert items["title"].to_list()[0] == "Misérables, Les (1995)"
    assert items["year"].to_list() == [1995, 1996, 1975]
    assert items.filter(pl.col("item_id") == 661)["genres"].item().to_list() == ["Animation", "Children's", "Musical"]
    assert items["genre_musical"].to_list() == [1, 1, 0]
    users = ds.users.sort("user_id")
    assert users.rows() == [(1, "F", 1, "K-12 student", "48067"), (2, "M", 56, "self-employed", "70072")]


def test_ml1m_manifest_verifies_later_loads(tmp_path):
    folder = write_ml1m(tmp_path / "ml-1m")
    (folder / "SHA256SUMS").write_text("".join(f"{sha256_file(folder / n)}  {n}\n"
                                               for n in ("ratings.dat", "movies.dat", "users.dat")))
    load("ml-1m", data_dir=folder)  # verified: no warning needed
    (folder / "ratings.dat").write_bytes(b"1::1193::5::978300761\n")
    with pytest.raises(ChecksumError, match="ratings.dat"):
        load("ml-1m", data_dir=folder)


def test_ml1m_double_colon_format_errors(tmp_path):
    folder = write_ml1m(tmp_path / "ml-1m")
    (folder / "ratings.dat").write_bytes(b"1::1193::5::978300760\n1,661,3,978302109\n")
    with pytest.warns(UnverifiedDataWarning), pytest.raises(SchemaError, match=r"ratings\.dat, line 2: 1 field"):
        load("ml-1m", data_dir=folder)


# --------------------------------------------------------------------------- KION on files in its exact format
KION_ITEMS_HEADER = ("item_id,content_type,title,title_orig,release_year,genres,countries,for_kids,age_rating,"
                     "studios,directors,actors,description,keywords\n")


def write_kion(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "interactions.csv").write_text(
        "user_id,item_id,last_watch_dt,total_dur,watched_pct\n"
        "176549,9506,2021-05-11,4250,72.0\n"
        "699317,1659,2021-05-29,8317,100.0\n"
        "656683,7107,2021-05-09,10,\n"
        "864613,7638,2021-07-05,14483,100.0\n")
    (folder / "users.csv").write_text(
        "user_id,age,income,sex,kids_flg\n973171,age_25_34,income_60_90,М,1\n962099,age_18_24,income_20_40,М,0\n")
    (folder / "items.csv").write_text(
        KION_ITEMS_HEADER
        + '10711,film,Поговори с ней,Hable con ella,2002.0,"драмы, зарубежные, детективы",Испания,,16.0,,'
          'Педро Альмодовар,"Адольфо Фернандес, Ана Фернандес",Описание,"Поговори, ней"\n'
        + "2508,film,Голые перцы,Search Party,2014.0,\"зарубежные, приключения, комедии\",США,,16.0,,"
          "Скот Армстронг,Адам Палли,Описание,слова\n")
    return folder


def test_kion_parser(tmp_path):
    folder = write_kion(tmp_path / "kion")
    with pytest.warns(UnverifiedDataWarning):
        ds = load("kion", data_dir=folder)
    inter = ds.interactions
    assert inter.height == 3  # the row without watched_pct is dropped, as in the seeds
    assert inter["weight"].to_list() == [72.0, 100.0, 100.0]
    assert inter.columns == ["user_id", "item_id", "timestamp", "weight", "total_dur", "watched_pct"]
    assert str(inter["timestamp"][0]) == "2021-05-11 00:00:00+00:00"
    assert ds.users["age"].to_list() == ["age_25_34", "age_18_24"]
    assert ds.items.filter(pl.col("item_id") == 10711)["genre_list"].item().to_list() == ["драмы", "зарубежные",
                                                                                           "детективы"]


def test_kion_missing_column(tmp_path):
    folder = write_kion(tmp_path / "kion")
    (folder / "users.csv").write_text("user_id,age,income\n1,age_25_34,income_60_90\n")
    with pytest.warns(UnverifiedDataWarning), pytest.raises(SchemaError, match=r"users\.csv: missing column\(s\) \['sex', 'kids_flg'\]"):
        load("kion", data_dir=folder)


def test_kion_bad_date(tmp_path):
    folder = write_kion(tmp_path / "kion")
    (folder / "interactions.csv").write_text("user_id,item_id,last_watch_dt,total_dur,watched_pct\n1,2,11/05/2021,3,4.0\n")
    with pytest.warns(UnverifiedDataWarning), pytest.raises(SchemaError, match="not a YYYY-MM-DD date"):
        load("kion", data_dir=folder)


# --------------------------------------------------------------------------- Ozon on parquet in the seed's schema
def write_ozon(folder: Path) -> Path:
    folder.mkdir(parents=True)
    orders = pl.DataFrame({"user_id": [338900, 338900, 4408100], "product_id": [174306600, 174306600, 519493273],
                           "date": ["2024-03-21", "2024-04-02", "2024-04-08"]},
                          schema_overrides={"user_id": pl.Int32}).with_columns(pl.col("date").str.to_date())
    orders.write_parquet(folder / "train_orders")  # the seed's files have no extension
    (folder / "test_orders").mkdir()
    orders.head(1).with_columns(pl.date(2024, 7, 1).alias("date")).write_parquet(folder / "test_orders" / "part-0.parquet")
    pl.DataFrame({"product_id": [174306600], "name": ["Крем"], "brand": ["CeraVe"], "type": ["Гель"],
                  "category_id": [38], "category_name": ["Сыворотки"]}).write_parquet(folder / "product_information_full.parquet")
    return folder


def test_ozon_parser(tmp_path):
    ds = load("ozon", data_dir=write_ozon(tmp_path / "ozon"))
    inter = ds.interactions
    assert inter.height == 4 and inter["part"].to_list() == ["train", "train", "train", "test"]
    assert inter.filter(pl.col("user_id") == 338900).height == 3  # repeat purchases are kept
    assert ds.items.columns[0] == "item_id" and ds.items["brand"].to_list() == ["CeraVe"]


def test_ozon_needs_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMINAR_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="never downloaded: pass data_dir="):
        load("ozon")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no train_orders"):
        load("ozon", data_dir=tmp_path / "empty")


def test_ozon_wrong_columns(tmp_path):
    folder = write_ozon(tmp_path / "ozon")
    pl.DataFrame({"user": [1], "product_id": [2], "date": [None]}).write_parquet(folder / "train_orders")
    with pytest.raises(SchemaError, match=r"train_orders: missing column\(s\) \['user_id'\]; found"):
        load("ozon", data_dir=folder)


# --------------------------------------------------------------------------- synthetic
def test_synthetic_is_deterministic_and_seeded():
    a = load("synthetic", n_users=100, n_items=50, seed=1)
    b = load("synthetic", n_users=100, n_items=50, seed=1)
    c = load("synthetic", n_users=100, n_items=50, seed=2)
    assert a.interactions.equals(b.interactions) and a.users.equals(b.users) and a.items.equals(b.items)
    assert not a.interactions.equals(c.interactions)


@pytest.mark.parametrize("cells", [1, 1000])  # one user per chunk; a few users per chunk, the last one shorter
def test_synthetic_does_not_depend_on_how_users_are_chunked(monkeypatch, cells):
    """Users are generated in chunks from generators advanced to their place in one random stream: any
    chunk size gives the output of a single chunk (so today's small datasets are unchanged)."""
    from seminar_lib.datasets import synthetic as module

    options = dict(n_users=90, n_items=40, repeat_prob=0.3, seed=5)
    whole = module.generate(**options)
    monkeypatch.setattr(module, "CHUNK_CELLS", cells)
    chunked = module.generate(**options)
    assert chunked.interactions.equals(whole.interactions)
    assert chunked.items.equals(whole.items) and chunked.users.equals(whole.users)


@pytest.mark.parametrize("n_items", [3, 64, 65, 1000])  # fewer than, exactly, just over and many segments
def test_synthetic_two_level_draws_equal_inverse_cdf_sampling(n_items):
    """The two-level prefix sums pick the item a plain inverse-CDF search over the whole softmax picks."""
    from seminar_lib.datasets.synthetic import _preference_draws

    rng = np.random.default_rng(n_items)
    users, items, log_pop = rng.normal(size=(300, 8)), rng.normal(size=(n_items, 8)), rng.normal(size=n_items)
    uniforms = rng.random((300, 20))
    needed = rng.random((300, 20)) < 0.6
    draws = _preference_draws(0, users, items, log_pop, 2.0, uniforms, needed)

    logits = 2.0 * users @ items.T / np.sqrt(8) / np.sqrt(1 + 0.7**2 + 0.7**2) + log_pop
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    expected = np.array([[np.searchsorted(cdf[u], x, side="right") for x in row] for u, row in enumerate(uniforms)])
    expected = np.minimum(expected, n_items - 1)
    assert (draws[~needed] == -1).all()
    assert np.array_equal(draws[needed], expected[needed])


def test_synthetic_chunk_memory_is_independent_of_users(monkeypatch):
    """A chunk's (user × step) arrays never exceed CHUNK_CELLS cells, however many users are generated."""
    from seminar_lib.datasets import synthetic as module

    seen = []
    original = module._chunk_events
    monkeypatch.setattr(module, "_chunk_events", lambda lo, hi, *a, **kw: seen.append(hi - lo) or original(lo, hi, *a, **kw))
    monkeypatch.setattr(module, "CHUNK_CELLS", 50 * 30)  # horizon: 3 × n_items = 30 steps (some user has ≥ 10)
    ds = module.generate(n_users=400, n_items=10, mean_events=6, seed=0)
    assert max(seen) == 50 and sum(seen) == 400 and ds.interactions["user_id"].n_unique() == 400


def test_synthetic_shape_and_features(synthetic):
    inter = synthetic.interactions
    assert inter["user_id"].n_unique() == 400 and inter["item_id"].max() <= 200
    assert not inter.select("user_id", "item_id").is_duplicated().any()  # no repeats by default
    assert set(synthetic.users.columns) == {"user_id", "age_group", "gender"}
    assert set(synthetic.items.columns) == {"item_id", "title", "category", "year"}
    assert inter.group_by("user_id").len()["len"].min() >= 2


def test_synthetic_repeat_mode_has_repeats():
    ds = load("synthetic", n_users=200, n_items=100, repeat_prob=0.4, seed=0)
    share = ds.interactions.select(pl.struct("user_id", "item_id").is_duplicated().mean()).item()
    assert share > 0.3


def test_synthetic_has_popularity_skew_and_feature_signal(synthetic):
    inter = synthetic.interactions.join(synthetic.users, on="user_id").join(synthetic.items, on="item_id")
    counts = np.sort(inter.group_by("item_id").len()["len"].to_numpy())[::-1]
    assert counts[: len(counts) // 10].sum() > 0.25 * counts.sum()  # top 10 % of items get > 25 % of events
    # user features predict taste: category shares differ between age groups far more than by chance
    shares = (inter.group_by("age_group", "category").len()
              .with_columns((pl.col("len") / pl.col("len").sum().over("age_group")).alias("share")))
    spread = shares.group_by("category").agg((pl.col("share").max() - pl.col("share").min()).alias("d"))["d"].mean()
    assert spread > 0.05


def test_synthetic_has_sequential_structure():
    ds = load("synthetic", n_users=300, n_items=150, sequential_prob=0.5, seed=0)
    seq = ds.interactions.sort("user_id", "timestamp").with_columns(pl.col("item_id").shift(1).over("user_id").alias("prev"))
    pairs = seq.drop_nulls("prev").group_by("prev", "item_id").len()
    # the most frequent successor of an item follows it far more often than a uniform draw would
    top_share = pairs.group_by("prev").agg((pl.col("len").max() / pl.col("len").sum()).alias("s"))["s"].mean()
    assert top_share > 0.3


def test_synthetic_rejects_bad_parameters():
    with pytest.raises(ValueError, match="probabilities"):
        load("synthetic", repeat_prob=0.7, sequential_prob=0.5)


def test_every_registered_dataset_is_documented():
    for spec in REGISTRY.values():
        assert spec.description and spec.license_note
        assert spec.source in {"download", "local", "generated"}
        if spec.source == "download":
            assert spec.url and spec.files


def test_registry_module_exports_load():
    assert registry_module.load is load
