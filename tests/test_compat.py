"""The compat module: legacy Keras routing, graph mode, seeding, fully_connected, sequence_loss."""

import os
import subprocess
import sys

import numpy as np
import pytest

from legacy_lstm import compat
from legacy_lstm.compat import fully_connected, seed_everything, sequence_loss, tf, tf1


def test_legacy_cells_come_from_tf_keras_and_graph_mode_is_on():
    assert tf1.nn.rnn_cell.BasicLSTMCell.__module__.startswith("tf_keras")
    assert not tf.executing_eagerly()
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"


def test_clear_error_when_keras_3_owns_the_cells():
    code = ("import tensorflow as tf; tf.keras.layers.Dense(1)\n"  # touches Keras 3 before legacy_lstm
            "import legacy_lstm.compat")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode != 0
    assert "LegacyKerasError" in out.stderr and "tf-keras" in out.stderr and "TF_USE_LEGACY_KERAS" in out.stderr


def test_only_compat_imports_tensorflow():
    import pathlib
    pkg = pathlib.Path(__file__).resolve().parents[1] / "legacy_lstm"
    offenders = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if p.name != "compat.py"
                 and any(line.strip().startswith(("import tensorflow", "from tensorflow"))
                         for line in p.read_text().splitlines())]
    assert offenders == []


def test_fully_connected_has_contrib_names_defaults_and_is_seeded():
    values = []
    for _ in range(2):
        with tf.Graph().as_default():
            seed_everything(3)
            x = tf1.placeholder(tf.float32, [None, 5])
            y = fully_connected(x, 2)
            second = fully_connected(x, 1, activation_fn=None)
            names = [v.op.name for v in tf1.global_variables()]
            assert names == ["fully_connected/weights", "fully_connected/biases",
                             "fully_connected_1/weights", "fully_connected_1/biases"]
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                w, b, w2, b2 = sess.run(tf1.global_variables())
                inp = np.array([[-1.0, 2, -3, 4, -5], [1.0, -2, 3, -4, 5]], np.float32)  # x and -x: both signs
                out, lin = sess.run([y, second], {x: inp})
            values.append(w)
            np.testing.assert_array_equal(b, 0)
            np.testing.assert_allclose(out, np.maximum(inp @ w + b, 0), rtol=1e-6)  # relu by default
            np.testing.assert_allclose(lin, inp @ w2 + b2, rtol=1e-6)  # activation_fn=None: linear
            assert (inp @ w + b).min() < 0 and (inp @ w2 + b2).min() < 0  # relu and linear differ here
            limit = np.sqrt(6 / (5 + 2))  # Glorot uniform
            assert np.abs(w).max() <= limit
    np.testing.assert_array_equal(values[0], values[1])


def test_sequence_loss_matches_manual_cross_entropy():
    rng = np.random.RandomState(0)
    logits = rng.randn(3, 4, 6).astype(np.float32)
    targets = rng.randint(0, 6, (3, 4)).astype(np.int32)
    weights = np.ones((3, 4), np.float32)
    weights[0, 3] = 0.0
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0] * weights
    with tf.Graph().as_default(), tf1.Session() as sess:
        both, per_step, per_example, none = sess.run([
            sequence_loss(logits, targets, weights),
            sequence_loss(logits, targets, weights, average_across_timesteps=False),
            sequence_loss(logits, targets, weights, average_across_batch=False),
            sequence_loss(logits, targets, weights, False, False)])
    np.testing.assert_allclose(both, ce.sum() / weights.sum(), rtol=1e-5)
    np.testing.assert_allclose(per_step, ce.sum(0) / weights.sum(0), rtol=1e-5)
    np.testing.assert_allclose(per_example, ce.sum(1) / weights.sum(1), rtol=1e-5)
    np.testing.assert_allclose(none, ce, rtol=1e-5)


def test_seed_everything_makes_legacy_cells_repeatable():
    kernels = []
    for _ in range(2):
        with tf.Graph().as_default():
            seed_everything(11)
            cell = tf1.nn.rnn_cell.BasicLSTMCell(4)
            tf1.nn.dynamic_rnn(cell, tf.zeros([1, 2, 3]), dtype=tf.float32)
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                kernels.append(sess.run(cell.weights[0]))
    np.testing.assert_array_equal(kernels[0], kernels[1])


@pytest.mark.parametrize("seed", [None])
def test_seed_none_is_a_no_op(seed):
    state = np.random.get_state()[1].copy()
    seed_everything(seed)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_machine_names_the_cpu_model(tmp_path, monkeypatch):
    import builtins

    from legacy_lstm import compat
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n"
                       "flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512bw\n\nprocessor\t: 1\n"
                       "model name\t: AMD EPYC 9B14\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: real_open(
        cpuinfo if str(path) == "/proc/cpuinfo" else path, *a, **k))
    assert compat.machine()["cpu_model"] == "AMD EPYC 9B14"
    assert compat.machine()["cpus"] == os.cpu_count()
    assert compat.machine()["vector_features"] == ["avx2", "fma", "avx512f", "avx512_bf16"]  # in VECTOR_FEATURES order
    cpuinfo.unlink()  # no /proc (not Linux): whatever platform knows, never an error
    assert set(compat.machine()) == {"cpus", "cpu_model", "platform"}


def test_native_start_up_lines_are_filtered_and_other_lines_kept(capfd):
    with compat._native_start_up_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1796026690.042680    6663 cudart_stub.cc:31] Could not find cuda drivers on "
                    b"your machine, GPU will not be used.\n"
                    b"E0000 something TensorFlow really wants to say\n")
    err = capfd.readouterr().err
    assert "InitializeLog" not in err and "cudart_stub" not in err
    assert "E0000 something TensorFlow really wants to say" in err


def test_native_start_up_lines_are_all_shown_when_the_block_fails(capfd):
    with pytest.raises(ImportError):
        with compat._native_start_up_filtered():
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
            raise ImportError("a broken install")
    assert "InitializeLog" in capfd.readouterr().err


def test_native_start_up_lines_shown_with_the_env_var(capfd, monkeypatch):
    monkeypatch.setenv(compat.SHOW_TF_LOGS_VAR, "1")
    with compat._native_start_up_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    assert "InitializeLog" in capfd.readouterr().err


def test_importing_the_package_prints_no_start_up_noise():
    env = dict(os.environ)
    env.pop(compat.SHOW_TF_LOGS_VAR, None)
    out = subprocess.run([sys.executable, "-c", "import legacy_lstm.compat, legacy_lstm.cells"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "InitializeLog" not in out.stderr and "cudart_stub" not in out.stderr, out.stderr
