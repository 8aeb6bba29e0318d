r"""PTB word language model: the official TF ``ptb_word_lm`` tutorial and its small, medium and large configs.

Source: tensorflow/models ``tutorials/rnn/ptb`` (``ptb_word_lm.py`` @086660f, the rnn_mode version, and
``reader.py``: legacy_lstm/data/ptb.py). Andy Thomas's tutorial, written from it, is the app
legacy_lstm/ptb_thomas.py (``python -m legacy_lstm.ptb --preset=thomas`` still works: it says so and runs it).

Reproduction contract
---------------------
Commands (each epoch is checkpointed; rerunning the same command resumes from the last finished epoch)::

    python -m legacy_lstm.ptb --preset=small --seed=2017      # 13 epochs, then "Test Perplexity: ..." (default preset)
    python -m legacy_lstm.ptb --preset=small --mode=test      # the test evaluation of the newest checkpoint
    python -m legacy_lstm.ptb --preset=medium --seed=2017     # 39 epochs (many hours on 2 CPU cores)
    python scripts/reproduce.py ptb --preset=small            # train + test + results/ptb-small.{json,png}

Published numbers (``legacy_lstm/published/ptb.json``) and the bands a reproduction must meet:

    ======  ==========================================  ===============================  ===========
    preset  metric                                      published (train/valid/test)     band
    ======  ==========================================  ===============================  ===========
    small   perplexity after 13 epochs (TF docstring)   37.99 / 121.39 / 115.91          valid ± 4, test ± 4
    medium  perplexity after 39 epochs                  48.45 / 86.16 / 82.07            test ± 3
    large   perplexity after 55 epochs                  37.87 / 82.62 / 78.29            test ± 3
    ======  ==========================================  ===============================  ===========

Also observed (tensorflow/models#2276, BLOCK on a Titan X): small 40.55/120.70/115.52, medium
45.68/86.97/83.47; #1057 (10 medium runs, TF 1.0): test 83.55-83.96. No per-epoch curve was published.

Presets (``--preset``)
    ======  ========  ==========  ====  ======  =====  ======  ====  ======  ======  ===========
    preset  graph     init_scale  clip  layers  steps  hidden  keep  decay   epochs  decay after
    ======  ========  ==========  ====  ======  =====  ======  ====  ======  ======  ===========
    small   official  0.1         5     2       20     200     1.0   0.5     13      4
    medium  official  0.05        5     2       35     650     0.5   0.8     39      6
    large   official  0.04        10    2       35     1500    0.35  1/1.15  55      14
    test    official  0.1         1     1       2      2       1.0   0.5     1       1
    ======  ========  ==========  ====  ======  =====  ======  ====  ======  ======  ===========

    All: batch 20, vocabulary 10,000, plain SGD from learning rate 1.0, per epoch
    ``1.0 * decay ** max(epoch_index + 1 - epochs_at_initial_lr, 0)``. Config fields and the original names:
    ``max_grad_norm`` (clip), ``epochs_at_initial_lr`` (``max_epoch``, "decay after"), ``epochs``
    (``max_max_epoch``), ``keep_prob``, ``lr_decay``, ``init_scale``.

The graph
    official  ``PTBModel`` as ptb_word_lm: Train / Valid / Test models built under name scopes Train, Valid,
              Test in one ``variable_scope("Model")`` (reuse for Valid/Test) with initializer
              uniform(±init_scale) for every variable (embedding, LSTM kernels, softmax; LSTM biases zero);
              distinct cells per layer, forget_bias 0; a static unroll in Python under ``variable_scope("RNN")``;
              state carried by feeding every layer's c and h (``run_epoch``); Valid with the train batch/steps;
              Test with batch 1 and 1 step (82,429 session runs). Prints ``Epoch: N Learning rate: ...``,
              ``Epoch: N Train Perplexity: ...``, ``Epoch: N Valid Perplexity: ...``, ``Test Perplexity: ...``.
              ``--rnn_mode``: block (the configs' default: TF1's LSTMBlockCell, here the raw op) or basic
              (BasicLSTMCell); the same function. Variable names as TF 1.x: ``Model/embedding``,
              ``Model/RNN/multi_rnn_cell/cell_<k>/{lstm_cell|basic_lstm_cell}/{kernel,bias}``,
              ``Model/softmax_w``, ``Model/softmax_b``, ``Model/global_step``.

Quirks of the original, reproduced by default, each switchable
    --tie_layers      one cell object in every layer (Thomas's quirk, see legacy_lstm/ptb_thomas.py), so the
                      layers share one weight set. Official presets: off (distinct cells).
    test protocol     official: the faithful Test model (batch 1, 1 step, 82,429 runs) by default; ``--fast_test``
                      evaluates the same sum with batch 1 and windows of ``FAST_TEST_STEPS`` steps, state carried,
                      the last window padded and masked: the same perplexity (tests prove it) in a fraction of
                      the time (small, measured by scripts/ptb_speed.py on this project's loaded 2-core
                      machine: 249 s faithful, 37 s fast; the committed reproduction's faithful test took 165 s).

Precision (the original's ``--use_fp16``)
    --use_fp16        ptb_word_lm's flag: ``data_type()`` float16 for the embedding, the LSTM, the softmax, the
                      initial state, the loss weights and so the whole computation and the gradients, applied by
                      plain SGD to float16 variables (no loss scaling, no float32 master weights), on the basic
                      and block cells. Off by default, as in the original.
    --precision       float32 (default) | float16 (= --use_fp16) | bfloat16 (ours: the same in bfloat16, basic cell
                      only: the LSTMBlockCell op has no bfloat16 kernel). Recorded in the manifest (``precision``);
                      the checkpoints hold variables of that dtype, so a run keeps its precision. The fused path
                      is float32 only. On a CPU without AVX512_BF16 bfloat16 is slower, not faster (docs/cells.md).
                      Nor does it reach the band: small in bfloat16, seed 2017, gave test perplexity 199.56
                      against 115.91 (results/ptb-small-bfloat16.json; plain SGD on bfloat16 weights rounds
                      small updates away).

Data: ``ptb/ptb.{train,valid,test}.txt`` (sha256 in legacy_lstm/data/download.py) in ``--data_dir`` (default
``$LEGACY_LSTM_DATA``, else ``~/.cache/legacy_lstm``), downloaded when missing and reachable. Reader and queue
producer: legacy_lstm/data/ptb.py.

Deliberate differences
    - Checkpoints: ``model.ckpt-<epoch>`` after every epoch with a manifest (resume, checked restore) instead of
      the Supervisor. No metagraph export/import round trip (multi-GPU plumbing).
    - ``--seed`` seeds Python, NumPy and TF (the static unroll makes the run deterministic); the original is
      unseeded.
    - A NaN loss stops training with a clear error; the last good checkpoint is kept.

Generation (not in the original)::

    python -m legacy_lstm.ptb --preset=small --mode=generate --prompt "the stock market" --num_words 20
    python -m legacy_lstm.ptb --preset=small --mode=generate --prompt "the" --decode=greedy
    python -m legacy_lstm.ptb --preset=small --mode=generate --prompt "the" --temperature=0.7   # sharper sampling

The prompt is lower-cased and split; words outside the vocabulary become ``<unk>`` (with a notice); ``<eos>``
is printed as a line break.
"""

import contextlib
import dataclasses
import os
import pathlib
import sys
import time

import numpy as np
from absl import app, flags

from legacy_lstm import cli
from legacy_lstm import distributed
from legacy_lstm import fast_lstm
from legacy_lstm import native_ops
from legacy_lstm import ptb_common as common
from legacy_lstm import ptb_thomas
from legacy_lstm import published
from legacy_lstm import report
from legacy_lstm import runs
from legacy_lstm import training
from legacy_lstm.compat import sequence_loss, tf, tf1
from legacy_lstm.data import ptb as ptb_data
from legacy_lstm.ptb_common import Config, FeedInput, make_multi_cell, prompt_ids  # noqa: F401 (the app's API)

APP = "ptb"
FAST_TEST_STEPS = 50


# ---------------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------------
PRESETS = {
    "small": Config(),
    "medium": Config(init_scale=0.05, num_steps=35, hidden_size=650, epochs_at_initial_lr=6, epochs=39,
                     keep_prob=0.5, lr_decay=0.8),
    "large": Config(init_scale=0.04, max_grad_norm=10.0, num_steps=35, hidden_size=1500, epochs_at_initial_lr=14,
                    epochs=55, keep_prob=0.35, lr_decay=1 / 1.15),
    "test": Config(max_grad_norm=1.0, num_layers=1, num_steps=2, hidden_size=2, epochs_at_initial_lr=1, epochs=1),
}
THOMAS_ALIAS = "thomas"  # --preset=thomas: Thomas's tutorial, now legacy_lstm.ptb_thomas


def published_numbers(preset):
    return published.load(APP)["presets"][preset]


def _check_style(config):
    if config.style != "official":
        raise ValueError(f"legacy_lstm.ptb trains the official graph, got style {config.style!r}: Thomas's "
                         "tutorial is legacy_lstm.ptb_thomas")


# ---------------------------------------------------------------------------------------------------------
# The official graph (ptb_word_lm.py)
# ---------------------------------------------------------------------------------------------------------
class PTBInput:
    """ptb_word_lm's PTBInput: batch/steps of ``config`` over ``data``, fed by the queue producer."""

    def __init__(self, config, data, name=None, batch_size=None, num_steps=None):
        self.batch_size = batch_size or config.batch_size
        self.num_steps = num_steps or config.num_steps
        self.input_data, self.targets, self.epoch_size = ptb_data.batch_producer(
            data, self.batch_size, self.num_steps, name=name)
        self.weights = None


class PTBModel:
    """ptb_word_lm's PTBModel (tensorflow/models @086660f): build it inside ``variable_scope("Model")``."""

    def __init__(self, is_training, config, input_):
        self.is_training = is_training
        self.input = input_
        self.batch_size, self.num_steps = input_.batch_size, input_.num_steps
        size, vocab = config.hidden_size, config.vocab_size
        dtype = config.dtype  # ptb_word_lm's data_type(): float32, or float16 with --use_fp16 (bfloat16: ours)
        with tf.device("/cpu:0"):
            embedding = tf1.get_variable("embedding", [vocab, size], dtype=dtype)
            inputs = tf.nn.embedding_lookup(embedding, input_.input_data)
        if is_training and config.keep_prob < 1:
            inputs = tf1.nn.dropout(inputs, config.keep_prob)
        cell = make_multi_cell(config, is_training)
        self.initial_state = cell.zero_state(self.batch_size, dtype)
        state = self.initial_state
        outputs = []
        with tf1.variable_scope("RNN"):
            if config.rnn_mode == "fused":  # this unroll's variables and dropout draws, run as one fused stack
                fused_output, state = fast_lstm.unrolled_rnn(cell, inputs, state)
                outputs.append(fused_output)  # [batch, steps, size]: reshaped below as the concat of the steps
            else:
                for time_step in range(self.num_steps):
                    if time_step > 0:
                        tf1.get_variable_scope().reuse_variables()
                    cell_output, state = cell(inputs[:, time_step, :], state)
                    outputs.append(cell_output)
        output = tf.reshape(tf.concat(outputs, 1), [-1, size])
        self.final_state = state
        softmax_w = tf1.get_variable("softmax_w", [size, vocab], dtype=dtype)
        softmax_b = tf1.get_variable("softmax_b", [vocab], dtype=dtype)
        logits = tf1.nn.xw_plus_b(output, softmax_w, softmax_b)
        self.logits = tf.reshape(logits, [self.batch_size, self.num_steps, vocab])
        weights = (tf.cast(input_.weights, dtype) if input_.weights is not None
                   else tf.ones([self.batch_size, self.num_steps], dtype))
        loss = sequence_loss(self.logits, input_.targets, weights, average_across_timesteps=False,
                             average_across_batch=True)
        self.cost = tf.reduce_sum(loss)
        if not is_training:
            return
        self.lr = tf.Variable(0.0, trainable=False)
        tvars = tf1.trainable_variables()
        grads, _ = tf.clip_by_global_norm(tf.gradients(self.cost, tvars), config.max_grad_norm)
        # distributed.optimizer: the optimizer itself in one process; replicated on a cluster
        optimizer = distributed.optimizer(tf1.train.GradientDescentOptimizer(self.lr))
        self.train_op = optimizer.apply_gradients(zip(grads, tvars),
                                                  global_step=tf1.train.get_or_create_global_step())
        self.new_lr = tf1.placeholder(tf.float32, shape=[], name="new_learning_rate")
        self.lr_update = tf1.assign(self.lr, self.new_lr)

    def assign_lr(self, session, lr_value):
        session.run(self.lr_update, feed_dict={self.new_lr: lr_value})

    def stepper(self, session, eval_op=None):
        """A callable ``step(*flat_state) -> (cost, flat_final_state)``: one session run that feeds every layer's
        c and h and fetches the cost and the final state (and runs ``eval_op``). Made once, before the graph
        is finalized; no per-step graph or feed_dict building."""
        flat_in = common.flat_state(self.initial_state)
        flat_out = common.flat_state(self.final_state)
        fetches = [self.cost] + flat_out + ([eval_op] if eval_op is not None else [])
        run = session.make_callable(fetches, feed_list=flat_in)
        n = len(flat_out)

        def step(*state):
            out = run(*state)
            return out[0], out[1:1 + n]
        step.zero_state = session.run(flat_in)
        return step


def official_graph(config, train_data, valid_data):
    """Train (queue over ``train_data``) and Valid models sharing variables, as ptb_word_lm's ``main``."""
    initializer = tf1.random_uniform_initializer(-config.init_scale, config.init_scale)
    with tf1.name_scope("Train"):
        train_input = PTBInput(config, train_data, name="TrainInput")
        with tf1.variable_scope("Model", reuse=None, initializer=initializer):
            m = PTBModel(True, config, train_input)
    with tf1.name_scope("Valid"):
        valid_input = PTBInput(config, valid_data, name="ValidInput")
        with tf1.variable_scope("Model", reuse=True, initializer=initializer):
            mvalid = PTBModel(False, config, valid_input)
    return m, mvalid


def eval_model(config, input_factory, name="Test", reuse=None):
    """An evaluation PTBModel in ``variable_scope("Model")`` on the input ``input_factory()`` builds."""
    initializer = tf1.random_uniform_initializer(-config.init_scale, config.init_scale)
    with tf1.name_scope(name):
        input_ = input_factory()
        with tf1.variable_scope("Model", reuse=reuse, initializer=initializer):
            return PTBModel(False, config, input_)


def run_epoch(step, epoch_size, num_steps, batch_size=1, verbose=False, log=print, carry_state=True, sitting=None):
    """ptb_word_lm's run_epoch on a ``PTBModel.stepper``: the state is carried from step to step; returns
    the perplexity exp(sum of costs / (epoch_size * num_steps)). ``carry_state=False`` restarts every step
    from zeros (not in the original; shows what the carried state is worth)."""
    start = time.time()
    costs = 0.0
    iters = 0
    state = step.zero_state
    report_every = max(1, epoch_size // 10)
    steps = range(epoch_size)
    if sitting:  # one process: every step; a cluster worker: its steps over its own piece of the data
        epoch_size, steps = sitting.share(epoch_size, steps, split=False)
    with sitting.batches(epoch_size) if sitting else contextlib.nullcontext():
        for i in steps:
            cost, final = step(*(state if carry_state else step.zero_state))
            training.check_finite(cost, f"step {i}")
            if sitting:
                sitting.tick()
            state = final
            # float(): ptb_word_lm summed in float64 (numpy 1.x promoted ``0.0 + float32`` to float64); numpy 2 keeps
            # float32, whose rounding over the 82,429 test steps moves the printed perplexity in the 3rd decimal
            costs += float(cost)
            iters += num_steps
            if verbose and i % report_every == 10:
                log("%.3f perplexity: %.3f speed: %.0f wps" % (
                    i * 1.0 / epoch_size, np.exp(costs / iters), iters * batch_size / (time.time() - start)))
    return float(np.exp(costs / iters))


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------
def train(paths, run_dir, preset="small", seed=None, max_epochs=None, rnn_mode=None, tie_layers=None, log=print,
          progress=False, cluster=None, precision=None):
    """Train (resuming from ``run_dir``, with the run's own seed); ``paths`` = (train, valid, test) files.
    Returns {"curve", "run_dir", "seed", "finished", "seconds", "config"}. ``max_epochs`` counts epochs in
    total. ``cluster``: a worker task's ``legacy_lstm.distributed.Cluster`` (None: one process); the worker
    trains on its contiguous piece of the training text. ``precision``: float32 (None: the preset's), float16
    (ptb_word_lm's --use_fp16) or bfloat16."""
    preset_name, config = common.resolve_config(PRESETS, preset, rnn_mode=rnn_mode, tie_layers=tie_layers,
                                                precision=precision)
    _check_style(config)
    cli.epochs_to_run(config.epochs, max_epochs)  # a usage error before any data is read
    train_data, valid_data, _, word_to_id = common.load(paths, config)
    saved = distributed.saved_manifest(run_dir, cluster, log)  # a worker: the chief's
    seed = training.resolve_seed(saved, seed)
    config = common.resume_on(config, saved)  # a block/basic run may resume on fused (and back): same variables
    manifest = common.make_manifest(APP, preset_name, config, word_to_id, seed, len(train_data))
    if cluster is not None:
        train_data = cluster.shard_tokens(train_data)
    result = training.train(_OfficialLoop(config, train_data, valid_data), run_dir, manifest, config.epochs,
                            max_epochs, seed, vocab=word_to_id, log=log, progress=progress, cluster=cluster)
    result["config"] = config
    return result


class _OfficialLoop(training.Loop):
    session_config = common.SESSION_CONFIG

    def __init__(self, config, train_data, valid_data):
        self.config, self.train_data, self.valid_data = config, train_data, valid_data

    def build(self):
        return official_graph(self.config, self.train_data, self.valid_data)

    def start(self, sitting):
        m, mvalid = sitting.model
        self.train_step = m.stepper(sitting.sess, m.train_op)
        self.valid_step = mvalid.stepper(sitting.sess)
        self.lr_feed = sitting.sess.make_callable(m.lr_update, feed_list=[m.new_lr])

    def context(self, sitting):
        return ptb_data.queue_runners(sitting.sess)

    def epoch(self, sitting, epoch):
        m, mvalid = sitting.model
        log = sitting.log
        t0 = time.time()
        self.lr_feed(self.config.learning_rate_at(epoch - 1))
        lr = float(sitting.sess.run(m.lr))
        log("Epoch: %d Learning rate: %.3f" % (epoch, lr))
        train_ppl = run_epoch(self.train_step, m.input.epoch_size, m.num_steps, m.batch_size, verbose=True, log=log,
                              sitting=sitting)
        log("Epoch: %d Train Perplexity: %.3f" % (epoch, train_ppl))
        train_seconds = time.time() - t0
        valid_ppl = run_epoch(self.valid_step, mvalid.input.epoch_size, mvalid.num_steps)
        log("Epoch: %d Valid Perplexity: %.3f" % (epoch, valid_ppl))
        return {"epoch": epoch, "learning_rate": lr, "train_perplexity": train_ppl, "valid_perplexity": valid_ppl,
                "seconds": round(time.time() - t0, 3),
                "seconds_per_train_step": round(train_seconds / m.input.epoch_size, 5),
                "cell": fast_lstm.path_name(self.config.rnn_mode)}  # the path that trained this epoch

    def summaries(self, row):
        return {"train": {"perplexity": row["train_perplexity"], "learning_rate": row["learning_rate"]},
                "validation": {"perplexity": row["valid_perplexity"]}}


# ---------------------------------------------------------------------------------------------------------
# Test
# ---------------------------------------------------------------------------------------------------------
def load_run(run_dir):
    """(config, word_to_id, manifest) saved with the run in ``run_dir``."""
    opened = training.open_run(run_dir, APP)
    config = Config(**opened.manifest["config"])
    _check_style(config)  # test and generate build the official graph
    return config, opened.vocab, opened.manifest


def fast_test_windows(data, num_steps):
    """(x, y, weights) windows of batch 1 covering all len(data)-1 predictions; the last one zero-padded with
    weight 0 where it runs past the data. float weights [n, 1, num_steps]."""
    data = np.asarray(data, dtype=np.int32)
    n_pred = len(data) - 1
    n_win = -(-n_pred // num_steps)
    x = np.zeros((n_win * num_steps,), np.int32)
    y = np.zeros((n_win * num_steps,), np.int32)
    w = np.zeros((n_win * num_steps,), np.float32)
    x[:n_pred], y[:n_pred], w[:n_pred] = data[:-1], data[1:], 1.0
    shape = (n_win, 1, num_steps)
    return x.reshape(shape), y.reshape(shape), w.reshape(shape)


def evaluate_official(sess, model, step, data=None, fast=False):
    """Test perplexity: the faithful producer model (``fast=False``: batch 1, 1 step, every window) or the
    fast placeholder model over ``fast_test_windows(data)``, the same sum of costs over the same words."""
    if not fast:
        with ptb_data.queue_runners(sess):
            return run_epoch(step, model.input.epoch_size, model.num_steps)
    x, y, w = fast_test_windows(data, model.num_steps)
    costs, state = 0.0, step.zero_state
    for k in range(len(x)):
        cost, state = step(x[k], y[k], w[k], *state)
        costs += float(cost)  # in float64, as run_epoch
    return float(np.exp(costs / float(w.sum())))


def _fast_stepper(sess, model):
    flat_in = common.flat_state(model.initial_state)
    flat_out = common.flat_state(model.final_state)
    inp = model.input
    run = sess.make_callable([model.cost] + flat_out, feed_list=[inp.input_data, inp.targets, inp.weights] + flat_in)

    def step(x, y, w, *state):
        out = run(x, y, w, *state)
        return out[0], out[1:]
    step.zero_state = sess.run(flat_in)
    return step


def test(paths, run_dir, checkpoint=None, fast=False, log=print):
    """Evaluate a trained run on the test set; writes ``run_dir/report.json`` and returns the report
    {"test_perplexity", "protocol", ...}."""
    config, word_to_id, manifest = load_run(run_dir)
    train_data, _, test_data, data_vocab = common.load(paths, config)
    common.check_vocab(data_vocab, word_to_id, run_dir)
    start = time.time()
    graph = tf.Graph()
    with graph.as_default():
        report = _test_official(graph, config, manifest, test_data, run_dir, checkpoint, fast, log)
    return common.write_report(report, APP, manifest, run_dir, start)


def _test_official(graph, config, manifest, test_data, run_dir, checkpoint, fast, log):
    if fast:
        model = eval_model(config, lambda: FeedInput(1, FAST_TEST_STEPS))
    else:
        eval_config = dataclasses.replace(config, batch_size=1, num_steps=1)
        model = eval_model(eval_config, lambda: PTBInput(eval_config, test_data, name="TestInput"))
    run = runs.Run(run_dir, manifest)
    with common.session(graph) as sess:
        path = run.restore(sess, checkpoint)
        log(f"Restored {path}")
        step = _fast_stepper(sess, model) if fast else model.stepper(sess)
        graph.finalize()
        test_ppl = evaluate_official(sess, model, step, test_data, fast=fast)
    log("Test Perplexity: %.3f" % test_ppl)
    return {"checkpoint": path, "test_perplexity": test_ppl, "protocol": test_protocol(fast),
            "checkpoint_sha256": common.checkpoint_files(path)}  # what a later report may reuse (recorded_test)


def test_protocol(fast):
    """The name of the official test's protocol, as its report records it."""
    return f"batch 1, {FAST_TEST_STEPS}-step windows (fast)" if fast else "batch 1, 1 step (original)"


# ---------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------
class Generator(common.Generator):
    """A trained model of ``run_dir`` with batch 1 and 1 step, state carried; use as a context manager."""

    def __init__(self, run_dir, checkpoint=None):
        config, self.word_to_id, manifest = load_run(run_dir)
        self.reverse = {i: w for w, i in self.word_to_id.items()}
        self.config = dataclasses.replace(config, batch_size=1, num_steps=1)
        self.graph = tf.Graph()
        with self.graph.as_default():
            feed = FeedInput(1, 1)
            model = eval_model(self.config, lambda: feed, name="Generate")
            self.sess = common.session(self.graph)
            self.checkpoint = runs.Run(run_dir, manifest).restore(self.sess, checkpoint)
            flat_in, flat_out = common.flat_state(model.initial_state), common.flat_state(model.final_state)
            fn = self.sess.make_callable([model.logits] + flat_out, feed_list=[feed.input_data] + flat_in)
            self._zero = self.sess.run(flat_in)

            def step(x, state):
                out = fn(x, *state)
                return out[0], out[1:]
            self._step = step
        self.graph.finalize()


# ---------------------------------------------------------------------------------------------------------
# Reproduction (scripts/reproduce.py; results and tables: legacy_lstm/report.py)
# ---------------------------------------------------------------------------------------------------------
# absent columns are skipped: the official presets plot validation and train perplexity; Thomas (no validation
# pass) his printed cost and train-batch accuracy, beside his post's quoted figures, and the train perplexity
REPRODUCTION = report.Reproduction("small", (("valid_perplexity", "validation perplexity"),
                                             ("cost", "training cost (his print: the sum over 35 steps)"),
                                             ("train_accuracy", "train-batch accuracy (his printed batches)"),
                                             ("train_perplexity", "train perplexity")))


def _thomas_numbers(result):
    """The results document's numbers of one ptb_thomas.test report: his "Average accuracy", the full test set's,
    the decoded row 0 of batch 25 (true, predicted) and which checkpoint was tested."""
    return {"test_accuracy": result.get("thomas_accuracy"), "full_test_perplexity": result["test_perplexity"],
            "full_test_accuracy": result["test_accuracy"], "sample": result.get("sample"),
            "test_checkpoint": os.path.basename(result["checkpoint"])}


def reproduce(run_dir, preset="small", seed=None, data_dir=None, max_epochs=None, train_run=True,
              variant_quirks=None, variant_cell="basic", split_seed=None, fast_test=False, cell=None, precision=None,
              native=False):
    """PTB: train the preset (resumable, the run dir's seed when resuming), then the test evaluation: the original
    batch-1/1-step Test model (official presets) or Thomas's protocol (legacy_lstm/ptb_thomas.py) on the
    epoch-index-38 checkpoint, as soon as that epoch exists, and once all his epochs ran also on the last one's
    (``final["last_epoch"]``, with its own test seconds). ``--fast_test``: the equivalent fast pass. ``cell``:
    train on this rnn_mode (None: the preset's; a run made on another of ptb_common.SWITCHABLE resumes on it).
    ``precision``: the official graph's dtype (None: the preset's float32). ``native``: with ``cell="fused"``, its
    recurrence in the native ops (``--native_lstm``; the rows it trains record ``fused-native``)."""
    if native:
        if cell != "fused":
            raise ValueError("the native LSTM ops run the fused path's recurrence: they need cell=fused")
        try:
            native_ops.load()
        except native_ops.NativeOpsUnavailable as e:
            raise ValueError(f"the native LSTM ops: {e}") from None
    with fast_lstm.options(native=True) if native else contextlib.nullcontext():  # restored on the way out
        return _reproduce(run_dir, preset, seed, data_dir, max_epochs, train_run, fast_test, cell, precision)


def _reproduce(run_dir, preset, seed, data_dir, max_epochs, train_run, fast_test, cell, precision):
    paths = ptb_data.locate(data_dir)
    saved = runs.read_manifest(run_dir)
    seed = saved.get("seed") if saved is not None else seed  # resuming: the run's own seed
    module = ptb_thomas if preset == THOMAS_ALIAS else sys.modules[__name__]  # Thomas's tutorial is its own app
    extra = {"precision": precision} if precision else {}
    manifest, curve = report.sitting(run_dir, module.APP, None if not train_run else lambda: module.train(
        paths, run_dir, preset, seed=seed, max_epochs=max_epochs, rnn_mode=cell, **extra))
    config = Config(**manifest["config"]) if manifest else None
    test_seconds = None
    if config is not None and config.style == "thomas":
        # None until known: the document is complete when every epoch ran and both checkpoints were tested
        final = {"test_accuracy": None, "last_epoch": None}
        if len(curve) >= config.test_epoch:
            last = None
            if len(curve) == config.epochs:  # what the last epoch's weights give too (first: report.json keeps
                t = time.time()               # the last test run, which must be his checkpoint's)
                last = dict(_thomas_numbers(ptb_thomas.test(paths, run_dir, newest=True)), epoch=len(curve),
                            test_wall_seconds=time.time() - t)
            t = time.time()
            his = ptb_thomas.his_test(paths, run_dir)  # <THOMAS_NAME>-38, or its recorded test (carried without it)
            final = dict(_thomas_numbers(his), last_epoch=last)
            recorded = his.get("recorded_test_seconds")
            test_seconds = recorded if recorded is not None else time.time() - t
        return manifest, curve, final, test_seconds
    complete = config is not None and len(curve) == config.epochs
    final = {"train_perplexity": curve[-1]["train_perplexity"] if complete else None,
             "valid_perplexity": curve[-1]["valid_perplexity"] if complete else None, "test_perplexity": None}
    if complete:
        recorded = common.recorded_test(run_dir, test_protocol(fast_test))
        if recorded is not None:  # e.g. --report_only: the same weights give the same number; keep its own time
            print(f"The test of {pathlib.Path(recorded['checkpoint']).name} ({recorded['protocol']}) is recorded in "
                  f"{pathlib.Path(run_dir) / common.REPORT} for the same checkpoint bytes: reporting it, not "
                  "testing again")
            final["test_perplexity"], test_seconds = recorded["test_perplexity"], recorded.get("test_seconds")
        else:
            t = time.time()
            final["test_perplexity"] = test(paths, run_dir, fast=fast_test)["test_perplexity"]
            test_seconds = time.time() - t
    return manifest, curve, final, test_seconds


# ---------------------------------------------------------------------------------------------------------
# main: the only reader of flags
# ---------------------------------------------------------------------------------------------------------
FAST_TEST = flags.DEFINE_boolean("fast_test", False, "official presets: evaluate the test set with batch 1 and "
                                 f"{FAST_TEST_STEPS}-step windows (the same perplexity, much faster) instead of the "
                                 "original batch-1, 1-step model.")
USE_FP16 = flags.DEFINE_boolean("use_fp16", False, "ptb_word_lm's flag: train using 16-bit floats instead of "
                                "32-bit floats (the same as --precision=float16).")
PRECISION = flags.DEFINE_enum("precision", None, list(common.PRECISIONS), "The dtype of the variables and the "
                              "whole computation (default: float32, the presets'). float16 is ptb_word_lm's "
                              "--use_fp16; bfloat16 is ours (--cell=basic). No loss scaling, no float32 master "
                              "weights, as the original's float16.")
flags.adopt_module_key_flags(cli)
flags.adopt_module_key_flags(common)


def precision_flag():
    """--precision, or float16 for the original's --use_fp16 (both given and different: a usage error)."""
    if USE_FP16.value and PRECISION.value not in (None, "float16"):
        raise app.UsageError(f"--use_fp16 is --precision=float16; it contradicts --precision={PRECISION.value}")
    return "float16" if USE_FP16.value else PRECISION.value


def main(argv):
    if cli.PRESET.value == THOMAS_ALIAS:
        print("note: Andy Thomas's tutorial is the app legacy_lstm.ptb_thomas now; running "
              "python -m legacy_lstm.ptb_thomas", file=sys.stderr)
        old_default = cli.resolve_run_dir(APP, THOMAS_ALIAS)  # where this command kept the run before
        if cli.RUN_DIR.value is None and runs.read_manifest(old_default) is not None:
            flags.FLAGS.run_dir = old_default
        return ptb_thomas.main(argv)
    preset, mode, run_dir = cli.resolve_common(APP, PRESETS, "small", ("train", "test", "generate"), argv)
    cluster = cli.resolve_cluster(mode)
    rnn_mode = common.rnn_mode_flag()
    if cluster is not None and cluster.is_ps:
        return distributed.serve(cluster)
    precision = precision_flag()
    if cluster is not None and not cluster.is_chief:  # a worker trains; the chief also tests, as one process does
        train(ptb_data.locate(cli.resolve_data_dir()), run_dir, preset, cli.SEED.value, cli.MAX_EPOCHS.value, rnn_mode,
              common.TIE_LAYERS.value, progress=cli.PROGRESS.value, cluster=cluster, precision=precision)
        return 0
    return common.run_mode(
        mode, run_dir,
        lambda paths: train(paths, run_dir, preset, cli.SEED.value, cli.MAX_EPOCHS.value, rnn_mode,
                            common.TIE_LAYERS.value, progress=cli.PROGRESS.value, cluster=cluster,
                            precision=precision),
        lambda paths, checkpoint: test(paths, run_dir, checkpoint, fast=FAST_TEST.value),
        Generator)


if __name__ == "__main__":
    cli.run(main)
