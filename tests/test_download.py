"""Tests of legacy_lstm.data.download, hermetic: the cache is redirected to tmp_path and downloads use file:// URLs.

This file must not import tensorflow (the download module does not).
"""

import hashlib
import os
import pathlib
import subprocess
import sys

import pytest

from legacy_lstm.data import download as dl

CONTENT = b"legacy lstm test payload\n" * 10
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()
WRONG_SHA = "0" * 64
REAL_ENV = os.environ.get(dl.ENV_VAR)   # read before the autouse fixture below unsets it


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Never touch the real cache or data: XDG_CACHE_HOME -> tmp_path/cache, LEGACY_LSTM_DATA unset."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(dl.ENV_VAR, raising=False)
    return tmp_path


@pytest.fixture
def cache_root(tmp_path):
    return tmp_path / "cache" / "legacy_lstm"


def _spec(sha=CONTENT_SHA, url=None):
    return dl.RemoteFile("somedata", "payload.bin", sha, url, len(CONTENT))


def _write(path, content=CONTENT):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()) if root.exists() else []


# ---------------------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------------------

def test_cache_dir_uses_xdg_cache_home(tmp_path):
    assert dl.cache_dir() == tmp_path / "cache" / "legacy_lstm"


def test_cache_dir_falls_back_to_home_dot_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dl.cache_dir() == tmp_path / "home" / ".cache" / "legacy_lstm"


def test_default_data_dir_honours_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(dl.ENV_VAR, str(tmp_path / "mydata"))
    assert dl.default_data_dir() == tmp_path / "mydata"
    assert isinstance(dl.default_data_dir(), pathlib.Path)


def test_default_data_dir_falls_back_to_cache_dir(tmp_path, monkeypatch):
    assert dl.default_data_dir() == tmp_path / "cache" / "legacy_lstm"
    monkeypatch.setenv(dl.ENV_VAR, "")            # set but empty counts as unset
    assert dl.default_data_dir() == tmp_path / "cache" / "legacy_lstm"


def test_sha256_of(tmp_path):
    path = _write(tmp_path / "f.bin")
    assert dl.sha256_of(path) == CONTENT_SHA
    assert dl.sha256_of(path, chunk=7) == CONTENT_SHA   # chunked reading gives the same digest


# ---------------------------------------------------------------------------------------------------------
# locate: local files
# ---------------------------------------------------------------------------------------------------------

def test_locate_in_data_dir_subdir(tmp_path):
    data = tmp_path / "data"
    path = _write(data / "somedata" / "payload.bin")
    assert dl.locate(_spec(), data_dir=data, download=False) == path


def test_locate_in_data_dir_top_level(tmp_path):
    data = tmp_path / "data"
    path = _write(data / "payload.bin")
    assert dl.locate(_spec(), data_dir=str(data), download=False) == path


def test_locate_prefers_subdir_over_top_level(tmp_path):
    data = tmp_path / "data"
    in_subdir = _write(data / "somedata" / "payload.bin")
    _write(data / "payload.bin", b"something else")      # wrong sha, but never looked at
    assert dl.locate(_spec(), data_dir=data, download=False) == in_subdir


def test_locate_uses_env_var_when_no_data_dir(tmp_path, monkeypatch):
    data = tmp_path / "envdata"
    path = _write(data / "somedata" / "payload.bin")
    monkeypatch.setenv(dl.ENV_VAR, str(data))
    assert dl.locate(_spec(), download=False) == path


def test_locate_falls_back_to_cache(tmp_path, cache_root):
    path = _write(cache_root / "somedata" / "payload.bin")
    (tmp_path / "data").mkdir()
    assert dl.locate(_spec(), data_dir=tmp_path / "data", download=False) == path


def test_locate_wrong_sha_raises_naming_path_and_both_checksums(tmp_path):
    data = tmp_path / "data"
    path = _write(data / "somedata" / "payload.bin")
    with pytest.raises(dl.DataNotFoundError) as info:
        dl.locate(_spec(sha=WRONG_SHA), data_dir=data, download=False)
    msg = str(info.value)
    assert str(path) in msg
    assert CONTENT_SHA in msg      # the actual checksum
    assert WRONG_SHA in msg        # the expected one
    assert isinstance(info.value, FileNotFoundError)
    assert path.read_bytes() == CONTENT   # the refused file is not deleted or changed


def test_locate_wrong_sha_is_refused_even_with_download(tmp_path, cache_root):
    data = tmp_path / "data"
    _write(data / "payload.bin", b"corrupt")
    source = _write(tmp_path / "src" / "payload.bin")
    with pytest.raises(dl.DataNotFoundError, match="corrupt or not the original"):
        dl.locate(_spec(url=source.as_uri()), data_dir=data, download=True)
    assert _files_under(cache_root) == []


# ---------------------------------------------------------------------------------------------------------
# locate: missing files
# ---------------------------------------------------------------------------------------------------------

def _assert_missing_message(msg, data):
    assert "somedata/payload.bin" in msg                          # names the file
    assert CONTENT_SHA in msg                                     # and its expected sha256
    assert str(data / "somedata" / "payload.bin") in msg          # and where to put it
    assert dl.ENV_VAR in msg


def test_missing_with_download_disabled(tmp_path, cache_root):
    data = tmp_path / "data"
    with pytest.raises(dl.DataNotFoundError) as info:
        dl.locate(_spec(url="https://example.invalid/payload.bin"), data_dir=data, download=False)
    _assert_missing_message(str(info.value), data)
    assert "it is not downloaded automatically here" in str(info.value)  # it has a URL; the caller said no
    # every place looked in is listed
    for place in (data / "somedata" / "payload.bin", data / "payload.bin",
                  cache_root / "somedata" / "payload.bin", cache_root / "payload.bin"):
        assert str(place) in str(info.value)
    assert not cache_root.exists()


def test_missing_without_url(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(dl.DataNotFoundError, match="no download location is known") as info:
        dl.locate(_spec(url=None), data_dir=data, download=True)
    _assert_missing_message(str(info.value), data)


def test_missing_and_download_fails(tmp_path, cache_root):
    data = tmp_path / "data"
    url = (tmp_path / "nowhere" / "payload.bin").as_uri()     # a fake URL that fails at once, offline
    with pytest.raises(dl.DataNotFoundError) as info:
        dl.locate(_spec(url=url), data_dir=data, download=True)
    msg = str(info.value)
    _assert_missing_message(msg, data)
    assert url in msg and "failed" in msg
    assert _files_under(cache_root) == []                      # no .part file left behind


def test_missing_default_data_dir_is_cache(cache_root):
    with pytest.raises(dl.DataNotFoundError) as info:
        dl.locate(_spec(), download=False)
    msg = str(info.value)
    _assert_missing_message(msg, cache_root)
    assert msg.count(str(cache_root / "payload.bin")) == 1     # the cache is not searched twice


# ---------------------------------------------------------------------------------------------------------
# locate: download (file:// URLs, hermetic)
# ---------------------------------------------------------------------------------------------------------

def test_download_success_puts_file_in_cache(tmp_path, cache_root):
    source = _write(tmp_path / "src" / "remote.bin")
    spec = _spec(url=source.as_uri())
    got = dl.locate(spec, data_dir=tmp_path / "data", download=True)
    assert got == cache_root / "somedata" / "payload.bin"
    assert got.read_bytes() == CONTENT
    assert _files_under(cache_root) == ["somedata/payload.bin"]    # no temp file left
    assert not (tmp_path / "data").exists()                        # the data dir is not written to
    # the next call finds it in the cache without downloading
    source.unlink()
    assert dl.locate(spec, data_dir=tmp_path / "data", download=True) == got


def test_download_checksum_mismatch_leaves_nothing(tmp_path, cache_root):
    source = _write(tmp_path / "src" / "remote.bin", b"not the expected bytes")
    actual = hashlib.sha256(b"not the expected bytes").hexdigest()
    with pytest.raises(dl.DataNotFoundError) as info:
        dl.locate(_spec(url=source.as_uri()), data_dir=tmp_path / "data", download=True)
    msg = str(info.value)
    assert actual in msg and CONTENT_SHA in msg
    _assert_missing_message(msg, tmp_path / "data")
    assert _files_under(cache_root) == []                           # neither the file nor a .part file
    assert not list(cache_root.rglob("*.part")) and not list(cache_root.rglob(".*"))


def test_download_directly_mismatch(tmp_path):
    source = _write(tmp_path / "src" / "remote.bin", b"xyz")
    target = tmp_path / "out" / "payload.bin"
    with pytest.raises(dl.DataNotFoundError, match=WRONG_SHA):
        dl._download(_spec(sha=WRONG_SHA, url=source.as_uri()), target)
    assert os.listdir(target.parent) == []


def test_download_removes_the_part_file_of_a_killed_download_only(tmp_path, cache_root):
    """A download killed with kill -9 leaves its .part file: the next download removes it, but not a recent
    one, which may be another process's download in progress."""
    target = cache_root / "somedata" / "payload.bin"
    killed = _write(target.parent / ".payload.bin.abc123.part")
    _write(target.parent / ".payload.bin.x.part")  # recent: a download running elsewhere
    old = killed.stat().st_mtime - dl.STALE_PART_SECONDS - 60
    os.utime(killed, (old, old))
    source = _write(tmp_path / "src" / "remote.bin")
    assert dl.locate(_spec(url=source.as_uri()), data_dir=tmp_path / "data", download=True) == target
    assert _files_under(cache_root) == ["somedata/.payload.bin.x.part", "somedata/payload.bin"]


# ---------------------------------------------------------------------------------------------------------
# the real registry entry
# ---------------------------------------------------------------------------------------------------------

def test_stocktwits_entry():
    spec = dl.STOCKTWITS
    assert (spec.subdir, spec.name, spec.size) == ("stocktwits_spy", "StockTwits_SPY_Sentiment_2017.gz", 3558296)
    assert len(spec.sha256) == 64 and set(spec.sha256) <= set("0123456789abcdef")
    assert spec.url.startswith("https://github.com/GarrettHoffman/lstm-oreilly/")
    assert spec.url.endswith("/data/StockTwits_SPY_Sentiment_2017.gz")


@pytest.mark.parametrize("name", ["STOCKTWITS", "FABLE", "PTB_TRAIN", "PTB_VALID", "PTB_TEST", "imdb.TAR",
                                  "imdb.WORD_INDEX"])
def test_real_file_matches_entry(name):
    """Every registry entry's size and sha256 against the real file (locate verifies the sha256)."""
    if name.startswith("imdb."):
        from legacy_lstm import imdb
        spec = getattr(imdb, name.split(".")[1])
    else:
        spec = getattr(dl, name)
    # the autouse fixture unset the env var: use the value read when this module was imported
    root = pathlib.Path(REAL_ENV) if REAL_ENV else pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    path = root / spec.subdir / spec.name
    if not path.is_file():
        pytest.skip(f"real data not present: {path}")
    assert path.stat().st_size == spec.size
    assert dl.locate(spec, data_dir=root, download=False) == path


def test_module_does_not_import_tensorflow():
    code = ("import sys, legacy_lstm.data.download; "
            "sys.exit(1 if any(m.split('.')[0] == 'tensorflow' for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=pathlib.Path(__file__).resolve().parents[1]).returncode == 0
