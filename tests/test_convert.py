"""Checkpoint interchange: exact layout maths, cuDNN equations, Keras LSTM, and whole-model conversions."""

import dataclasses
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from legacy_lstm import cells, convert, runs, stocktwits
from legacy_lstm.compat import tf, tf1

from stocktwits_fixtures import QUICK, write_messages

REPO = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.RandomState(7)


def _random_tf_params(input_size=5, units=3):
    return (RNG.randn(input_size + units, 4 * units).astype(np.float32),
            RNG.randn(4 * units).astype(np.float32))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def cudnn_lstm_numpy(x, canon, h=None, c=None):
    """The cuDNN LSTM equations (two biases per gate), time-major x [T, B, I] -> h for every step, final c."""
    units = canon["R_i"].shape[0]
    h = np.zeros((x.shape[1], units), np.float64) if h is None else h
    c = np.zeros((x.shape[1], units), np.float64) if c is None else c
    gate = {g: lambda xt, ht, g=g: xt @ canon[f"W_{g}"].T + ht @ canon[f"R_{g}"].T + canon[f"b_W_{g}"]
            + canon[f"b_R_{g}"] for g in "ifco"}
    outputs = []
    for xt in x:
        i, f = _sigmoid(gate["i"](xt, h)), _sigmoid(gate["f"](xt, h))
        c_new, o = np.tanh(gate["c"](xt, h)), _sigmoid(gate["o"](xt, h))
        c = f * c + i * c_new
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs), c


def test_round_trips_are_exact():
    kernel, bias = _random_tf_params()
    # Without a forget-bias shift the conversions only move and halve entries: exact.
    k2, b2 = convert.canonical_to_tf(convert.tf_to_canonical(kernel, bias))
    np.testing.assert_array_equal(k2, kernel)
    np.testing.assert_array_equal(b2, bias)
    k3, b3 = convert.keras_to_tf(*convert.tf_to_keras(kernel, bias))
    np.testing.assert_array_equal(k3, kernel)
    np.testing.assert_array_equal(b3, bias)
    # With a shift of 1.0, (b + 1) - 1 rounds in float32 for small |b|: within one float32 ulp of 1.
    canon = convert.tf_to_canonical(kernel, bias, 1.0)
    np.testing.assert_array_equal(canon["b_W_f"] + canon["b_R_f"], bias[6:9] + np.float32(1.0))  # folded in
    np.testing.assert_array_equal(canon["b_W_i"] + canon["b_R_i"], bias[0:3])                   # others not
    k4, b4 = convert.canonical_to_tf(canon, 1.0)
    np.testing.assert_array_equal(k4, kernel)
    np.testing.assert_allclose(b4, bias, atol=1.2e-7, rtol=0)


def test_canonical_layout_shapes_and_param_count():
    kernel, bias = _random_tf_params(input_size=5, units=3)
    canon = convert.tf_to_canonical(kernel, bias)
    assert canon["W_i"].shape == (3, 5) and canon["R_o"].shape == (3, 3) and canon["b_R_c"].shape == (3,)
    assert sum(v.size for v in canon.values()) == 4 * 3 * (5 + 3) + 8 * 3
    np.testing.assert_array_equal(canon["b_W_f"] + canon["b_R_f"], bias[6:9])  # f is the third ICFO slice
    np.testing.assert_array_equal(canon["W_c"], kernel[:5, 3:6].T)            # c (candidate) is the second


def test_cudnn_compatible_cell_computes_the_cudnn_equations():
    canon = {k: RNG.randn(*s).astype(np.float32) * 0.5 for k, s in
             [(f"W_{g}", (6, 4)) for g in "ifco"] + [(f"R_{g}", (6, 6)) for g in "ifco"] +
             [(f"b_{w}_{g}", (6,)) for w in "WR" for g in "ifco"]}
    kernel, bias = convert.canonical_to_tf(canon)
    x = RNG.randn(9, 3, 4).astype(np.float32)  # time-major
    with tf.Graph().as_default():
        cell = cells.make_cell("cudnn_compatible", 6)
        out, state = tf1.nn.dynamic_rnn(cell, tf.constant(x), dtype=tf.float32, time_major=True)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            cell.weights[0].load(kernel, sess)
            cell.weights[1].load(bias, sess)
            got_h, got_state = sess.run([out, state])
    want_h, want_c = cudnn_lstm_numpy(x.astype(np.float64), {k: v.astype(np.float64) for k, v in canon.items()})
    np.testing.assert_allclose(got_h, want_h, atol=2e-6)
    np.testing.assert_allclose(got_state.c, want_c, atol=2e-6)


def test_keras_lstm_layer_matches_basic_cell_after_conversion():
    x = RNG.randn(4, 6, 5).astype(np.float32)
    kernel, bias = _random_tf_params(input_size=5, units=3)
    with tf.Graph().as_default():
        cell = tf1.nn.rnn_cell.BasicLSTMCell(3)  # forget_bias 1.0
        basic_out, _ = tf1.nn.dynamic_rnn(cell, tf.constant(x), dtype=tf.float32)
        layer = tf.keras.layers.LSTM(3, return_sequences=True)
        keras_out = layer(tf.constant(x))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            cell.weights[0].load(kernel, sess)
            cell.weights[1].load(bias, sess)
            for var, value in zip(layer.weights, convert.tf_to_keras(kernel, bias, forget_bias=1.0)):
                var.load(value, sess)
            a, b = sess.run([basic_out, keras_out])
    np.testing.assert_allclose(b, a, atol=1e-6)


def _stack_outputs(kind, units, x, prefix=None, values=None):
    """Outputs of a MultiRNNCell of ``kind`` on x; restore from checkpoint ``prefix`` or load ``values``."""
    with tf.Graph().as_default():
        stack = tf1.nn.rnn_cell.MultiRNNCell([cells.make_cell(kind, u) for u in units])
        out, _ = tf1.nn.dynamic_rnn(stack, tf.constant(x), dtype=tf.float32)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            if prefix:
                tf1.train.Saver().restore(sess, prefix)
            if values:
                for var in tf1.global_variables():
                    var.load(values[var.op.name], sess)
            return sess.run(out), {v.op.name: sess.run(v) for v in tf1.global_variables()}


@pytest.mark.parametrize("target", ["cudnn_compatible", "block"])
def test_ptb_shaped_stack_converts_between_cells(tmp_path, target):
    x = RNG.randn(20, 35, 200).astype(np.float32) * 0.5  # PTB small: batch 20, 35 steps, 200 units
    ref, values = _stack_outputs("basic", (200, 200), x)
    values = {k: v + RNG.randn(*v.shape).astype(np.float32) * 0.05 for k, v in values.items()}  # non-zero biases
    ref, _ = _stack_outputs("basic", (200, 200), x, values=values)
    src = convert.write_checkpoint(values, tmp_path / "basic" / "model.ckpt")
    dst = convert.write_checkpoint(convert.convert_values(convert.read_checkpoint(src), "basic", target),
                                   tmp_path / target / "model.ckpt")
    got, _ = _stack_outputs(target, (200, 200), x, prefix=dst)
    assert np.abs(got - ref).max() <= 1e-5
    back = convert.convert_values(convert.read_checkpoint(dst), target, "basic")
    for name, value in values.items():
        np.testing.assert_allclose(back[name], value, atol=1.2e-7, rtol=0)


def test_tf1_cudnn_lstm_checkpoint_layout_is_read(tmp_path):
    """TF 1.x CudnnLSTM saved canonical kernels under <scope>/rnn/multi_rnn_cell/... plus an opaque blob."""
    kernel, bias = _random_tf_params(input_size=4, units=3)
    values = {"cudnn_lstm/opaque_kernel": np.zeros(7, np.float32),
              "cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/kernel": kernel,
              "cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/bias": bias}
    out = convert.convert_values(values, "cudnn_compatible", "basic", strip_prefix="cudnn_lstm/")
    assert sorted(out) == ["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
                           "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"]
    expected = bias.copy()
    expected[6:9] -= 1.0  # ICFO, 3 units: the forget gate is entries 6-8; basic adds 1 there at run time
    np.testing.assert_array_equal(out["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias"], expected)
    np.testing.assert_array_equal(out["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"], kernel)


def test_tf11_weights_and_biases_names_are_read_and_written_as_kernel_and_bias():
    """TF <= 1.1 named a cell's variables weights/biases (same layout); slots follow the variable."""
    kernel, bias = _random_tf_params(input_size=4, units=3)
    head = "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/"
    values = {head + "weights": kernel, head + "biases": bias, head + "weights/Adadelta": kernel * 2,
              "Variable": np.ones(2, np.float32)}
    same = convert.convert_values(values, "basic", "basic")
    assert sorted(same) == ["Variable", head + "bias", head + "kernel", head + "kernel/Adadelta"]
    np.testing.assert_array_equal(same[head + "kernel"], kernel)
    np.testing.assert_array_equal(same[head + "bias"], bias)
    np.testing.assert_array_equal(same[head + "kernel/Adadelta"], kernel * 2)
    cudnn = convert.convert_values(values, "basic", "cudnn_compatible")
    expected = bias.copy()
    expected[6:9] += 1.0  # the basic cell's run-time forget bias moves into the bias vector
    np.testing.assert_array_equal(cudnn["rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/bias"], expected)
    assert list(convert.lstm_layers(values).values()) == [
        {"cell": "basic_lstm_cell", "kernel": head + "weights", "bias": head + "biases"}]


def test_a_tf11_lstmcell_checkpoint_file_converts_to_basic_from_the_command_line(tmp_path):
    """TF 1.0/1.1 LSTMCell wrote ``lstm_cell/weights`` and ``biases`` (its gate layout and run-time forget bias of
    1.0 are LSTMBlockCell's): --from=block reads them, --from=basic is refused with that hint, and the written
    checkpoint holds the values under the basic cell's TF >= 1.2 names, the Adam slots renamed with them."""
    kernel, bias = _random_tf_params(input_size=4, units=3)
    head = "rnn/multi_rnn_cell/cell_0/lstm_cell/"
    src = convert.write_checkpoint({head + "weights": kernel, head + "biases": bias, head + "weights/Adam": kernel / 2,
                                    "beta1_power": np.float32(0.9)}, str(tmp_path / "tf11" / "model.ckpt"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    refused = subprocess.run([sys.executable, "-m", "legacy_lstm.convert", f"--src={src}", "--from=basic",
                              "--to=basic", f"--dst={tmp_path / 'no' / 'model.ckpt'}"], capture_output=True,
                             text=True, env=env, timeout=300)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "lstm_cell/weights" in refused.stderr and "is a lstm_cell variable, but the source was declared basic " \
        "(basic_lstm_cell): give --from=block (lstm_cell is the scope of TF1's LSTMCell" in refused.stderr
    assert not (tmp_path / "no").exists()
    dst = tmp_path / "basic" / "model.ckpt"
    done = subprocess.run([sys.executable, "-m", "legacy_lstm.convert", f"--src={src}", "--from=block", "--to=basic",
                           f"--dst={dst}"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    out = convert.read_checkpoint(str(dst))
    basic = "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/"
    assert sorted(out) == ["beta1_power", basic + "bias", basic + "kernel", basic + "kernel/Adam"]
    np.testing.assert_array_equal(out[basic + "kernel"], kernel)
    np.testing.assert_array_equal(out[basic + "bias"], bias)  # both add 1.0 at run time: nothing moves
    np.testing.assert_array_equal(out[basic + "kernel/Adam"], kernel / 2)


def test_wrong_source_cell_is_refused():
    kernel, bias = _random_tf_params()
    for extra in ("rnn/lstm_cell/w_f_diag", "rnn/lstm_cell/projection/kernel"):
        with pytest.raises(ValueError, match="an LSTMCell with peepholes or a projection"):
            convert.convert_values({"rnn/lstm_cell/kernel": kernel, "rnn/lstm_cell/bias": bias,
                                    extra: np.ones(3, np.float32)}, "block", "basic")
    with pytest.raises(ValueError, match="is a basic_lstm_cell variable, but the source was declared block"):
        convert.convert_values({"rnn/basic_lstm_cell/kernel": kernel, "rnn/basic_lstm_cell/bias": bias},
                               "block", "basic")
    with pytest.raises(ValueError, match="no LSTM kernel/bias"):
        convert.convert_values({"Variable": kernel}, "basic", "block")


def test_export_import_arrays_round_trip():
    kernel, bias = _random_tf_params()
    values = {"Variable": np.ones(3, np.float32), "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel": kernel,
              "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias": bias}
    for fmt in ("cudnn_canonical", "keras"):
        arrays = convert.export_arrays(values, "basic", fmt)
        back = convert.import_arrays(arrays, fmt, "basic", base_values=values)
        assert sorted(back) == sorted(values)
        np.testing.assert_array_equal(back["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"], kernel)
        np.testing.assert_allclose(back["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias"], bias, atol=1.2e-7)


# --- the StockTwits test-size model, trained with one cell, converted, restored into another ---------------
@pytest.fixture(scope="module")
def trained_cudnn(tmp_path_factory):
    data = write_messages(tmp_path_factory.mktemp("st") / "StockTwits_SPY_Sentiment_2017.gz")
    run_dir = tmp_path_factory.mktemp("run") / "cudnn"
    # The `test` preset's graph (LSTM 16 -> 8, embedding 16, batch 32) on the hermetic data, with a rate and a
    # number of epochs large enough for Adadelta to learn the small data (the label checks below need it).
    config = dataclasses.replace(stocktwits.PRESETS["test"], learning_rate=10.0, epochs=6, max_records=None)
    stocktwits.train(data, run_dir, config, QUICK, split_seed=3, seed=2, cell="cudnn_compatible",
                     log=lambda *a: None)
    return data, run_dir


TEXTS = ["moon calls buy rally", "puts crash sell", "the market today spy", "breakout long $SPY"]


def test_stocktwits_trains_tests_and_predicts_with_cudnn_compatible(trained_cudnn):
    data, run_dir = trained_cudnn
    assert runs.read_manifest(run_dir)["cell"] == "cudnn_compatible"
    names = [n for n, _ in tf1.train.list_variables(str(run_dir / "sentiment.ckpt"))]
    assert "rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/kernel" in names
    assert stocktwits.test(data, run_dir, log=lambda *a: None) > 0.8  # the data is ~55% bullish: it learned
    results = stocktwits.predict(run_dir, TEXTS)
    assert [r["label"] for r in results[:2]] == ["bullish", "bearish"]


def test_stocktwits_checkpoint_converts_to_basic_and_back(trained_cudnn, tmp_path):
    data, run_dir = trained_cudnn
    want = [r["probability"] for r in stocktwits.predict(run_dir, TEXTS)]
    out = subprocess.run([sys.executable, "-m", "legacy_lstm.convert", f"--src={run_dir}",
                          f"--dst={tmp_path / 'basic'}", "--to=basic"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert runs.read_manifest(tmp_path / "basic")["cell"] == "basic"
    names = [n for n, _ in tf1.train.list_variables(tf1.train.latest_checkpoint(str(tmp_path / "basic")))]
    assert "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias" in names
    assert "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias/Adadelta" in names
    got = [r["probability"] for r in stocktwits.predict(tmp_path / "basic", TEXTS)]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert stocktwits.test(data, tmp_path / "basic", log=lambda *a: None) == pytest.approx(
        stocktwits.test(data, run_dir, log=lambda *a: None), abs=1e-6)
    convert.convert_run_dir(tmp_path / "basic", tmp_path / "again", "cudnn_compatible")
    again = [r["probability"] for r in stocktwits.predict(tmp_path / "again", TEXTS)]
    np.testing.assert_allclose(again, want, atol=1e-5)


def test_convert_refuses_to_overwrite(trained_cudnn, tmp_path):
    _, run_dir = trained_cudnn
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        convert.convert_run_dir(run_dir, tmp_path / "dst", "basic")
    assert (tmp_path / "dst" / "keep.txt").read_text() == "x"


def test_relative_dst_and_an_imported_checkpoint_without_slots(trained_cudnn, tmp_path, monkeypatch):
    """convert to a relative --dst works; a checkpoint rebuilt from Keras weights (no optimizer slots) predicts."""
    _, run_dir = trained_cudnn
    want = [r["probability"] for r in stocktwits.predict(run_dir, TEXTS)]
    monkeypatch.chdir(tmp_path)
    convert.convert_run_dir(run_dir, "rel/basic", "basic")
    assert stocktwits.predict("rel/basic", TEXTS)[0]["probability"] == pytest.approx(want[0], abs=1e-5)
    prefix = tf1.train.latest_checkpoint("rel/basic")
    values = convert.read_checkpoint(prefix)
    arrays = convert.export_arrays(values, "basic", "keras")
    trainable = {k: v for k, v in values.items() if "Adadelta" not in k}
    rebuilt = convert.import_arrays(arrays, "keras", "basic", base_values=trainable)
    assert not any("Adadelta" in k for k in rebuilt)
    convert.write_checkpoint(rebuilt, tmp_path / "rel" / "basic" / "imported.ckpt")
    got = [r["probability"] for r in stocktwits.predict("rel/basic", TEXTS, checkpoint=str(
        tmp_path / "rel" / "basic" / "imported.ckpt"))]
    np.testing.assert_allclose(got, want, atol=1e-5)
