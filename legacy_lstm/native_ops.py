"""The native LSTM sequence ops (legacy_lstm/csrc/lstm_seq.cc): compiled on this machine, cached, loaded.

``load()`` returns the loaded op module (``legacy_lstm_seq_forward``, ``legacy_lstm_seq_backward``) or raises
``NativeOpsUnavailable`` with the reason; ``available()`` says whether it loads, without raising. The library is
built once per (source, TensorFlow version and flags, CPU) with ``$CXX`` (default ``g++``) and TensorFlow's own
compile and link flags (``tf.sysconfig``), ``-O3 -march=native``, into
``<cache>/native/lstm_seq-<key>.so`` (``<cache>``: ``$XDG_CACHE_HOME/legacy_lstm`` or ``~/.cache/legacy_lstm``):
a machine with another CPU or TensorFlow builds its own. The build writes a temporary file and renames it, so
two processes building at once both end with a whole library.

The ops are an option of ``--cell=fused`` (``fast_lstm.OPTIONS["native"]``); without a C++ compiler the fused
path runs its TensorFlow while loops as before.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

from legacy_lstm import compat
from legacy_lstm.compat import tf
from legacy_lstm.data import download

SOURCE = pathlib.Path(__file__).resolve().parent / "csrc" / "lstm_seq.cc"
OPTIMISE = ["-O3", "-march=native", "-fPIC", "-shared", "-Wno-deprecated-declarations"]
# Eigen's AVX512-FP16 packet code does not compile with g++ 12: where -march=native would enable it, it is turned off
# (only float32 is computed here).
NO_FP16 = "-mno-avx512fp16"

_loaded = None
_failure = None


class NativeOpsUnavailable(RuntimeError):
    """The native ops could not be built or loaded here (the message says why)."""


def _compiler():
    return os.environ.get("CXX", "g++")


def _accepts(compiler, flag):
    try:
        return subprocess.run([compiler, flag, "-E", "-x", "c++", os.devnull], capture_output=True).returncode == 0
    except OSError:
        return False


def _flags():
    """(compile flags, link flags): ours, then TensorFlow's own."""
    compiler = _compiler()
    ours = OPTIMISE + ([NO_FP16] if shutil.which(compiler) and _accepts(compiler, NO_FP16) else [])
    return ours + list(tf.sysconfig.get_compile_flags()), list(tf.sysconfig.get_link_flags())


def library_path(cache=None):
    """Where this machine's build of the ops lives (keyed by source, TF version, flags, compiler, CPU)."""
    compile_flags, link_flags = _flags()
    machine = compat.machine()
    key = hashlib.sha256("\n".join([
        SOURCE.read_text(), tf.__version__, " ".join(compile_flags + link_flags),
        _compiler(), machine.get("cpu_model", ""), " ".join(machine.get("vector_features", [])),
    ]).encode()).hexdigest()[:16]
    return pathlib.Path(cache or download.cache_dir()) / "native" / f"lstm_seq-{key}.so"


def build(cache=None):
    """Compile the ops into ``library_path()`` unless that file exists; returns its path."""
    target = library_path(cache)
    if target.exists():
        return target
    compiler = _compiler()
    if shutil.which(compiler) is None:
        raise NativeOpsUnavailable(f"no C++ compiler ({compiler!r} is not on PATH; set $CXX) to build {SOURCE.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    compile_flags, link_flags = _flags()
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    command = [compiler, *compile_flags, str(SOURCE), "-o", tmp, *link_flags]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines()
            raise NativeOpsUnavailable(f"building {SOURCE.name} failed ({' '.join(command)}):\n"
                                       + "\n".join(errors[:20]))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def load(cache=None):
    """The op module, built and loaded once per process; ``NativeOpsUnavailable`` if that fails."""
    global _loaded, _failure
    if _loaded is None and _failure is None:
        try:
            _loaded = tf.load_op_library(str(build(cache)))
        except NativeOpsUnavailable as e:
            _failure = str(e)
        except (tf.errors.NotFoundError, OSError) as e:  # a library that does not load (e.g. symbols)
            _failure = f"loading the native LSTM ops failed: {e}"
    if _loaded is None:
        raise NativeOpsUnavailable(_failure)
    return _loaded


def available():
    try:
        load()
        return True
    except NativeOpsUnavailable:
        return False
