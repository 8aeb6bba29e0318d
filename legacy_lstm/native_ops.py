"""The native LSTM sequence ops (legacy_lstm/csrc/lstm_seq.cc): compiled on this machine, cached, loaded.

``load()`` returns the loaded op module (``legacy_lstm_seq_forward``, ``legacy_lstm_seq_backward``) or raises
``NativeOpsUnavailable`` with the reason; ``available()`` says whether it loads, without raising. The library is
built once per (source, TensorFlow version and flags, CPU) with ``$CXX`` (default ``g++``; a command with its own
arguments, e.g. ``ccache g++``, is split as a shell would) and TensorFlow's own compile and link flags
(``tf.sysconfig``), ``-O3 -march=native``, into ``<cache>/native/lstm_seq-<key>.so`` (``<cache>``:
``$XDG_CACHE_HOME/legacy_lstm`` or ``~/.cache/legacy_lstm``): a machine with another CPU or TensorFlow builds its
own. The build writes a temporary file and renames it, so two processes building at once both end with a whole
library; a build that takes longer than ``BUILD_TIMEOUT`` seconds is stopped (the compiler and every process it
started) and reported. After a build, other builds in that folder not built or loaded for ``STALE_DAYS`` days (an
older source or TensorFlow; a load marks its library as used) are deleted; a recent one may be another machine's
sharing the cache, and stays.

The ops are an option of ``--cell=fused`` (``--native_lstm``, ``fast_lstm.OPTIONS["native"]``); the fused path
runs its TensorFlow while loops unless that option is on, and with it on and no way to build the ops, building a
graph raises ``NativeOpsUnavailable`` (the command line makes that a usage error).
"""

import hashlib
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from legacy_lstm import compat
from legacy_lstm.compat import tf
from legacy_lstm.data import download

SOURCE = pathlib.Path(__file__).resolve().parent / "csrc" / "lstm_seq.cc"
OPTIMISE = ["-O3", "-march=native", "-fPIC", "-shared", "-Wno-deprecated-declarations"]
# Eigen's AVX512-FP16 packet code does not compile with g++ 12: where -march=native would enable it, it is turned off
# (only float32 is computed here).
NO_FP16 = "-mno-avx512fp16"
BUILD_TIMEOUT = 600  # seconds; a build takes about 45 s on 2 cores
STALE_DAYS = 30

_loaded = None
_failure = None
_lock = threading.Lock()


class NativeOpsUnavailable(RuntimeError):
    """The native ops could not be built or loaded here (the message says why)."""


def _compiler():
    """$CXX as a command: its words, split as a shell would (``ccache g++`` -> ["ccache", "g++"])."""
    try:
        return shlex.split(os.environ.get("CXX", "g++")) or ["g++"]
    except ValueError as e:  # e.g. an unbalanced quote
        raise NativeOpsUnavailable(f"$CXX ({os.environ.get('CXX')!r}) cannot be split into a command: {e}") from None


def _run_build(command, timeout):
    """(returncode, stderr) of the compiler command; past ``timeout`` seconds the compiler and everything it started
    (cc1plus, as, ld: one process group) are killed and NativeOpsUnavailable says so, with its last error lines."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, stderr = process.communicate()
        tail = "\n".join((stderr or "").splitlines()[-10:])
        raise NativeOpsUnavailable(f"building {SOURCE.name} took longer than {timeout} s and was stopped "
                                   f"({' '.join(command)})" + (f":\n{tail}" if tail else "")) from None
    return process.returncode, stderr


def _accepts(compiler, flag):
    try:
        return subprocess.run([*compiler, flag, "-E", "-x", "c++", os.devnull], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _remove_stale(folder, keep):
    """Delete the builds in ``folder`` other than ``keep`` that nobody loaded or built for STALE_DAYS days."""
    cutoff = time.time() - STALE_DAYS * 86400
    for old in folder.glob("lstm_seq-*.so"):
        try:
            if old != keep and max(old.stat().st_mtime, old.stat().st_atime) < cutoff:
                old.unlink()
        except OSError:  # another process removed it, or it is not ours to remove: not this build's concern
            pass


def _cpu_signature():
    """What -march=native compiles for: the model and every flag of the first CPU in /proc/cpuinfo (the platform
    string elsewhere), so a cache shared by two kinds of CPU never hands one the other's instructions."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().split("\n\n")[0].splitlines()
        return "\n".join(line for line in lines if line.split(":")[0].strip() in ("model name", "flags", "Features"))
    except OSError:
        return compat.machine().get("platform") or ""


def library_path(cache=None):
    """Where this machine's build of the ops lives: keyed by the source, TF's version and flags, ours, $CXX and the
    CPU (not by what the compiler is found to accept, so a cached build is found with no compiler on PATH)."""
    key = hashlib.sha256("\n".join([
        SOURCE.read_text(), tf.__version__, " ".join(OPTIMISE + [NO_FP16]),
        " ".join(tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()), " ".join(_compiler()),
        _cpu_signature(),
    ]).encode()).hexdigest()[:16]
    return pathlib.Path(cache or download.cache_dir()) / "native" / f"lstm_seq-{key}.so"


def build(cache=None):
    """Compile the ops into ``library_path()`` unless that file exists; returns its path."""
    target = library_path(cache)
    if target.exists():
        return target
    compiler = _compiler()
    if shutil.which(compiler[0]) is None:
        raise NativeOpsUnavailable(f"no C++ compiler ({compiler[0]!r} is not on PATH; set $CXX) to build "
                                   f"{SOURCE.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    compile_flags = OPTIMISE + ([NO_FP16] if _accepts(compiler, NO_FP16) else []) + tf.sysconfig.get_compile_flags()
    link_flags = tf.sysconfig.get_link_flags()
    # the temporary file matches lstm_seq-*.so: a leftover of a killed process goes with the stale builds
    fd, tmp = tempfile.mkstemp(prefix="lstm_seq-tmp-", suffix=".so", dir=target.parent)
    os.close(fd)
    command = [*compiler, *compile_flags, str(SOURCE), "-o", tmp, *link_flags]
    try:
        returncode, stderr = _run_build(command, BUILD_TIMEOUT)
        if returncode != 0:
            errors = [line for line in stderr.splitlines() if "error" in line] or stderr.splitlines()
            raise NativeOpsUnavailable(f"building {SOURCE.name} failed ({' '.join(command)}):\n"
                                       + "\n".join(errors[:20]))
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _remove_stale(target.parent, target)
    return target


def load(cache=None):
    """The op module, built and loaded once per process; ``NativeOpsUnavailable`` if that fails (the failure is
    remembered: a process does not try to build twice)."""
    global _loaded, _failure
    with _lock:
        if _loaded is None and _failure is None:
            try:
                path = build(cache)
                try:
                    _loaded = tf.load_op_library(str(path))
                except (tf.errors.NotFoundError, OSError) as e:  # e.g. an undefined symbol
                    raise NativeOpsUnavailable(f"loading the native LSTM ops from {path} failed (delete it to "
                                               f"rebuild): {e}") from None
                try:  # marks the build as in use for the stale-build clean-up, also where atimes are not kept
                    os.utime(path)
                except OSError:
                    pass
            except NativeOpsUnavailable as e:
                _failure = str(e)
            except Exception as e:  # noqa: BLE001 - anything else on the way (a subprocess error...) says why too
                _failure = f"building the native LSTM ops failed: {type(e).__name__}: {e}"
        if _loaded is None:
            raise NativeOpsUnavailable(_failure)
        return _loaded


def available():
    try:
        load()
        return True
    except NativeOpsUnavailable:
        return False
