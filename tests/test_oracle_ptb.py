"""The PTB port against TF 1.15 itself: fixtures in tests/tf1_oracle/ptb_* written by scripts/tf1_oracle/ptb.py.

- ptb_reader: our reader (legacy_lstm/data/ptb.py) gives the same words, vocabulary and ids as TF 1.15's reader.py on
  a tiny corpus with its quirks (a word fused with <eos>, a tab, CRLF, a non-ASCII word, out-of-vocabulary words), and
  our queue producer (run under ``queue_runners`` as the app does) the same (x, y) batches as ``ptb_producer``, past
  the epoch's end.
- ptb_official_{basic,block}: our ``official_graph`` + ``eval_model`` (legacy_lstm/ptb.py; Train, Valid, Test in
  one "Model" scope), restored from TF 1.15's initial checkpoint by name, driven by our ``PTBModel.stepper``,
  ``assign_lr``, ``run_epoch`` and ``Config.learning_rate_at`` for two epochs of two producer steps: the same costs,
  final states, learning rates, train/valid/test perplexities, global step and trained weights.
- ptb_thomas: our Thomas ``Input``/``Model`` (legacy_lstm/ptb_thomas.py; one cell object in both layers), driven by
  our ``thomas_epoch`` with the state fed back through ``init_state``: the same costs, accuracies, states, and
  trained weights.

Each model case also checks that our graph's own initialisation draws from the same ranges as TF 1.15's (init_scale,
Glorot kernels, zero biases), since restoring the initial checkpoint hides the initializers.
"""

import dataclasses

import numpy as np
import pytest

from legacy_lstm.compat import seed_everything, tf, tf1
from legacy_lstm.data import ptb as ptb_data
# every name this file uses from the PTB app modules, in one place
from legacy_lstm.ptb import PRESETS, PTBInput, eval_model, official_graph, run_epoch
from legacy_lstm.ptb_thomas import PRESETS as THOMAS_PRESETS
from legacy_lstm.ptb_thomas import Input, Model, thomas_epoch

from oracle import INIT, TRAINED, Case, assert_variables_close, restore_by_name, variable_diffs

# Measured (TF 2.21 vs TF 1.15.5, this machine), float32 rounding of the same ops in another order: trained weights
# differ by at most 1.2e-7 (official basic), 6e-8 (block), 4.8e-7 (Thomas: 20 steps, gradient norms up to 24);
# final states by 3e-8 / 2e-8 / 7.2e-7; costs by 6e-8 relative (basic: bit-equal); perplexities by 4.4e-7
# relative (part of it the float32 sum of run_epoch, see the last test). The smallest mutation tried moves them
# by orders of magnitude more.
WEIGHT_ATOL = 5e-6
STATE_ATOL = 5e-6
COST_RTOL = 1e-6
PPL_RTOL = 2e-6
# Our freshly initialised variables against TF 1.15's: the largest |value| of each variable within this ratio
# (the same distribution bound drawn by other random streams; init_scale x2 or Glorot-vs-uniform are far outside).
INIT_RANGE_RATIO = 1.25


def _flat_to_layers(flat, num_layers):
    """[c0, h0, c1, h1, ...] -> [layers, 2, batch, hidden]."""
    return np.stack([np.stack([flat[2 * k], flat[2 * k + 1]]) for k in range(num_layers)])


def _fresh_values(sess):
    variables = sess.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
    return sess.run({v.op.name: v for v in variables})


def _init_range_mismatches(ours, theirs):
    """Variables whose initial values differ in kind: zero in one only, or max |value| beyond INIT_RANGE_RATIO."""
    bad = []
    for name, want in sorted(theirs.items()):
        a, b = float(np.max(np.abs(ours[name]))), float(np.max(np.abs(want)))
        if (a == 0.0) != (b == 0.0) or (b and not 1 / INIT_RANGE_RATIO <= a / b <= INIT_RANGE_RATIO):
            bad.append(f"{name}: ours max|w| {a:.4g}, TF 1.15's {b:.4g}")
    return bad


# ---------------------------------------------------------------------------------------------------------
# Reader and producer
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reader_case():
    return Case("ptb_reader")


def _corpus(case):
    return tuple(case.dir / f"ptb.{name}.txt" for name in ("train", "valid", "test"))


def test_reader_words_vocabulary_and_ids_equal_tf1(reader_case):
    train, valid, test = _corpus(reader_case)
    assert ptb_data.read_words(train) == reader_case["train_words"].tolist()
    word_to_id = ptb_data.build_vocab(train)
    assert sorted(word_to_id, key=word_to_id.get) == reader_case["vocab"].tolist()
    assert sorted(word_to_id.values()) == list(range(len(word_to_id)))
    ids = ptb_data.load_raw(train, valid, test)
    for got, key in zip(ids, ("train_ids", "valid_ids", "test_ids")):
        assert got == reader_case[key].tolist(), key
    assert ids[3] == word_to_id
    for path, key in zip((train, valid, test), ("train_ids", "valid_ids", "test_ids")):
        assert ptb_data.file_to_word_ids(path, word_to_id) == reader_case[key].tolist()
    # the corpus does exercise the quirks
    assert "rose<eos>" in word_to_id and "caf\u00e9" in word_to_id and "zebra" not in word_to_id


@pytest.mark.parametrize("key", sorted(Case("ptb_reader").meta["producer"]))
def test_producer_batches_equal_tf1_across_the_epoch_end(reader_case, key):
    spec = reader_case.meta["producer"][key]
    batch_size, num_steps, n = spec["batch_size"], spec["num_steps"], spec["batches"]
    train = reader_case["train_ids"].tolist()
    graph = tf.Graph()
    with graph.as_default():
        x, y, epoch_size = ptb_data.batch_producer(train, batch_size, num_steps)
        thomas_input = Input(batch_size, num_steps, train)  # Thomas's Input: the same producer, its own epoch_size
        assert epoch_size == thomas_input.epoch_size == int(reader_case[f"epoch_size_{key}"]) == spec["epoch_size"]
        assert n > epoch_size
        with tf1.Session(graph=graph) as sess, ptb_data.queue_runners(sess):
            got = [sess.run([x, y]) for _ in range(n)]
            got_thomas = [sess.run([thomas_input.input_data, thomas_input.targets]) for _ in range(n)]
    for batches in (got, got_thomas):
        xs, ys = (np.stack(a) for a in zip(*batches))
        assert xs.dtype == reader_case[f"x_{key}"].dtype == np.int32
        np.testing.assert_array_equal(xs, reader_case[f"x_{key}"])
        np.testing.assert_array_equal(ys, reader_case[f"y_{key}"])


# ---------------------------------------------------------------------------------------------------------
# The official graph
# ---------------------------------------------------------------------------------------------------------
def _official_config(case, rnn_mode):
    """The small preset (forget_bias 0, distinct cells) at the case's sizes and schedule."""
    c = case.meta["config"]
    return dataclasses.replace(
        PRESETS["small"], init_scale=c["init_scale"], learning_rate=c["learning_rate"],
        max_grad_norm=c["max_grad_norm"], num_layers=c["num_layers"], num_steps=c["num_steps"],
        hidden_size=c["hidden_size"], epochs_at_initial_lr=c["max_epoch"], epochs=c["max_max_epoch"],
        keep_prob=c["keep_prob"], lr_decay=c["lr_decay"], batch_size=c["batch_size"], vocab_size=c["vocab_size"],
        rnn_mode=rnn_mode)


@pytest.fixture(scope="module", params=["basic", "block"])
def official(request):
    rnn_mode = request.param
    case = Case(f"ptb_official_{rnn_mode}")
    config = _official_config(case, rnn_mode)
    train, valid, test = (case[k].tolist() for k in ("train_ids", "valid_ids", "test_ids"))
    out = {"case": case, "config": config, "costs": [], "states": [], "lrs": [], "train_ppl": [], "valid_ppl": []}
    graph = tf.Graph()
    with graph.as_default():
        seed_everything(2017)
        m, mvalid = official_graph(config, train, valid)
        eval_config = dataclasses.replace(config, batch_size=1, num_steps=1)
        mtest = eval_model(eval_config, lambda: PTBInput(eval_config, test, name="TestInput"), reuse=True)
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            out["fresh"] = _fresh_values(sess)
            restore_by_name(sess, case.prefix(INIT))
            out["init_diffs"] = variable_diffs(sess, case.checkpoint_values(INIT))
            train_step = m.stepper(sess, m.train_op)

            def recording_step(*state):
                cost, final = train_step(*state)
                out["costs"].append(cost)
                out["states"].append(_flat_to_layers(final, config.num_layers))
                return cost, final
            recording_step.zero_state = train_step.zero_state
            valid_step, test_step = mvalid.stepper(sess), mtest.stepper(sess)
            graph.finalize()
            with ptb_data.queue_runners(sess):
                for i in range(config.epochs):
                    m.assign_lr(sess, config.learning_rate_at(i))
                    out["lrs"].append(sess.run(m.lr))
                    out["train_ppl"].append(run_epoch(recording_step, m.input.epoch_size, m.num_steps, m.batch_size))
                    out["valid_ppl"].append(run_epoch(valid_step, mvalid.input.epoch_size, mvalid.num_steps))
                out["test_ppl"] = run_epoch(test_step, mtest.input.epoch_size, mtest.num_steps)
            out["global_step"] = sess.run(tf1.train.get_global_step())
            out["trained_diffs"] = variable_diffs(sess, case.checkpoint_values(TRAINED))
            out["sess"] = sess
            yield out


def test_official_restores_tf1_checkpoint_by_name_exactly(official):
    assert max(official["init_diffs"].values()) == 0.0


def test_official_initialisation_draws_from_tf1_ranges(official):
    assert not _init_range_mismatches(official["fresh"], official["case"].checkpoint_values(INIT))


def test_official_trained_weights_equal_tf1(official):
    assert_variables_close(official["sess"], official["case"].checkpoint_values(TRAINED), atol=WEIGHT_ATOL)


def test_official_costs_states_and_learning_rates_equal_tf1(official):
    case = official["case"]
    assert len(official["costs"]) == case.meta["steps"]
    np.testing.assert_allclose(official["costs"], case["costs"], rtol=COST_RTOL, atol=0)
    np.testing.assert_allclose(np.stack(official["states"]), case["states"], rtol=0, atol=STATE_ATOL)
    np.testing.assert_array_equal(np.array(official["lrs"], np.float32), case["learning_rates"])
    assert official["global_step"] == int(case["global_step"])


def test_official_train_valid_and_test_perplexities_equal_tf1(official):
    case = official["case"]
    np.testing.assert_allclose(official["train_ppl"], case["train_perplexity"], rtol=PPL_RTOL, atol=0)
    np.testing.assert_allclose(official["valid_ppl"], case["valid_perplexity"], rtol=PPL_RTOL, atol=0)
    np.testing.assert_allclose(official["test_ppl"], case["test_perplexity"], rtol=PPL_RTOL, atol=0)


# ---------------------------------------------------------------------------------------------------------
# Thomas's graph
# ---------------------------------------------------------------------------------------------------------
def _thomas_config(case):
    """The thomas preset (tied layers, forget_bias 1, Glorot LSTM kernel, clip 5) at the case's sizes and schedule;
    print_iter 1 so that every step fetches the accuracy in its training run, as the fixture did."""
    c = case.meta["config"]
    return dataclasses.replace(
        THOMAS_PRESETS["thomas"], init_scale=c["init_scale"], learning_rate=c["learning_rate"],
        num_layers=c["num_layers"], num_steps=c["num_steps"], hidden_size=c["hidden_size"],
        epochs_at_initial_lr=c["max_lr_epoch"], epochs=c["num_epochs"], keep_prob=c["dropout"],
        lr_decay=c["lr_decay"], batch_size=c["batch_size"], vocab_size=c["vocab_size"], print_iter=1)


@pytest.fixture(scope="module")
def thomas():
    case = Case("ptb_thomas")
    config = _thomas_config(case)
    out = {"case": case, "config": config, "costs": [], "accs": [], "states": [], "lrs": [], "log": []}
    graph = tf.Graph()
    with graph.as_default():
        seed_everything(2017)
        training_input = Input(config.batch_size, config.num_steps, case["train_ids"].tolist())
        m = Model(training_input, True, config)
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            out["fresh"] = _fresh_values(sess)
            restore_by_name(sess, case.prefix(INIT))
            out["init_diffs"] = variable_diffs(sess, case.checkpoint_values(INIT))
            feeds = [m.init_state]
            step = sess.make_callable([m.cost, m.train_op, m.state_array], feed_list=feeds)
            step_print = sess.make_callable([m.cost, m.train_op, m.state_array, m.accuracy], feed_list=feeds)

            def recording_print(state):
                cost, op, new_state, acc = step_print(state)
                out["costs"].append(cost)
                out["accs"].append(acc)
                out["states"].append(new_state)
                return cost, op, new_state, acc
            graph.finalize()
            with ptb_data.queue_runners(sess):
                for epoch in range(config.epochs):
                    m.assign_lr(sess, config.learning_rate_at(epoch))
                    out["lrs"].append(sess.run(m.learning_rate))
                    thomas_epoch(step, recording_print, m.zero_state(config), training_input.epoch_size, epoch,
                                 config, log=out["log"].append)
            out["global_step"] = sess.run(tf1.train.get_global_step())
            out["trained_diffs"] = variable_diffs(sess, case.checkpoint_values(TRAINED))
            out["sess"] = sess
            yield out


def test_thomas_restores_tf1_checkpoint_by_name_exactly(thomas):
    # one kernel for both layers: TF 1.15 saved rnn/multi_rnn_cell/cell_0/lstm_cell/{kernel,bias} and no cell_1
    assert max(thomas["init_diffs"].values()) == 0.0
    assert not any("cell_1" in name for name in thomas["init_diffs"])


def test_thomas_initialisation_draws_from_tf1_ranges(thomas):
    assert not _init_range_mismatches(thomas["fresh"], thomas["case"].checkpoint_values(INIT))


def test_thomas_trained_weights_equal_tf1(thomas):
    assert_variables_close(thomas["sess"], thomas["case"].checkpoint_values(TRAINED), atol=WEIGHT_ATOL)


def test_thomas_costs_accuracies_states_equal_tf1(thomas):
    case = thomas["case"]
    assert len(thomas["costs"]) == case.meta["steps"] == len(thomas["log"])
    np.testing.assert_allclose(thomas["costs"], case["costs"], rtol=COST_RTOL, atol=0)
    np.testing.assert_array_equal(np.array(thomas["accs"], np.float32), case["accuracy"])
    np.testing.assert_allclose(np.stack(thomas["states"]), case["states"], rtol=0, atol=STATE_ATOL)
    np.testing.assert_array_equal(np.array(thomas["lrs"], np.float32), case["learning_rates"])
    assert thomas["global_step"] == int(case["global_step"])


# ---------------------------------------------------------------------------------------------------------
# The perplexity sum of run_epoch
# ---------------------------------------------------------------------------------------------------------
def test_run_epoch_sums_the_costs_in_float64_as_ptb_word_lm_did():
    """ptb_word_lm's ``costs += cost`` (``cost`` a numpy float32 from ``session.run``) was a float64 sum under the
    numpy of TF 1.x (1.18.5 beside TF 1.15.5: ``0.0 + np.float32(c)`` is a np.float64, as the oracle maker's run_epoch
    did). Under numpy >= 2 (NEP 50) the same line sums in float32. Over the 82,429 one-word steps of the PTB test set,
    with costs like PTB small's (mean 4.75 nats), the float32 sum moves the test perplexity by ~2e-5 relative
    (116.1256 instead of 116.1231): the printed "Test Perplexity: %.3f" changes."""
    rng = np.random.default_rng(0)
    costs = rng.gamma(4.0, 4.75 / 4.0, size=82429).astype(np.float32)
    stream = iter(costs)

    def step(*state):
        return next(stream), state
    step.zero_state = []
    total = 0.0
    for cost in costs:
        total += float(cost)  # what numpy 1.x did with the float32 cost
    assert run_epoch(step, len(costs), 1) == pytest.approx(float(np.exp(total / len(costs))), rel=1e-12, abs=0)
