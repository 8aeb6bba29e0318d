"""The only module that imports TensorFlow.

It routes the legacy Keras namespaces to tf_keras (``TF_USE_LEGACY_KERAS=1`` must be set before the
first ``import tensorflow``: each lazy Keras loader reads it once), switches to graph mode with
``disable_eager_execution`` (not ``disable_v2_behavior``, which would turn off resource variables and with
them deterministic scatters), quiets the known log spam (TensorFlow's native start-up lines are filtered out unless
``LEGACY_LSTM_TF_LOGS=1``; any other line they print is shown), and provides the two pieces of ``tf.contrib`` the
tutorials need: ``fully_connected`` and ``sequence_loss``.

Everything else in the package does ``from legacy_lstm.compat import tf, tf1``.
"""

import contextlib
import os
import random
import re
import sys
import threading
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SHOW_TF_LOGS_VAR = "LEGACY_LSTM_TF_LOGS"  # set to 1: show TensorFlow's native start-up lines as they come
# What TensorFlow's native code prints at start-up on every CPU machine, before its logging is set up (so
# TF_CPP_MIN_LOG_LEVEL cannot silence it), once per shared library that loads: no news for a user.
_KNOWN_START_UP_LINES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|\S+ \S+ +\d+ (cudart_stub|cuda_executor|cuda_diagnostics|cpu_feature_guard|port)\.cc:\d+\] .*"
    r"|To enable the following instructions: .*, in other operations, rebuild TensorFlow .*")


@contextlib.contextmanager
def _native_start_up_filtered():
    """Route what native code writes to file descriptor 2 inside the block through a pipe whose reader passes on,
    as it comes, every line that is not one of TensorFlow's known start-up lines (so a fatal message printed just
    before a crash is not held back). The known lines are dropped, or written at the end if the block raised.
    With ``LEGACY_LSTM_TF_LOGS=1`` nothing is filtered."""
    if os.environ.get(SHOW_TF_LOGS_VAR) == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedded interpreter): leave it alone
        yield
        return
    try:
        read_end, write_end = os.pipe()
    except OSError:
        os.close(saved)
        yield
        return
    dropped = []

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:  # until the last write end closes; never stop reading, or the writer would block
                try:
                    if _KNOWN_START_UP_LINES.fullmatch(raw.decode("utf-8", "replace").strip()):
                        dropped.append(raw)
                    else:
                        os.write(saved, raw)
                except OSError:
                    pass

    reader = threading.Thread(target=forward, name="native-stderr-filter", daemon=True)
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    failed = True
    try:
        yield
        failed = False
    finally:
        os.dup2(saved, 2)  # fd 2 was the pipe's last write end: the reader sees the end and stops
        reader.join(timeout=10)
        if failed and dropped:
            os.write(saved, b"".join(dropped))
        os.close(saved)


with _native_start_up_filtered():
    import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1


class LegacyKerasError(ImportError):
    """The tf.compat.v1 RNN cells are not the tf_keras legacy cells."""


def _check_legacy_cells():
    try:
        module = tf1.nn.rnn_cell.BasicLSTMCell.__module__
    except (AttributeError, ImportError) as err:
        raise LegacyKerasError(
            "legacy_lstm needs the TF1 RNN cells (BasicLSTMCell, MultiRNNCell, ...), which Keras 3 removed. "
            "Install tf-keras of the same minor version as tensorflow (pip install 'tf-keras>=2.21,<2.22') and "
            "make sure TF_USE_LEGACY_KERAS=1 is set before anything imports tensorflow "
            f"(it is now {os.environ.get('TF_USE_LEGACY_KERAS')!r}). Original error: {err}") from err
    if not module.startswith("tf_keras"):
        raise LegacyKerasError(
            f"tf.compat.v1.nn.rnn_cell.BasicLSTMCell comes from {module!r}, not from tf_keras. Something imported "
            "tensorflow.keras before legacy_lstm set TF_USE_LEGACY_KERAS=1; import legacy_lstm first or export "
            "TF_USE_LEGACY_KERAS=1 in the environment.")


with _native_start_up_filtered():  # the legacy cells load tf_keras, whose native libraries print the same again
    _check_legacy_cells()
tf1.disable_eager_execution()

# The base class of the tf_keras legacy cells that build their variables in ``build`` (BasicLSTMCell's parent);
# taken from the class hierarchy so no tf_keras-internal module path is imported.
LayerRNNCell = next(c for c in tf1.nn.rnn_cell.BasicLSTMCell.__mro__ if c.__name__ == "LayerRNNCell")


def quiet():
    """Silence the deprecation chatter of the v1 APIs (they are used on purpose here)."""
    tf1.logging.set_verbosity(tf1.logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed.*")
    warnings.filterwarnings("ignore", message=r".*`tf.nn.rnn_cell.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(tensorflow|tf_keras|keras)\b.*")


quiet()


def seed_everything(seed):
    """Seed Python, NumPy and the TF graph seed of the *current default graph*.

    Call it inside ``with graph.as_default()``. ``tf.keras.utils.set_random_seed`` is used because the
    tf_keras legacy cells draw their initializer seeds from Python's ``random``; the graph seed alone does
    not make them repeatable.
    """
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % (2**32))
    tf.keras.utils.set_random_seed(seed)
    tf1.set_random_seed(seed)


def fully_connected(inputs, num_outputs, activation_fn=tf.nn.relu, scope=None, reuse=None):
    """``tf.contrib.layers.fully_connected`` for a 2-D input, with its defaults and variable names.

    Creates ``<scope>/weights`` (Xavier/Glorot uniform, graph-seeded) and ``<scope>/biases`` (zeros),
    scope ``fully_connected`` by default, and applies ``activation_fn`` (ReLU unless told otherwise).
    """
    with tf1.variable_scope(scope, default_name="fully_connected", values=[inputs], reuse=reuse):
        inputs = tf.convert_to_tensor(inputs)
        num_inputs = inputs.shape[-1]
        if num_inputs is None:
            raise ValueError(f"fully_connected needs a known last dimension, got shape {inputs.shape}")
        weights = tf1.get_variable("weights", [int(num_inputs), num_outputs], dtype=inputs.dtype,
                                   initializer=tf1.glorot_uniform_initializer())
        biases = tf1.get_variable("biases", [num_outputs], dtype=inputs.dtype,
                                  initializer=tf1.zeros_initializer())
        outputs = tf.nn.bias_add(tf.matmul(inputs, weights), biases)
        return activation_fn(outputs) if activation_fn is not None else outputs


def sequence_loss(logits, targets, weights, average_across_timesteps=True, average_across_batch=True,
                  name=None):
    """``tf.contrib.seq2seq.sequence_loss`` with TF 1.15 semantics (``div_no_nan`` normalisation).

    logits [batch, steps, classes], targets int [batch, steps], weights [batch, steps]. Returns a scalar when
    both averages are on, [steps] when only the batch is averaged, [batch] when only time is averaged.
    """
    with tf1.name_scope(name, "sequence_loss", [logits, targets, weights]):
        num_classes = tf.shape(logits)[2]
        flat_logits = tf.reshape(logits, [-1, num_classes])
        flat_targets = tf.reshape(targets, [-1])
        crossent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=flat_targets, logits=flat_logits)
        crossent *= tf.reshape(tf.cast(weights, crossent.dtype), [-1])
        weights = tf.cast(weights, crossent.dtype)
        if average_across_timesteps and average_across_batch:
            return tf.math.divide_no_nan(tf.reduce_sum(crossent), tf.reduce_sum(weights))
        crossent = tf.reshape(crossent, tf.shape(logits)[0:2])
        if average_across_timesteps:
            return tf.math.divide_no_nan(tf.reduce_sum(crossent, axis=1), tf.reduce_sum(weights, axis=1))
        if average_across_batch:
            return tf.math.divide_no_nan(tf.reduce_sum(crossent, axis=0), tf.reduce_sum(weights, axis=0))
        return crossent


def versions():
    """Versions recorded in every run manifest."""
    import platform
    try:
        import tf_keras
        tf_keras_version = tf_keras.__version__
    except ImportError:  # pragma: no cover - _check_legacy_cells already failed then
        tf_keras_version = None
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "tf_keras": tf_keras_version, "numpy": np.__version__}


# The CPU features that decide which GEMM kernels (and which precisions) are fast, as /proc/cpuinfo names them
VECTOR_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine():
    """The machine a sitting or benchmark ran on: epoch and step times are only comparable on the same one. On
    Linux also ``vector_features``: which of VECTOR_FEATURES the CPU has."""
    import platform
    out = {"cpus": os.cpu_count(), "cpu_model": platform.processor() or None, "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    out["cpu_model"] = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                            out["cpu_model"])
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    out["vector_features"] = [name for name in VECTOR_FEATURES if name in flags]
    return out
