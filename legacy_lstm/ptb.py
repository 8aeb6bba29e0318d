r"""PTB word language models: Andy Thomas's adventuresinML tutorial and the official TF ``ptb_word_lm``.

Sources: adventuresinML/adventures-in-ml-code ``lstm_tutorial.py`` (Thomas, "Recurrent neural networks and LSTM
tutorial in Python and TensorFlow", 2017) and its parent tensorflow/models ``tutorials/rnn/ptb``
(``ptb_word_lm.py`` @086660f, the rnn_mode version, and ``reader.py``); spec: ../shared/spec/originals.md §2, §3.

Reproduction contract
---------------------
Commands (each epoch is checkpointed; rerunning the same command resumes from the last finished epoch)::

    python -m legacy_lstm.ptb --preset=small --seed=2017      # 13 epochs, then "Test Perplexity: ..." (default preset)
    python -m legacy_lstm.ptb --preset=small --mode=test      # the test evaluation of the newest checkpoint
    python -m legacy_lstm.ptb --preset=medium --seed=2017     # 39 epochs (many hours on 2 CPU cores)
    python -m legacy_lstm.ptb --preset=thomas --seed=2017     # 60 epochs; the test uses the checkpoint of epoch index 38
    python -m legacy_lstm.ptb --preset=thomas --mode=test
    python scripts/reproduce.py ptb --preset=small            # train + test + results/ptb-small.{json,png}

Published numbers (``legacy_lstm/published/ptb.json``) and the bands a reproduction must meet:

    ======  ==========================================  ===============================  ===========
    preset  metric                                      published (train/valid/test)     band
    ======  ==========================================  ===============================  ===========
    small   perplexity after 13 epochs (TF docstring)   37.99 / 121.39 / 115.91          valid ± 4, test ± 4
    medium  perplexity after 39 epochs                  48.45 / 86.16 / 82.07            test ± 3
    large   perplexity after 55 epochs                  37.87 / 82.62 / 78.29            test ± 3
    thomas  test "Average accuracy" (batches 5-29/30)   0.283                            ± 0.02
    ======  ==========================================  ===============================  ===========

Also observed (tensorflow/models#2276, BLOCK on a Titan X): small 40.55/120.70/115.52, medium
45.68/86.97/83.47; #1057 (10 medium runs, TF 1.0): test 83.55-83.96. Thomas's blog logged two training lines
("Epoch 9, Step 1850, cost: 96.185, accuracy: 0.198") that cannot come from the published code (an epoch has
1,327 steps); they are kept in the published file as notes, not as a curve. No per-epoch curve was published.

Presets (``--preset``)
    ======  ========  ==========  ====  ======  =====  ======  ====  ======  ======  ===========
    preset  graph     init_scale  clip  layers  steps  hidden  keep  decay   epochs  decay after
    ======  ========  ==========  ====  ======  =====  ======  ====  ======  ======  ===========
    small   official  0.1         5     2       20     200     1.0   0.5     13      4
    medium  official  0.05        5     2       35     650     0.5   0.8     39      6
    large   official  0.04        10    2       35     1500    0.35  1/1.15  55      14
    test    official  0.1         1     1       2      2       1.0   0.5     1       1
    thomas  thomas    0.05        5     2       35     650     0.5   0.93    60      10
    ======  ========  ==========  ====  ======  =====  ======  ====  ======  ======  ===========

    All: batch 20, vocabulary 10,000, plain SGD from learning rate 1.0, per epoch
    ``1.0 * decay ** max(epoch_index + 1 - epochs_at_initial_lr, 0)``. Config fields and the original names:
    ``max_grad_norm`` (clip), ``epochs_at_initial_lr`` (``max_epoch``, "decay after"), ``epochs``
    (``max_max_epoch``; Thomas's ``num_epochs``), ``keep_prob``, ``lr_decay``, ``init_scale``. Thomas's
    init_scale applies to the embedding and softmax only (the LSTM kernel is Glorot), his forget_bias is 1.0.

The two graphs
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
              ``Model/softmax_w``, ``Model/softmax_b``, ``global_step``.
    thomas    ``Input`` and ``Model`` as lstm_tutorial.py: ``tf.Variable`` embedding and softmax (uniform ±0.05;
              names ``Variable``, ``Variable_1``, ``Variable_2``, learning rate ``Variable_3``), input dropout,
              ``LSTMCell(650, forget_bias=1.0)`` (Glorot kernel) wrapped in ``DropoutWrapper(output_keep_prob)``,
              ``init_state`` placeholder [layers, 2, batch, hidden] unstacked into ``LSTMStateTuple``s,
              ``dynamic_rnn``, cost = sum over the 35 steps of the batch-mean cross-entropy, accuracy of the
              argmax of the softmax, lr variable + assign op, clip 5, SGD. Each batch's final state is fed back
              as the next initial state; each epoch starts from zeros. The log line every 50 steps:
              ``Epoch 0, Step 50, cost: ..., accuracy: ..., Seconds per step: ...`` (0-based epoch; seconds
              per step as the original computed them: whole seconds since the last print / 50).
              ``--rnn_mode=block`` uses the raw LSTMBlockCell op with forget_bias 1 (same function, same names).

Quirks of the originals, reproduced by default, each switchable
    --data_prints     thomas: training starts with what the original's ``load_data()`` printed:
                      ``[9970, 9971, 9972, 9974, 9975]``, the whole word_to_id dict (10,000 entries), ``10000``
                      and the first 10 training words. ``--nodata_prints`` leaves them out.
    --exact_step_seconds  thomas: the log's "Seconds per step" is the original's coarse whole seconds since
                      the last print / 50 (0.000 at step 0); this flag prints the measured value instead.
    --tie_layers      thomas: ``MultiRNNCell([cell for _ in range(2)])`` holds the *same* cell object twice, so
                      since TF 1.2 both layers share one kernel (``rnn/multi_rnn_cell/cell_0/lstm_cell/kernel``
                      [1300, 2600]; there is no cell_1). ``--notie_layers`` gives each layer its own weights.
                      Official presets: off (distinct cells); ``--tie_layers`` shares there too.
    --thomas_test     thomas: ``--mode=test`` restores the checkpoint after epoch index 38 (saved under the
                      original's name ``two-layer-lstm-medium-config-60-epoch-0p93-lr-decay-10-max-lr-38``; the
                      newest checkpoint if that one does not exist yet), runs 30 test batches (batch 20, 35 steps,
                      state carried), averages the accuracy of batches 5-29 ("Average accuracy: 0.283" published)
                      and prints row 0 of batch 25 decoded with the reverse dictionary (true words, then
                      predictions). Beside it, and not in the original, the same pass continued over all 117 test
                      batches gives a full-test-set perplexity and accuracy. ``--nothomas_test`` prints only the
                      full-test-set numbers.
    test protocol     official: the faithful Test model (batch 1, 1 step, 82,429 runs) by default; ``--fast_test``
                      evaluates the same sum with batch 1 and windows of ``FAST_TEST_STEPS`` steps, state carried,
                      the last window padded and masked: the same perplexity (tests prove it) in a fraction of
                      the time (small, measured by scripts/ptb_speed.py on this project's loaded 2-core
                      machine: 249 s faithful, 37 s fast; the committed reproduction's faithful test took 165 s).
    (not switchable)  Thomas never uses ``valid_data`` and reports no perplexity; ``train_perplexity``
                      = exp(mean cost / 35) is added to its curve as a diagnostic. Accuracy is fetched only at
                      the printed steps (as the original), so the curve's ``train_accuracy`` is the mean of those
                      27 steps per epoch.

Data: ``ptb/ptb.{train,valid,test}.txt`` (sha256 in legacy_lstm/data/download.py) in ``--data_dir`` (default
``$LEGACY_LSTM_DATA``, else ``~/.cache/legacy_lstm``), downloaded when missing and reachable. Reader and queue
producer: legacy_lstm/data/ptb.py.

Deliberate differences
    - Checkpoints: ``model.ckpt-<epoch>`` after every epoch with a manifest (resume, checked restore) instead of
      the Supervisor (official) or Windows-path names (Thomas); Thomas's epoch-index-38 checkpoint and
      ``-final`` keep the original names. No metagraph export/import round trip (multi-GPU plumbing).
    - ``--seed`` seeds Python, NumPy and TF and runs dynamic_rnn with parallel_iterations=1 (deterministic
      dropout); the originals are unseeded. The fetched Thomas state is stacked in the graph before it is fed
      back (the original converted the nested tuple with numpy): the same values.
    - A NaN loss stops training with a clear error; the last good checkpoint is kept.

Generation (not in the originals)::

    python -m legacy_lstm.ptb --preset=small --mode=generate --prompt "the stock market" --num_words 20
    python -m legacy_lstm.ptb --preset=small --mode=generate --prompt "the" --decode=greedy
    python -m legacy_lstm.ptb --preset=small --mode=generate --prompt "the" --temperature=0.7   # sharper sampling

The prompt is lower-cased and split; words outside the vocabulary become ``<unk>`` (with a notice); ``<eos>``
is printed as a line break.
"""

import dataclasses
import json
import pathlib
import sys
import time

import numpy as np
from absl import flags

from legacy_lstm import cells
from legacy_lstm import cli
from legacy_lstm import published
from legacy_lstm import runs
from legacy_lstm.compat import seed_everything, sequence_loss, tf, tf1
from legacy_lstm.data import ptb as ptb_data

APP = "ptb"
THOMAS_NAME = "two-layer-lstm-medium-config-60-epoch-0p93-lr-decay-10-max-lr"
THOMAS_STATE_FILE = "thomas_checkpoint"  # the Saver state file of the original-named checkpoints
FAST_TEST_STEPS = 50
# No per-operation timeout in the sessions: range_input_producer's runner enqueues a whole epoch with one
# enqueue_many that blocks (queue capacity 32) until the epoch is nearly consumed, i.e. for a whole epoch (17 min
# for medium here). A session-wide operation_timeout_in_ms killed that op and closed the queue mid-epoch. Hangs are
# prevented by queue_runners instead: a dying runner closes its queue (the consumer gets OutOfRangeError), and on
# exit the coordinator stops and joins every runner.
SESSION_CONFIG = tf1.ConfigProto(operation_timeout_in_ms=0)


# ---------------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    style: str = "official"        # official (ptb_word_lm) | thomas (lstm_tutorial.py)
    init_scale: float = 0.1
    learning_rate: float = 1.0
    max_grad_norm: float = 5.0
    num_layers: int = 2
    num_steps: int = 20
    hidden_size: int = 200
    epochs_at_initial_lr: int = 4  # the original's max_epoch
    epochs: int = 13               # the original's max_max_epoch
    keep_prob: float = 1.0
    lr_decay: float = 0.5
    batch_size: int = 20
    vocab_size: int = 10000
    forget_bias: float = 0.0
    rnn_mode: str = "block"        # basic | block
    tie_layers: bool = False       # one cell object in every layer (shared weights)
    test_epoch: int = None         # thomas: the test restores the checkpoint after this many epochs
    print_iter: int = 50           # thomas: a log line every print_iter steps

    def __post_init__(self):
        if self.style not in ("official", "thomas"):
            raise ValueError(f"style must be official or thomas, got {self.style!r}")
        if self.rnn_mode not in ("basic", "block"):
            raise ValueError(f"rnn_mode must be basic or block, got {self.rnn_mode!r}")
        if self.style == "thomas" and self.num_layers < 2:
            raise ValueError("the thomas graph needs num_layers >= 2 (the original breaks with 1 layer)")

    def learning_rate_at(self, epoch_index):
        return self.learning_rate * self.lr_decay ** max(epoch_index + 1 - self.epochs_at_initial_lr, 0.0)


PRESETS = {
    "small": Config(),
    "medium": Config(init_scale=0.05, num_steps=35, hidden_size=650, epochs_at_initial_lr=6, epochs=39,
                     keep_prob=0.5, lr_decay=0.8),
    "large": Config(init_scale=0.04, max_grad_norm=10.0, num_steps=35, hidden_size=1500, epochs_at_initial_lr=14,
                    epochs=55, keep_prob=0.35, lr_decay=1 / 1.15),
    "test": Config(max_grad_norm=1.0, num_layers=1, num_steps=2, hidden_size=2, epochs_at_initial_lr=1, epochs=1),
    "thomas": Config(style="thomas", init_scale=0.05, num_steps=35, hidden_size=650, epochs_at_initial_lr=10,
                     epochs=60, keep_prob=0.5, lr_decay=0.93, forget_bias=1.0, rnn_mode="basic", tie_layers=True,
                     test_epoch=39),
}


def published_numbers(preset):
    return published.load(APP)["presets"][preset]


def _resolve_config(preset, **overrides):
    name, config = cli.preset_config(PRESETS, preset)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return name, dataclasses.replace(config, **overrides) if overrides else config


# ---------------------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------------------
def make_multi_cell(config, is_training):
    """The MultiRNNCell of either graph: per-layer cells (or one shared cell with ``tie_layers``), each
    wrapped in DropoutWrapper(output_keep_prob) when training with keep_prob < 1."""
    def one_cell():
        if config.rnn_mode == "block":
            # official: the kernel takes the scope's uniform initializer, as TF1's LSTMBlockCell did;
            # thomas has no scope initializer, so its (Glorot) default is kept.
            init = None if config.style == "official" else "glorot_uniform"
            cell = cells.LSTMBlockCell(config.hidden_size, forget_bias=config.forget_bias, kernel_initializer=init)
        elif config.style == "thomas":
            cell = tf1.nn.rnn_cell.LSTMCell(config.hidden_size, forget_bias=config.forget_bias)
        else:
            # no reuse= here: the Valid model inherits reuse from its scope, and the Test/generation models are
            # built alone in a fresh graph
            cell = tf1.nn.rnn_cell.BasicLSTMCell(config.hidden_size, forget_bias=config.forget_bias,
                                                 state_is_tuple=True)
        if is_training and config.keep_prob < 1:
            cell = tf1.nn.rnn_cell.DropoutWrapper(cell, output_keep_prob=config.keep_prob)
        return cell
    if config.tie_layers:
        cell = one_cell()
        layers = [cell for _ in range(config.num_layers)]  # the same object: one weight set (TF >= 1.2)
    else:
        layers = [one_cell() for _ in range(config.num_layers)]
    return tf1.nn.rnn_cell.MultiRNNCell(layers, state_is_tuple=True)


def _flat_state(state):
    return [t for layer in state for t in (layer.c, layer.h)]


class FeedInput:
    """Placeholders in place of the queue producer (generation and the fast test evaluation)."""

    def __init__(self, batch_size, num_steps, name="FeedInput"):
        self.batch_size, self.num_steps, self.epoch_size = batch_size, num_steps, None
        with tf1.name_scope(name):
            self.input_data = tf1.placeholder(tf.int32, [batch_size, num_steps], name="input_data")
            self.targets = tf1.placeholder(tf.int32, [batch_size, num_steps], name="targets")
            self.weights = tf1.placeholder(tf.float32, [batch_size, num_steps], name="weights")


# ---------------------------------------------------------------------------------------------------------
# The Thomas graph (lstm_tutorial.py)
# ---------------------------------------------------------------------------------------------------------
class Input:
    """lstm_tutorial.py's Input: the queue producer over ``data`` and its epoch size."""

    def __init__(self, batch_size, num_steps, data):
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.epoch_size = ((len(data) // batch_size) - 1) // num_steps
        self.input_data, self.targets, _ = ptb_data.batch_producer(data, batch_size, num_steps)


class Model:
    """lstm_tutorial.py's Model (originals.md §2.4), in its order of variable creation."""

    def __init__(self, input, is_training, config, parallel_iterations=None):
        self.is_training = is_training
        self.input_obj = input
        self.batch_size = input.batch_size
        self.num_steps = input.num_steps
        hidden, vocab, init = config.hidden_size, config.vocab_size, config.init_scale
        with tf.device("/cpu:0"):
            embedding = tf.Variable(tf1.random_uniform([vocab, hidden], -init, init))
            inputs = tf.nn.embedding_lookup(embedding, input.input_data)
        if is_training and config.keep_prob < 1:
            inputs = tf1.nn.dropout(inputs, config.keep_prob)  # the positional argument is keep_prob
        self.init_state = tf1.placeholder(tf.float32, [config.num_layers, 2, self.batch_size, hidden])
        state_per_layer = tf.unstack(self.init_state, axis=0)
        rnn_tuple_state = tuple(tf1.nn.rnn_cell.LSTMStateTuple(s[0], s[1]) for s in state_per_layer)
        cell = make_multi_cell(config, is_training)
        output, self.state = tf1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32, initial_state=rnn_tuple_state,
                                                parallel_iterations=parallel_iterations or 32)
        # The state as one [layers, 2, batch, hidden] array, ready to be fed back into init_state.
        self.state_array = tf.stack([tf.stack([s.c, s.h]) for s in self.state])
        output = tf.reshape(output, [-1, hidden])
        softmax_w = tf.Variable(tf1.random_uniform([hidden, vocab], -init, init))
        softmax_b = tf.Variable(tf1.random_uniform([vocab], -init, init))
        logits = tf1.nn.xw_plus_b(output, softmax_w, softmax_b)
        self.logits = tf.reshape(logits, [self.batch_size, self.num_steps, vocab])
        loss = sequence_loss(self.logits, input.targets, tf.ones([self.batch_size, self.num_steps], tf.float32),
                             average_across_timesteps=False, average_across_batch=True)
        self.cost = tf.reduce_sum(loss)
        self.softmax_out = tf.nn.softmax(tf.reshape(self.logits, [-1, vocab]))
        self.predict = tf.cast(tf.argmax(self.softmax_out, axis=1), tf.int32)
        correct = tf.equal(self.predict, tf.reshape(input.targets, [-1]))
        self.accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
        if not is_training:
            return
        self.learning_rate = tf.Variable(0.0, trainable=False)
        tvars = tf1.trainable_variables()
        grads, _ = tf.clip_by_global_norm(tf.gradients(self.cost, tvars), config.max_grad_norm)
        optimizer = tf1.train.GradientDescentOptimizer(self.learning_rate)
        self.train_op = optimizer.apply_gradients(zip(grads, tvars),
                                                  global_step=tf1.train.get_or_create_global_step())
        self.new_lr = tf1.placeholder(tf.float32, shape=[])
        self.lr_update = tf1.assign(self.learning_rate, self.new_lr)

    def zero_state(self, config):
        return np.zeros((config.num_layers, 2, self.batch_size, config.hidden_size), dtype=np.float32)

    def assign_lr(self, session, lr_value):
        session.run(self.lr_update, feed_dict={self.new_lr: lr_value})


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
    """ptb_word_lm's PTBModel (originals.md §3.2): build it inside ``variable_scope("Model")``."""

    def __init__(self, is_training, config, input_):
        self.is_training = is_training
        self.input = input_
        self.batch_size, self.num_steps = input_.batch_size, input_.num_steps
        size, vocab = config.hidden_size, config.vocab_size
        with tf.device("/cpu:0"):
            embedding = tf1.get_variable("embedding", [vocab, size], dtype=tf.float32)
            inputs = tf.nn.embedding_lookup(embedding, input_.input_data)
        if is_training and config.keep_prob < 1:
            inputs = tf1.nn.dropout(inputs, config.keep_prob)
        cell = make_multi_cell(config, is_training)
        self.initial_state = cell.zero_state(self.batch_size, tf.float32)
        state = self.initial_state
        outputs = []
        with tf1.variable_scope("RNN"):
            for time_step in range(self.num_steps):
                if time_step > 0:
                    tf1.get_variable_scope().reuse_variables()
                cell_output, state = cell(inputs[:, time_step, :], state)
                outputs.append(cell_output)
        output = tf.reshape(tf.concat(outputs, 1), [-1, size])
        self.final_state = state
        softmax_w = tf1.get_variable("softmax_w", [size, vocab], dtype=tf.float32)
        softmax_b = tf1.get_variable("softmax_b", [vocab], dtype=tf.float32)
        logits = tf1.nn.xw_plus_b(output, softmax_w, softmax_b)
        self.logits = tf.reshape(logits, [self.batch_size, self.num_steps, vocab])
        weights = input_.weights if input_.weights is not None else tf.ones([self.batch_size, self.num_steps])
        loss = sequence_loss(self.logits, input_.targets, weights, average_across_timesteps=False,
                             average_across_batch=True)
        self.cost = tf.reduce_sum(loss)
        if not is_training:
            return
        self.lr = tf.Variable(0.0, trainable=False)
        tvars = tf1.trainable_variables()
        grads, _ = tf.clip_by_global_norm(tf.gradients(self.cost, tvars), config.max_grad_norm)
        optimizer = tf1.train.GradientDescentOptimizer(self.lr)
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
        flat_in = _flat_state(self.initial_state)
        flat_out = _flat_state(self.final_state)
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


def run_epoch(step, epoch_size, num_steps, batch_size=1, verbose=False, log=print, carry_state=True):
    """ptb_word_lm's run_epoch on a ``PTBModel.stepper``: the state is carried from step to step; returns
    the perplexity exp(sum of costs / (epoch_size * num_steps)). ``carry_state=False`` restarts every step
    from zeros (not in the original; shows what the carried state is worth)."""
    start = time.time()
    costs = 0.0
    iters = 0
    state = step.zero_state
    report_every = max(1, epoch_size // 10)
    for i in range(epoch_size):
        cost, final = step(*(state if carry_state else step.zero_state))
        if not np.isfinite(cost):
            raise runs.NonFiniteLossError(
                f"cost is {cost} at step {i}; stopped without saving this epoch. The last checkpoint is intact: "
                "rerun the same command to resume from it.")
        state = final
        costs += cost
        iters += num_steps
        if verbose and i % report_every == 10:
            log("%.3f perplexity: %.3f speed: %.0f wps" % (
                i * 1.0 / epoch_size, np.exp(costs / iters), iters * batch_size / (time.time() - start)))
    return float(np.exp(costs / iters))


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------
def make_manifest(preset, config, word_to_id, seed, num_tokens):
    return {"app": APP, "preset": preset, "config": dataclasses.asdict(config),
            "quirks": {"tie_layers": config.tie_layers}, "split_seed": None, "seed": seed,
            # seeded runs are repeatable: static unroll (official), parallel_iterations=1 (thomas)
            "deterministic": seed is not None,
            "cell": config.rnn_mode, "vocab_size": len(word_to_id), "vocab_sha256": runs.vocab_sha256(word_to_id),
            "num_tokens": num_tokens}


def thomas_data_lines(train_data, word_to_id):
    """What lstm_tutorial.py's ``load_data()`` printed: ``train_data[:5]`` ([9970, 9971, 9972, 9974, 9975] on
    PTB), the whole word_to_id dict, the vocabulary size, and the first 10 training words."""
    reverse = {i: w for w, i in word_to_id.items()}
    return [str([int(i) for i in train_data[:5]]), str(word_to_id), str(len(word_to_id)),
            " ".join(reverse[int(i)] for i in train_data[:10])]


def _load(paths, config):
    train_data, valid_data, test_data, word_to_id = ptb_data.load_raw(*paths)
    if len(word_to_id) > config.vocab_size:
        raise ValueError(f"the training text has {len(word_to_id)} distinct words, more than vocab_size "
                         f"{config.vocab_size}")
    return train_data, valid_data, test_data, word_to_id


def _session(graph):
    return tf1.Session(graph=graph, config=SESSION_CONFIG)


def train(paths, run_dir, preset="small", seed=None, max_epochs=None, rnn_mode=None, tie_layers=None, log=print,
          exact_step_seconds=False, data_prints=True):
    """Train (resuming from ``run_dir``); ``paths`` = (train, valid, test) files. Returns {"curve", "run_dir",
    "seed", "finished", "seconds", "config"}. ``max_epochs`` counts epochs in total. ``exact_step_seconds``:
    Thomas's log line shows the measured seconds per step instead of the original's whole seconds / 50.
    ``data_prints`` (thomas): log what the original's ``load_data()`` printed (``thomas_data_lines``)."""
    preset_name, config = _resolve_config(preset, rnn_mode=rnn_mode, tie_layers=tie_layers)
    train_data, valid_data, _, word_to_id = _load(paths, config)
    if config.style == "thomas" and data_prints:
        for line in thomas_data_lines(train_data, word_to_id):
            log(line)
    saved = runs.read_manifest(run_dir)
    if seed is None and saved is not None:
        seed = saved.get("seed")
    manifest = make_manifest(preset_name, config, word_to_id, seed, len(train_data))
    num_epochs = cli.epochs_to_run(config.epochs, max_epochs)
    start = time.time()
    graph = tf.Graph()
    with graph.as_default():
        seed_everything(runs.sitting_seed(seed, run_dir))  # seed + finished epochs when resuming
        if config.style == "thomas":
            result = _train_thomas(graph, config, manifest, train_data, word_to_id, run_dir, num_epochs, seed, log,
                                   exact_step_seconds)
        else:
            result = _train_official(graph, config, manifest, train_data, valid_data, word_to_id, run_dir,
                                     num_epochs, log)
    result.update({"run_dir": str(run_dir), "seed": seed, "seconds": time.time() - start, "config": config,
                   "finished": len(result["curve"]) == config.epochs})
    return result


def _begin(sess, run, word_to_id, run_dir, log):
    sess.run(tf1.global_variables_initializer())
    done = run.resume(sess)
    if done:
        log(f"Resuming {run_dir} after epoch {done}.")
    else:
        run.write_manifest(vocab=word_to_id)
    return done


def _train_official(graph, config, manifest, train_data, valid_data, word_to_id, run_dir, num_epochs, log):
    m, mvalid = official_graph(config, train_data, valid_data)
    run = runs.Run(run_dir, manifest)
    with _session(graph) as sess:
        done = _begin(sess, run, word_to_id, run_dir, log)
        train_step = m.stepper(sess, m.train_op)
        valid_step = mvalid.stepper(sess)
        lr_feed = sess.make_callable(m.lr_update, feed_list=[m.new_lr])
        graph.finalize()
        try:
            with ptb_data.queue_runners(sess):
                for i in range(done, num_epochs):
                    t0 = time.time()
                    lr_feed(config.learning_rate_at(i))
                    lr = float(sess.run(m.lr))
                    log("Epoch: %d Learning rate: %.3f" % (i + 1, lr))
                    train_ppl = run_epoch(train_step, m.input.epoch_size, m.num_steps, m.batch_size, verbose=True,
                                          log=log)
                    log("Epoch: %d Train Perplexity: %.3f" % (i + 1, train_ppl))
                    train_seconds = time.time() - t0
                    valid_ppl = run_epoch(valid_step, mvalid.input.epoch_size, mvalid.num_steps)
                    log("Epoch: %d Valid Perplexity: %.3f" % (i + 1, valid_ppl))
                    row = {"epoch": i + 1, "learning_rate": lr, "train_perplexity": train_ppl,
                           "valid_perplexity": valid_ppl, "seconds": round(time.time() - t0, 3),
                           "seconds_per_train_step": round(train_seconds / m.input.epoch_size, 5)}
                    run.finish_epoch(sess, row, {"train": {"perplexity": train_ppl, "learning_rate": lr},
                                                 "validation": {"perplexity": valid_ppl}})
        finally:
            run.close()
    return {"curve": run.curve}


def _train_thomas(graph, config, manifest, train_data, word_to_id, run_dir, num_epochs, seed, log,
                  exact_step_seconds=False):
    training_input = Input(config.batch_size, config.num_steps, train_data)
    m = Model(training_input, True, config, parallel_iterations=1 if seed is not None else None)
    run = runs.Run(run_dir, manifest, final_name=f"{THOMAS_NAME}-final")
    # The original kept the last 5 per-epoch checkpoints; the epoch-index-38 one its test loads is kept here
    # under its original name by a second Saver that deletes nothing.
    keeper = tf1.train.Saver(var_list=run.var_list, max_to_keep=None, save_relative_paths=True)
    with _session(graph) as sess:
        done = _begin(sess, run, word_to_id, run_dir, log)
        feeds = [m.init_state]
        step = sess.make_callable([m.cost, m.train_op, m.state_array], feed_list=feeds)
        step_print = sess.make_callable([m.cost, m.train_op, m.state_array, m.accuracy], feed_list=feeds)
        graph.finalize()
        try:
            with ptb_data.queue_runners(sess):
                for epoch in range(done, num_epochs):
                    lr = config.learning_rate_at(epoch)
                    m.assign_lr(sess, lr)
                    row = thomas_epoch(step, step_print, m.zero_state(config), training_input.epoch_size, epoch,
                                       config, log, exact_step_seconds)
                    row["learning_rate"] = lr
                    # the kept checkpoint first: a kill between the two saves retrains this epoch and rewrites it
                    if config.test_epoch is not None and epoch + 1 == config.test_epoch:
                        keeper.save(sess, str(run.dir / THOMAS_NAME), global_step=epoch,
                                    latest_filename=THOMAS_STATE_FILE, write_meta_graph=False)
                    run.finish_epoch(sess, row, {"train": {k: row[k] for k in ("cost", "train_perplexity",
                                                                               "train_accuracy")}})
                if len(run.curve) == config.epochs and done < config.epochs:
                    run.save_final(sess)
        finally:
            run.close()
    return {"curve": run.curve}


def thomas_epoch(step, step_print, zero_state, epoch_size, epoch, config, log=print, exact_step_seconds=False):
    """One epoch of lstm_tutorial.py's train loop: state from zeros, carried batch to batch; every
    ``print_iter`` steps (from step 0) the accuracy is fetched too and the original's line printed, its
    "Seconds per step" the original's whole seconds since the last print / print_iter (``exact_step_seconds``:
    the measured value). The curve row: mean cost, its per-word perplexity, and the mean accuracy of the
    printed steps."""
    current_state = zero_state
    costs, accs = 0.0, []
    start = time.time()
    t_print = start
    for s in range(epoch_size):
        if s % config.print_iter != 0:
            cost, _, current_state = step(current_state)
        else:
            # the original read the clock before this step's run: timedelta.seconds (whole seconds) since the
            # last print / print_iter, 0 at step 0
            now = time.time()
            per_step = (now - t_print if exact_step_seconds else int(now - t_print)) / config.print_iter
            t_print = now
            cost, _, current_state, acc = step_print(current_state)
            log("Epoch {}, Step {}, cost: {:.3f}, accuracy: {:.3f}, Seconds per step: {:.3f}".format(
                epoch, s, cost, acc, per_step))
            accs.append(float(acc))
        if not np.isfinite(cost):
            raise runs.NonFiniteLossError(
                f"cost is {cost} at epoch {epoch} step {s}; stopped without saving this epoch. The last "
                "checkpoint is intact: rerun the same command to resume from it.")
        costs += float(cost)
    mean_cost = costs / epoch_size
    return {"epoch": epoch + 1, "cost": mean_cost, "train_perplexity": float(np.exp(mean_cost / config.num_steps)),
            "train_accuracy": float(np.mean(accs)), "seconds": round(time.time() - start, 3),
            "seconds_per_train_step": round((time.time() - start) / epoch_size, 5)}


# ---------------------------------------------------------------------------------------------------------
# Test
# ---------------------------------------------------------------------------------------------------------
def load_run(run_dir):
    """(config, word_to_id, manifest) saved with the run in ``run_dir``."""
    manifest = runs.read_manifest(run_dir)
    if manifest is None:
        raise FileNotFoundError(f"{run_dir} has no {runs.MANIFEST}: train a model there first "
                                f"(python -m legacy_lstm.{APP} --mode=train).")
    word_to_id = runs.read_json(run_dir, manifest.get("vocab_file", "vocab.json"))
    return Config(**manifest["config"]), word_to_id, manifest


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
        costs += cost
    return float(np.exp(costs / float(w.sum())))


def _fast_stepper(sess, model):
    flat_in = _flat_state(model.initial_state)
    flat_out = _flat_state(model.final_state)
    inp = model.input
    run = sess.make_callable([model.cost] + flat_out, feed_list=[inp.input_data, inp.targets, inp.weights] + flat_in)

    def step(x, y, w, *state):
        out = run(x, y, w, *state)
        return out[0], out[1:]
    step.zero_state = sess.run(flat_in)
    return step


def test(paths, run_dir, checkpoint=None, fast=False, thomas_test=True, log=print):
    """Evaluate a trained run on the test set; writes ``run_dir/report.json`` and returns the report.

    official: {"test_perplexity", "protocol"}; thomas: the original protocol (``thomas_accuracy``, the decoded
    sentence pair) when ``thomas_test``, and the full-test-set ``test_perplexity``/``test_accuracy``."""
    config, word_to_id, manifest = load_run(run_dir)
    train_data, _, test_data, data_vocab = _load(paths, config)
    if data_vocab != word_to_id:
        raise runs.ManifestMismatchError(f"the data gives another vocabulary than the one {run_dir} was trained "
                                         "with; use the data files of that run.")
    start = time.time()
    graph = tf.Graph()
    with graph.as_default():
        if config.style == "thomas":
            report = _test_thomas(graph, config, manifest, test_data, word_to_id, run_dir, checkpoint, thomas_test,
                                  log)
        else:
            report = _test_official(graph, config, manifest, test_data, run_dir, checkpoint, fast, log)
    report.update({"app": APP, "preset": manifest["preset"], "run_dir": str(run_dir),
                   "test_seconds": round(time.time() - start, 1)})
    runs.atomic_write_text(pathlib.Path(run_dir) / "report.json", json.dumps(report, indent=1, default=str) + "\n")
    return report


def _test_official(graph, config, manifest, test_data, run_dir, checkpoint, fast, log):
    if fast:
        model = eval_model(config, lambda: FeedInput(1, FAST_TEST_STEPS))
    else:
        eval_config = dataclasses.replace(config, batch_size=1, num_steps=1)
        model = eval_model(eval_config, lambda: PTBInput(eval_config, test_data, name="TestInput"))
    run = runs.Run(run_dir, manifest)
    with _session(graph) as sess:
        path = run.restore(sess, checkpoint)
        log(f"Restored {path}")
        step = _fast_stepper(sess, model) if fast else model.stepper(sess)
        graph.finalize()
        test_ppl = evaluate_official(sess, model, step, test_data, fast=fast)
    log("Test Perplexity: %.3f" % test_ppl)
    return {"checkpoint": path, "test_perplexity": test_ppl,
            "protocol": f"batch 1, {FAST_TEST_STEPS}-step windows (fast)" if fast else "batch 1, 1 step (original)"}


def thomas_checkpoint(run_dir, config):
    """The original's test checkpoint (epoch index test_epoch-1) if it was written, else None."""
    state = tf1.train.get_checkpoint_state(str(run_dir), latest_filename=THOMAS_STATE_FILE)
    if state is None or not state.model_checkpoint_path:
        return None
    path = state.model_checkpoint_path
    return path if tf1.train.checkpoint_exists(path) else None


def _test_thomas(graph, config, manifest, test_data, word_to_id, run_dir, checkpoint, thomas_test, log):
    reversed_dictionary = {i: w for w, i in word_to_id.items()}
    test_input = Input(config.batch_size, config.num_steps, test_data)
    m = Model(test_input, False, config)
    run = runs.Run(run_dir, manifest)
    if checkpoint is None and thomas_test:
        checkpoint = thomas_checkpoint(run_dir, config)
        if checkpoint is None:
            log(f"note: no checkpoint after epoch {config.test_epoch} yet ({THOMAS_NAME}-{config.test_epoch - 1}); "
                "testing the newest one")
    with _session(graph) as sess:
        path = run.restore(sess, checkpoint)
        log(f"Restored {path}")
        fetch = sess.make_callable([m.cost, m.accuracy, m.state_array, m.predict, test_input.targets],
                                   feed_list=[m.init_state])
        graph.finalize()
        with ptb_data.queue_runners(sess):
            result = thomas_test_pass(fetch, m.zero_state(config), test_input.epoch_size, config,
                                      reversed_dictionary, thomas_test, log)
    result["checkpoint"] = path
    return result


def thomas_test_pass(fetch, zero_state, epoch_size, config, reversed_dictionary, thomas_test=True, log=print,
                     num_acc_batches=30, check_batch_idx=25, acc_check_thresh=5):
    """One pass over every test batch from a zero state, carried. Its first ``num_acc_batches`` batches are the
    original test(): accuracy averaged over batches acc_check_thresh..num_acc_batches-1, and row 0 of batch
    ``check_batch_idx`` decoded. The whole pass gives the full-test-set perplexity and accuracy."""
    current_state = zero_state
    costs, accs = 0.0, []
    out = {}
    if thomas_test and epoch_size < num_acc_batches:
        log(f"note: the test data gives {epoch_size} batches, fewer than the {num_acc_batches} of the original "
            "protocol: no 'Average accuracy'")
    for batch in range(epoch_size):
        cost, acc, current_state, pred, targets = fetch(current_state)
        costs += float(cost)
        accs.append(float(acc))
        if thomas_test and batch == check_batch_idx:
            true_words = " ".join(reversed_dictionary[int(x)] for x in targets[0])
            pred_words = " ".join(reversed_dictionary[int(x)] for x in pred[:config.num_steps])
            log("True values (1st line) vs predicted values (2nd line):")
            log(true_words)
            log(pred_words)
            out["sample"] = {"true": true_words, "predicted": pred_words}
        if thomas_test and batch == num_acc_batches - 1:
            out["thomas_accuracy"] = float(np.mean(accs[acc_check_thresh:num_acc_batches]))
            log("Average accuracy: {:.3f}".format(out["thomas_accuracy"]))
    out["test_perplexity"] = float(np.exp(costs / (epoch_size * config.num_steps)))
    out["test_accuracy"] = float(np.mean(accs))
    out["test_batches"] = epoch_size
    log(f"Full test set ({epoch_size} batches of {config.batch_size}x{config.num_steps}): perplexity "
        f"{out['test_perplexity']:.3f}, accuracy {out['test_accuracy']:.3f}")
    return out


# ---------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------
def prompt_ids(text, word_to_id, notice=print):
    """Ids of the prompt's words (lower-cased); unknown words become ``<unk>``, with a notice."""
    words = text.lower().split()
    if not words:
        raise ValueError("the prompt is empty: give at least one word, e.g. --prompt \"the stock market\"")
    unknown = [w for w in words if w not in word_to_id]
    if unknown:
        notice(f"notice: not in the vocabulary, read as {ptb_data.UNK}: {', '.join(unknown)}")
    unk = word_to_id.get(ptb_data.UNK)
    if unknown and unk is None:
        raise ValueError(f"the vocabulary has no {ptb_data.UNK} to stand for {', '.join(unknown)}")
    return [word_to_id.get(w, unk) for w in words]


class Generator(runs.HoldsSession):
    """A trained model of ``run_dir`` with batch 1 and 1 step, state carried; use as a context manager."""

    def __init__(self, run_dir, checkpoint=None):
        config, self.word_to_id, manifest = load_run(run_dir)
        self.reverse = {i: w for w, i in self.word_to_id.items()}
        self.config = dataclasses.replace(config, batch_size=1, num_steps=1)
        self.graph = tf.Graph()
        with self.graph.as_default():
            feed = FeedInput(1, 1)
            if config.style == "thomas":
                model = Model(feed, False, self.config)
                self._zero = model.zero_state(self.config)
                self.sess = _session(self.graph)
                self.checkpoint = runs.Run(run_dir, manifest).restore(self.sess, checkpoint)
                fn = self.sess.make_callable([model.logits, model.state_array], feed_list=[feed.input_data,
                                                                                         model.init_state])
                self._step = lambda x, state: fn(x, state)
            else:
                model = eval_model(self.config, lambda: feed, name="Generate")
                self.sess = _session(self.graph)
                self.checkpoint = runs.Run(run_dir, manifest).restore(self.sess, checkpoint)
                flat_in, flat_out = _flat_state(model.initial_state), _flat_state(model.final_state)
                fn = self.sess.make_callable([model.logits] + flat_out, feed_list=[feed.input_data] + flat_in)
                self._zero = self.sess.run(flat_in)

                def step(x, state):
                    out = fn(x, *state)
                    return out[0], out[1:]
                self._step = step
        self.graph.finalize()

    def generate(self, ids, num_words, decode="sample", temperature=1.0, rng=None):
        """Ids of ``num_words`` words following ``ids``: greedy argmax or sampling from softmax(logits / T)."""
        rng = rng or np.random.default_rng()
        state = self._zero
        logits = None
        for i in ids:
            logits, state = self._step(np.array([[i]], np.int32), state)
        out = []
        for _ in range(num_words):
            z = logits.reshape(-1).astype(np.float64)
            if decode == "greedy":
                nxt = int(np.argmax(z))
            else:
                z = z / max(temperature, 1e-6)
                p = np.exp(z - z.max())
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(nxt)
            logits, state = self._step(np.array([[nxt]], np.int32), state)
        return out

    def text(self, prompt, num_words=32, decode="sample", temperature=1.0, rng=None, notice=print):
        ids = prompt_ids(prompt, self.word_to_id, notice)
        words = [self.reverse.get(i, "?") for i in ids + self.generate(ids, num_words, decode, temperature, rng)]
        return " ".join(words).replace(f" {ptb_data.EOS} ", "\n").replace(ptb_data.EOS, "\n")


# ---------------------------------------------------------------------------------------------------------
# main: the only reader of flags
# ---------------------------------------------------------------------------------------------------------
RNN_MODE = flags.DEFINE_enum("rnn_mode", None, ["basic", "block"], "The LSTM implementation (the original's "
                             "flag): block (default of the official presets; the raw LSTMBlockCell op) or basic "
                             "(BasicLSTMCell; thomas: LSTMCell, its default). Default: the preset's.")
TIE_LAYERS = flags.DEFINE_boolean("tie_layers", None, "One cell object in every layer, so the layers share one "
                                  "weight set (Thomas's quirk). Default: the preset's (on for thomas only).")
THOMAS_TEST = flags.DEFINE_boolean("thomas_test", True, "thomas --mode=test: the original protocol (checkpoint of "
                                   "epoch index 38, 30 batches, accuracy of 5-29, row 0 of batch 25) beside the "
                                   "full-test-set numbers.")
FAST_TEST = flags.DEFINE_boolean("fast_test", False, "official presets: evaluate the test set with batch 1 and "
                                 f"{FAST_TEST_STEPS}-step windows (the same perplexity, much faster) instead of the "
                                 "original batch-1, 1-step model.")
DECODE = flags.DEFINE_enum("decode", "sample", ["sample", "greedy"], "--mode=generate: sample from the softmax or "
                           "take the most likely word.")
DATA_PRINTS = flags.DEFINE_boolean("data_prints", True, "thomas: print what the original's load_data() printed "
                                    "(train_data[:5], the whole word_to_id dict, the vocabulary size, the first 10 "
                                    "words); --nodata_prints leaves them out.")
EXACT_STEP_SECONDS = flags.DEFINE_boolean("exact_step_seconds", False, "thomas: print the measured seconds "
                                           "per step (the original printed whole seconds since the last print "
                                           "/ 50).")
TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "--mode=generate with --decode=sample: softmax temperature.",
                                 lower_bound=0.0)
flags.adopt_module_key_flags(cli)


def main(argv):
    preset, mode, run_dir = cli.resolve_common(APP, PRESETS, "small", ("train", "test", "generate"), argv)
    rnn_mode = RNN_MODE.value or (None if flags.FLAGS["cell"].using_default_value else cli.CELL.value)
    if rnn_mode not in (None, "basic", "block"):
        raise ValueError(f"--cell={rnn_mode}: the PTB app supports basic and block (--rnn_mode)")
    if mode == "train":
        paths = ptb_data.locate(cli.resolve_data_dir())
        result = train(paths, run_dir, preset, cli.SEED.value, cli.MAX_EPOCHS.value, rnn_mode, TIE_LAYERS.value,
                       exact_step_seconds=EXACT_STEP_SECONDS.value, data_prints=DATA_PRINTS.value)
        print(f"Run directory: {run_dir} ({len(result['curve'])}/{result['config'].epochs} epochs done)")
        if result["finished"]:
            test(paths, run_dir, fast=FAST_TEST.value, thomas_test=THOMAS_TEST.value)
        return 0
    # the run's own settings are used: a flag given with another value is an error
    cli.check_given_flags(run_dir, aliases={"rnn_mode": "cell"})
    if mode == "test":
        test(ptb_data.locate(cli.resolve_data_dir()), run_dir, cli.CHECKPOINT.value, FAST_TEST.value,
             THOMAS_TEST.value)
        return 0
    if cli.PROMPT.value is None:
        print('error: --mode=generate needs --prompt, e.g. --prompt "the stock market"', file=sys.stderr)
        return 1
    seed = cli.SEED.value
    with Generator(run_dir, cli.CHECKPOINT.value) as generator:
        print(generator.text(cli.PROMPT.value, cli.NUM_WORDS.value, DECODE.value, TEMPERATURE.value,
                             np.random.default_rng(seed), notice=lambda s: print(s, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    cli.run(main)
