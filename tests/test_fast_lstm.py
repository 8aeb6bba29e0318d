"""The fused LSTM stack (legacy_lstm/fast_lstm.py) against the cells it replaces: same variables, same seeded
initial weights and dropout draws, outputs, final states and gradients within 1e-5; the apps' --cell=fused."""

import dataclasses
import json
import os
import pathlib
import re
import time
import types

import numpy as np
import pytest

from legacy_lstm import fast_lstm, native_ops, ptb, ptb_thomas, stocktwits
from legacy_lstm.compat import seed_everything, tf, tf1

from stocktwits_fixtures import QUICK, SMALL, write_messages
from conftest import need_native_ops
from test_ptb import TINY, TINY_THOMAS, write_corpus

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "stocktwits_test_preset.json"
TOL = 1e-5


def _quiet(*args, **kwargs):
    pass


def _build(kind, style, units, depth, batch, steps, tied=False, keep=None, seed=5):
    """A graph with a seeded LSTM stack the way one app builds it (style: stocktwits | thomas | official), a loss
    that weighs every output and both parts of every final state, and its gradients. Returns (graph, tensors)."""
    graph = tf.Graph()
    with graph.as_default():
        # As the apps seed: the graph seed, and the source the cells' unseeded Keras Glorot initializer draws its seed
        # from (Python's random module, or tf_keras' own seed generator once any code has called
        # tf.keras.utils.set_random_seed, as every seeded app run does: seeding only `random` is then not enough).
        seed_everything(seed)
        x = tf1.placeholder(tf.float32, [batch, steps, depth], name="x")
        keep_prob = tf1.placeholder(tf.float32, [], name="keep_prob") if keep == "tensor" else keep
        init = tf1.random_uniform_initializer(-0.3, 0.3) if style == "official" else None
        with tf1.variable_scope("Model", initializer=init):

            def one_cell(size):
                if style == "thomas":
                    cell = tf1.nn.rnn_cell.LSTMCell(size, forget_bias=1.0)
                else:
                    cell = tf1.nn.rnn_cell.BasicLSTMCell(size, forget_bias=0.0 if style == "official" else 1.0)
                return cell if keep is None else tf1.nn.rnn_cell.DropoutWrapper(cell, output_keep_prob=keep_prob)
            if tied:
                shared = one_cell(units[0])
                stack = tf1.nn.rnn_cell.MultiRNNCell([shared for _ in units])
            else:
                stack = tf1.nn.rnn_cell.MultiRNNCell([one_cell(u) for u in units])
            initial = tuple(tf1.nn.rnn_cell.LSTMStateTuple(tf1.placeholder(tf.float32, [batch, u]),
                                                           tf1.placeholder(tf.float32, [batch, u])) for u in units)
            if style == "official":
                with tf1.variable_scope("RNN"):
                    if kind == "fused":
                        out, final = fast_lstm.unrolled_rnn(stack, x, initial)
                    else:
                        outs, state = [], initial
                        for t in range(steps):
                            if t > 0:
                                tf1.get_variable_scope().reuse_variables()
                            o, state = stack(x[:, t, :], state)
                            outs.append(o)
                        out, final = tf.stack(outs, 1), state
            else:
                rnn = fast_lstm.dynamic_rnn if kind == "fused" else tf1.nn.dynamic_rnn
                out, final = rnn(stack, x, initial_state=initial, parallel_iterations=1)
        rng = np.random.RandomState(1)
        weights = tf.constant(rng.randn(batch, steps, units[-1]).astype(np.float32))
        loss = tf.reduce_sum(out * weights)
        for k, state in enumerate(final):
            loss += 0.7 * tf.reduce_sum(state.c * (k + 1)) + 1.3 * tf.reduce_sum(state.h)
        variables = tf1.trainable_variables()
        flat_initial = tf.nest.flatten(initial)
        grads = tf.gradients(loss, [x] + flat_initial + variables)
        return graph, dict(x=x, keep_prob=keep_prob, initial=flat_initial, out=out, final=tf.nest.flatten(final),
                           variables=variables, grads=grads, init=tf1.global_variables_initializer())


def _run(kind, style, units, depth=6, batch=3, steps=9, tied=False, keep=None, keep_value=1.0, runs=1, threads=None):
    graph, t = _build(kind, style, units, depth, batch, steps, tied, keep)
    if kind == "fused":  # the path OPTIONS["native"] asks for is the one in the graph
        ops = {node.op for node in graph.as_graph_def().node}
        assert ("LegacyLstmSeqForward" in ops) == bool(fast_lstm.OPTIONS["native"])
    rng = np.random.RandomState(2)
    feed = {t["x"]: rng.randn(batch, steps, depth).astype(np.float32)}
    for tensor in t["initial"]:  # carried state: a non-zero initial state is fed
        feed[tensor] = rng.randn(*tensor.shape.as_list()).astype(np.float32) * 0.5
    if keep == "tensor":
        feed[t["keep_prob"]] = keep_value
    config = tf1.ConfigProto(intra_op_parallelism_threads=threads) if threads else None
    with tf1.Session(graph=graph, config=config) as sess:
        sess.run(t["init"])
        names = [(v.name, v.shape.as_list()) for v in t["variables"]]
        values = sess.run(t["variables"])
        results = [sess.run([t["out"], t["final"], t["grads"]], feed) for _ in range(runs)]
    return names, values, results


def _assert_close(ours, ref, what):
    """Within TOL, absolute for arrays of magnitude <= 1, else relative to the array's largest magnitude: a
    gradient summed over all steps reaches ~50 here, where one float32 rounding step is already 4e-6 and the
    two paths sum in different orders."""
    for a, b in zip(tf.nest.flatten(ours), tf.nest.flatten(ref)):
        assert np.asarray(a).shape == np.asarray(b).shape, what
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL * max(1.0, np.abs(b).max()), err_msg=what)


def _compare(style, units, **kwargs):
    names_b, values_b, runs_b = _run("basic", style, units, **kwargs)
    names_f, values_f, runs_f = _run("fused", style, units, **kwargs)
    assert names_f == names_b
    for a, b in zip(values_f, values_b):  # the same seeded initial weights
        np.testing.assert_array_equal(a, b)
    for k, (ours, ref) in enumerate(zip(runs_f, runs_b)):
        _assert_close(ours[0], ref[0], f"outputs, run {k}")
        _assert_close(ours[1], ref[1], f"final states, run {k}")
        _assert_close(ours[2], ref[2], f"gradients (inputs, initial state, weights), run {k}")
    return runs_f


# --- equality with basic -------------------------------------------------------------------------------------
def test_stocktwits_shaped_stack_equals_basic_without_dropout():
    runs = _compare("stocktwits", (16, 8), depth=12, batch=4, steps=40, keep="tensor", keep_value=1.0)
    assert np.abs(runs[0][2][0]).max() > 1e-3  # the input gradient is not trivially zero


@pytest.mark.parametrize("options", [{"backward": "op", "xla": False, "chunks": 1},
                                     {"backward": "tf", "xla": False, "chunks": 1},
                                     {"backward": "tf", "xla": True, "chunks": 1},
                                     {"backward": "op", "xla": False, "chunks": 2},
                                     {"backward": "tf", "xla": True, "chunks": 2},
                                     {"backward": "op", "xla": False, "chunks": 1, "transposed_wh": False},
                                     {"native": True}],
                         ids=["grad_op", "tf_ops", "xla", "grad_op_2_chunks", "xla_2_chunks", "transpose_b", "native"])
def test_stocktwits_shaped_stack_equals_basic_with_the_same_seeded_dropout_masks(options, monkeypatch):
    if options.get("native"):
        need_native_ops()
    for key, value in options.items():
        monkeypatch.setitem(fast_lstm.OPTIONS, key, value)
    # two session runs: the second draws the next masks of the same streams
    runs = _compare("stocktwits", (16, 8), depth=12, batch=4, steps=40, keep="tensor", keep_value=0.6, runs=2)
    out = runs[0][0]
    assert 0.2 < np.mean(out == 0) < 0.6  # dropout acted (h is never exactly 0 otherwise)
    assert not np.array_equal(runs[0][0] == 0, runs[1][0] == 0)


@pytest.mark.parametrize("transposed", [True, False])
def test_transposed_wh_takes_the_per_step_product_off_transpose_b(transposed, monkeypatch):
    """OPTIONS["transposed_wh"]: the backward loop multiplies by a copy of W_h transposed once (no MatMul with
    transpose_b inside any loop body); off, it is the transpose_b product of before."""
    monkeypatch.setitem(fast_lstm.OPTIONS, "transposed_wh", transposed)
    graph, t = _build("fused", "stocktwits", (16, 8), 12, 4, 5, False, None)
    in_loops = [node for function in graph.as_graph_def().library.function for node in function.node_def
                if node.op == "MatMul"]
    backward = [node for node in in_loops if node.attr["transpose_b"].b]
    assert len(in_loops) == 4  # per layer: h x W_h forward, dz x W_h^T backward
    assert len(backward) == (0 if transposed else 2)


@pytest.fixture(params=[False, True], ids=["loops", "native"])
def native(request, monkeypatch):
    """Both ways fused runs its per-step recurrence: TF while loops, and the native ops."""
    if request.param:
        need_native_ops()
    monkeypatch.setitem(fast_lstm.OPTIONS, "native", request.param)
    return request.param


@pytest.mark.parametrize("batch", [6, 1])
def test_native_ops_split_wide_layers_over_the_threads_and_still_equal_basic(batch, monkeypatch):
    """The native ops replace both loops (no while loop is left but the dropout draws'), and layers wide enough to
    be split by blocks of units over 4 intra-op threads (100 units: blocks of 48, 48 and a ragged 4; 80: 48 and 32;
    24: one block) give basic's outputs, final states and gradients, with dropout and a non-zero initial state."""
    need_native_ops()
    monkeypatch.setitem(fast_lstm.OPTIONS, "native", True)
    units = (100, 80, 24)
    graph, _ = _build("fused", "stocktwits", units, 20, batch, 9, False, "tensor")
    ops = [node.op for node in graph.as_graph_def().node]
    assert ops.count("LegacyLstmSeqForward") == 3 and ops.count("LegacyLstmSeqBackward") == 3
    loops = {m.group(1) for node in graph.as_graph_def().node for m in [re.match(r"(.*?/while(_\d+)?)/", node.name)]
             if m}
    assert loops == {"Model/rnn/while"}, loops  # only the dropout draws' loop (the loops path: 7 loops here)
    runs = _compare("stocktwits", units, depth=20, batch=batch, steps=9, keep="tensor", keep_value=0.7, threads=4)
    assert 0.1 < np.mean(runs[0][0] == 0) < 0.5


@pytest.mark.parametrize("tied", [False, True])
def test_thomas_shaped_stack_equals_lstmcell(tied, native):
    _compare("thomas", (10, 10), depth=10, batch=3, steps=12, tied=tied, keep=0.5)


@pytest.mark.parametrize("tied", [False, True])
def test_official_ptb_unroll_equals_basic(tied, native):
    _compare("official", (10, 10), depth=10, batch=3, steps=7, tied=tied, keep=0.5)


def test_official_ptb_unroll_equals_basic_without_dropout(native):
    _compare("official", (10, 10), depth=7, batch=2, steps=5)


def test_tied_layers_hold_one_weight_set():
    names, _, _ = _run("fused", "thomas", (10, 10), depth=10, tied=True)
    assert names == [("Model/rnn/multi_rnn_cell/cell_0/lstm_cell/kernel:0", [20, 40]),
                     ("Model/rnn/multi_rnn_cell/cell_0/lstm_cell/bias:0", [40])]


def test_dropout_mask_is_fresh_per_step_with_the_keep_probability():
    graph, t = _build("fused", "stocktwits", (64,), 8, 32, 50, keep="tensor", seed=None)
    with tf1.Session(graph=graph) as sess:
        sess.run(t["init"])
        feed = {t["x"]: np.ones((32, 50, 8), np.float32), t["keep_prob"]: 0.7,
                **{s: np.zeros(s.shape.as_list(), np.float32) for s in t["initial"]}}
        out = sess.run(t["out"], feed)
    dropped = out == 0
    assert abs(dropped.mean() - 0.3) < 0.02
    # the same inputs at every step: only a fresh mask per step makes the patterns differ
    assert np.mean(dropped[:, 20] != dropped[:, 21]) > 0.3
    kept = out[~dropped]
    assert np.all(np.abs(kept) > 0)


def test_unsupported_cells_are_refused_clearly():
    with tf.Graph().as_default():
        x = tf.zeros([2, 3, 4])
        stack = tf1.nn.rnn_cell.MultiRNNCell([tf1.nn.rnn_cell.GRUCell(3)])
        with pytest.raises(ValueError, match="BasicLSTMCell or LSTMCell"):
            fast_lstm.dynamic_rnn(stack, x, initial_state=stack.zero_state(2, tf.float32))
        cell = tf1.nn.rnn_cell.DropoutWrapper(tf1.nn.rnn_cell.BasicLSTMCell(3), input_keep_prob=0.5)
        with pytest.raises(ValueError, match="input_keep_prob"):
            fast_lstm.dynamic_rnn(cell, x, initial_state=cell.zero_state(2, tf.float32))


# --- the apps ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return write_messages(tmp_path_factory.mktemp("st") / "StockTwits_SPY_Sentiment_2017.gz")


def test_stocktwits_seeded_fused_run_equals_basic(small_data, tmp_path, native):
    curves = {cell: stocktwits.train(small_data, tmp_path / cell, SMALL, QUICK, split_seed=3, seed=7, cell=cell,
                                     log=_quiet)["curve"] for cell in ("basic", "fused")}
    for ours, ref in zip(curves["fused"], curves["basic"]):
        assert ours["train_loss"] == pytest.approx(ref["train_loss"], abs=1e-5)
        assert ours["val_acc"] == pytest.approx(ref["val_acc"], abs=1e-3)
    assert json.loads((tmp_path / "fused" / "manifest.json").read_text())["cell"] == "fused"


def test_a_basic_checkpoint_restores_under_fused(small_data, tmp_path):
    stocktwits.train(small_data, tmp_path, SMALL, QUICK, split_seed=3, seed=7, log=_quiet)
    checkpoint = tf1.train.latest_checkpoint(str(tmp_path))
    vocab_size = json.loads((tmp_path / "manifest.json").read_text())["vocab_size"]
    ids = np.random.RandomState(0).randint(0, vocab_size, (SMALL.batch_size, 12))
    predictions = {}
    for cell in ("basic", "fused"):
        with tf.Graph().as_default():
            model = stocktwits.build_graph(vocab_size, SMALL, cell=cell)
            with tf1.Session() as sess:
                tf1.train.Saver().restore(sess, checkpoint)
                feed = {model.inputs: ids, model.keep_prob: 1.0,
                        **dict(zip(tf.nest.flatten(model.initial_state),
                                   tf.nest.flatten(stocktwits.zero_state_value(model))))}
                predictions[cell] = sess.run(model.predictions, feed)
    np.testing.assert_allclose(predictions["fused"], predictions["basic"], atol=1e-6)
    assert predictions["basic"].std() > 0


def test_golden_curve_of_test_preset_with_fused(stocktwits_path, tmp_path):
    golden = json.loads(GOLDEN.read_text())
    result = stocktwits.train(stocktwits_path, tmp_path, "test", split_seed=golden.get("split_seed", golden["seed"]),
                              seed=golden["seed"], cell="fused", log=_quiet)
    assert len(result["curve"]) == len(golden["curve"])
    for ours, ref in zip(result["curve"], golden["curve"]):
        assert ours["train_loss"] == pytest.approx(ref["train_loss"], abs=1e-5)
        assert ours["epoch_train_loss"] == pytest.approx(ref["epoch_train_loss"], abs=1e-5)
        assert ours["train_acc"] == pytest.approx(ref["train_acc"], abs=1e-3)
        assert ours["val_acc"] == pytest.approx(ref["val_acc"], abs=1e-3)


@pytest.mark.parametrize("app", ["official", "thomas"])
def test_ptb_seeded_fused_run_equals_basic(app, tmp_path, native):
    """Official (small preset shrunk, with dropout) and Thomas (tied layers, dropout 0.5): a seeded fused run
    follows the basic one (same initial weights, same dropout draws)."""
    corpus = write_corpus(tmp_path)
    curves = {}
    for mode in ("basic", "fused"):
        if app == "official":
            config = dataclasses.replace(TINY, keep_prob=0.6, rnn_mode=mode)
            result = ptb.train(corpus, tmp_path / mode, config, seed=3, log=_quiet)
        else:
            config = dataclasses.replace(TINY_THOMAS, epochs=2, rnn_mode=mode)
            assert config.tie_layers and config.keep_prob < 1
            result = ptb_thomas.train(corpus, tmp_path / mode, config, seed=3, log=_quiet)
        curves[mode] = result["curve"]
    assert len(curves["fused"]) == len(curves["basic"]) == 2
    for ours, ref in zip(curves["fused"], curves["basic"]):
        for column, value in ref.items():
            if isinstance(value, float) and "second" not in column and "time" not in column:
                assert ours[column] == pytest.approx(value, rel=1e-5), column
    # the checkpoint's cell is fused either way; each row records the path that trained it
    assert json.loads((tmp_path / "fused" / "manifest.json").read_text())["cell"] == "fused"
    assert [r["cell"] for r in curves["basic"]] == ["basic"] * 2
    assert [r["cell"] for r in curves["fused"]] == [fast_lstm.NATIVE_PATH if native else "fused"] * 2



def test_paired_benchmark_alternates_which_setting_runs_first_and_pairs_the_ratios(monkeypatch):
    """The pairing of scripts/fused_ab.py and benchmark.py --paired: warm-up, then A B, B A, A B ...; ratio k is
    A's k-th time over B's k-th. A fake clock advances 1 per step, 3 in B's second timed step."""
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
    import benchmark
    now, order = [0.0], []

    def step(name):
        order.append(name)
        now[0] += 3.0 if name == "b" and order.count("b") == 3 else 1.0  # B's 2nd timed step (1 warm-up)
    monkeypatch.setattr(benchmark, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))  # its clock only
    a, b, ratios = benchmark.paired([lambda: step("a"), lambda: step("b")], pairs=3, warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert a == [1, 1, 1] and b == [1, 3, 1] and ratios == [1, 1 / 3, 1]


def test_native_ops_build_failures_say_why(tmp_path, monkeypatch):
    """No compiler, or a compiler that fails: NativeOpsUnavailable naming the cause (the compiler's error lines);
    nothing half-written is left in the cache."""
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(native_ops.NativeOpsUnavailable, match="no C.. compiler .'no-such-compiler-here'"):
        native_ops.build(cache=tmp_path)
    failing = tmp_path / "failing-cxx"
    failing.write_text("#!/bin/sh\necho 'lstm_seq.cc:1:1: error: this compiler refuses' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CXX", str(failing))
    with pytest.raises(native_ops.NativeOpsUnavailable, match="error: this compiler refuses"):
        native_ops.build(cache=tmp_path)
    assert list((tmp_path / "native").iterdir()) == []


def _fake_compiler(path, body):
    """A stand-in for $CXX: a shell script that logs its arguments to <path>.args, then runs ``body``
    (``$out`` is the file after -o)."""
    path.write_text(f'#!/bin/sh\necho "$@" >> {path}.args\nout=""; prev=""\n'
                    f'for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done\n{body}\n')
    path.chmod(0o755)
    return path


def test_native_ops_build_takes_a_compiler_command_with_arguments(tmp_path, monkeypatch):
    """$CXX with arguments of its own (``ccache g++``, ``g++ -v``...) is run as that command, not looked up as one
    file name; the build's library lands in the cache."""
    fake = _fake_compiler(tmp_path / "cxx", 'echo built > "$out"')
    monkeypatch.setenv("CXX", f"{fake} --wrapper-arg")
    target = native_ops.build(cache=tmp_path)
    assert target.read_text() == "built\n" and target.parent == tmp_path / "native"
    calls = pathlib.Path(f"{fake}.args").read_text().splitlines()
    assert calls and all(call.startswith("--wrapper-arg ") for call in calls)
    assert any(str(native_ops.SOURCE) in call for call in calls)


def test_native_ops_build_is_stopped_after_its_timeout(tmp_path, monkeypatch):
    """A compiler that hangs is stopped after BUILD_TIMEOUT seconds, with what it printed so far: the compiler and
    the processes it started (here a `sleep` standing for cc1plus), so none of them goes on using the cores or
    writing into the cache; nothing is left there."""
    marker = tmp_path / "child-still-ran"
    body = (f'case "$*" in *-E*) exit 0;; esac; echo "cc1plus: still compiling" >&2; '
            f'(sleep 3; touch {marker}) & wait')
    monkeypatch.setenv("CXX", str(_fake_compiler(tmp_path / "cxx", body)))
    monkeypatch.setattr(native_ops, "BUILD_TIMEOUT", 1)
    t = time.perf_counter()
    with pytest.raises(native_ops.NativeOpsUnavailable, match="(?s)took longer than 1 s.*cc1plus: still compiling"):
        native_ops.build(cache=tmp_path)
    assert time.perf_counter() - t < 20
    assert list((tmp_path / "native").iterdir()) == []
    time.sleep(4)  # the child would have touched the marker by now had it survived
    assert not marker.exists()


def test_native_ops_a_cxx_that_cannot_be_split_says_so(monkeypatch):
    monkeypatch.setenv("CXX", "g++ '-O2")
    with pytest.raises(native_ops.NativeOpsUnavailable, match="CXX .* cannot be split into a command"):
        native_ops.build()


def test_native_ops_build_removes_stale_builds_only(tmp_path, monkeypatch):
    """After a build, other builds not used for STALE_DAYS days go (an old source or TensorFlow); a recent one (another
    machine's sharing the cache) and unrelated files stay."""
    folder = tmp_path / "native"
    folder.mkdir()
    old_time = time.time() - (native_ops.STALE_DAYS + 1) * 86400
    stale, recent, other = folder / "lstm_seq-0000000000000000.so", folder / "lstm_seq-1111111111111111.so", \
        folder / "notes.txt"
    for f in (stale, recent, other):
        f.write_text("x")
    os.utime(stale, (old_time, old_time))
    os.utime(other, (old_time, old_time))
    monkeypatch.setenv("CXX", str(_fake_compiler(tmp_path / "cxx", 'echo built > "$out"')))
    target = native_ops.build(cache=tmp_path)
    assert sorted(folder.iterdir()) == sorted([target, recent, other])
