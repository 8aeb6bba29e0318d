"""Shared fixtures: where the real data is (skip cleanly when it is absent), scripts/reproduce.py, and whether the
native LSTM ops can be built here."""

import importlib.util
import os
import pathlib
import shutil

import pytest
from absl import flags
from absl.testing import flagsaver

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def real_data_dir():
    """$LEGACY_LSTM_DATA if set, else ../shared/data beside the checkout, else None."""
    env = os.environ.get("LEGACY_LSTM_DATA")
    if env and pathlib.Path(env).is_dir():
        return pathlib.Path(env)
    return SHARED_DATA if SHARED_DATA.is_dir() else None


@pytest.fixture(scope="session")
def data_dir():
    found = real_data_dir()
    if found is None:
        pytest.skip("real data not present (set LEGACY_LSTM_DATA or put it in ../shared/data)")
    return found


def real_file(data_dir, relative):
    """``data_dir / relative``, or skip the test when that file is absent."""
    path = data_dir / relative
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def need_native_ops():
    """The native LSTM ops built and loaded, or the test skipped saying why when there is no C++ compiler. With a
    compiler, a failing build fails the test: it is a defect, not a reason to skip."""
    from legacy_lstm import native_ops
    try:
        return native_ops.load()
    except native_ops.NativeOpsUnavailable as e:
        if shutil.which(native_ops._compiler()[0]):
            raise
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def stocktwits_path(data_dir):
    return real_file(data_dir, "stocktwits_spy/StockTwits_SPY_Sentiment_2017.gz")


@pytest.fixture(scope="session")
def curve_runs(data_dir, tmp_path_factory):
    """``curve_runs(name)``: the short seeded run of tests/curves.py's spec ``name`` ({"curve", "log"}), trained at
    most once per session (tests/test_curves.py compares its curve, tests/test_compare.py reads its log)."""
    import curves
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = curves.run(curves.SPECS[name], data_dir, tmp_path_factory.mktemp(name))
        return cache[name]
    return get


@pytest.fixture(scope="session")
def reproduce_script():
    """scripts/reproduce.py as a module (it is a script, not part of the package)."""
    path = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "reproduce.py"
    spec = importlib.util.spec_from_file_location("reproduce_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def parsed_flags():
    """The absl flags as after parsing an empty command line (set them as attributes); restored after the test."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver():
        yield flags.FLAGS
