r"""PTB word language model: Andy Thomas's adventuresinML tutorial, "Recurrent neural networks and LSTM tutorial
in Python and TensorFlow" (2017).

Source: adventuresinML/adventures-in-ml-code ``lstm_tutorial.py``, written from the official TF ``ptb_word_lm``
(legacy_lstm/ptb.py); its reading functions are ptb_word_lm's ``reader.py`` (legacy_lstm/data/ptb.py).

Reproduction contract
---------------------
Commands (each epoch is checkpointed; rerunning the same command resumes from the last finished epoch)::

    python -m legacy_lstm.ptb_thomas --seed=2017              # 60 epochs; the test uses epoch index 38's checkpoint
    python -m legacy_lstm.ptb_thomas --mode=test
    python scripts/reproduce.py ptb --preset=thomas           # train + test + results/ptb-thomas.{json,png}

``python -m legacy_lstm.ptb --preset=thomas`` (where this tutorial lived before) still works: it says so and runs
this app.

Published number (``legacy_lstm/published/ptb.json``, preset ``thomas``) and the band a reproduction must meet:
the test "Average accuracy" (batches 5-29 of 30) 0.283 ± 0.02. Thomas's blog logged two training lines
("Epoch 9, Step 1850, cost: 96.185, accuracy: 0.198") that cannot come from the published code (an epoch has
1,327 steps); they are kept in the published file as notes, not as a curve. No per-epoch curve was published.

Presets (``--preset``)
    thomas (default)  init_scale 0.05 (embedding and softmax only; the LSTM kernel is Glorot), clip 5, 2 layers,
                      35 steps, hidden 650, keep_prob 0.5, forget_bias 1.0, batch 20, vocabulary 10,000, SGD from
                      learning rate 1.0 decayed by 0.93 per epoch after epoch 10
                      (``1.0 * 0.93 ** max(epoch_index + 1 - 10, 0)``), 60 epochs.
    test              the same graph at hidden 16, 5 steps, 2 epochs, the test checkpoint after epoch 1: a smoke run.

The graph
    ``Input`` and ``Model`` as lstm_tutorial.py: ``tf.Variable`` embedding and softmax (uniform ±0.05; names
    ``Variable``, ``Variable_1``, ``Variable_2``, learning rate ``Variable_3``), input dropout,
    ``LSTMCell(650, forget_bias=1.0)`` (Glorot kernel) wrapped in ``DropoutWrapper(output_keep_prob)``,
    ``init_state`` placeholder [layers, 2, batch, hidden] unstacked into ``LSTMStateTuple``s, ``dynamic_rnn``,
    cost = sum over the 35 steps of the batch-mean cross-entropy, accuracy of the argmax of the softmax, lr variable
    + assign op, clip 5, SGD. Each batch's final state is fed back as the next initial state; each epoch starts from
    zeros. The log line every 50 steps: ``Epoch 0, Step 50, cost: ..., accuracy: ..., Seconds per step: ...``
    (0-based epoch; seconds per step as the original computed them: whole seconds since the last print / 50).
    ``--rnn_mode=block`` uses the raw LSTMBlockCell op with forget_bias 1 (same function, same names).

Quirks of the original, reproduced by default, each switchable
    --data_prints     training starts with what the original's ``load_data()`` printed:
                      ``[9970, 9971, 9972, 9974, 9975]``, the whole word_to_id dict (10,000 entries), ``10000``
                      and the first 10 training words. ``--nodata_prints`` leaves them out.
    --exact_step_seconds  the log's "Seconds per step" is the original's coarse whole seconds since the last
                      print / 50 (0.000 at step 0); this flag prints the measured value instead.
    --tie_layers      ``MultiRNNCell([cell for _ in range(2)])`` holds the *same* cell object twice, so since TF 1.2
                      both layers share one kernel (``rnn/multi_rnn_cell/cell_0/lstm_cell/kernel`` [1300, 2600];
                      there is no cell_1). ``--notie_layers`` gives each layer its own weights.
    --thomas_test     ``--mode=test`` restores the checkpoint after epoch index 38 (saved under the original's name
                      ``two-layer-lstm-medium-config-60-epoch-0p93-lr-decay-10-max-lr-38``; the newest checkpoint
                      if that one does not exist yet), runs 30 test batches (batch 20, 35 steps, state carried),
                      averages the accuracy of batches 5-29 ("Average accuracy: 0.283" published) and prints row 0
                      of batch 25 decoded with the reverse dictionary (true words, then predictions). Beside it, and
                      not in the original, the same pass continued over all 117 test batches gives a full-test-set
                      perplexity and accuracy. ``--nothomas_test`` prints only the full-test-set numbers.
    (not switchable)  Thomas never uses ``valid_data`` and reports no perplexity; ``train_perplexity``
                      = exp(mean cost / 35) is added to its curve as a diagnostic. Accuracy is fetched only at
                      the printed steps (as the original), so the curve's ``train_accuracy`` is the mean of those
                      27 steps per epoch.

Data: ``ptb/ptb.{train,valid,test}.txt`` (sha256 in legacy_lstm/data/download.py) in ``--data_dir`` (default
``$LEGACY_LSTM_DATA``, else ``~/.cache/legacy_lstm``), downloaded when missing and reachable.

Deliberate differences
    - Checkpoints: ``model.ckpt-<epoch>`` after every epoch with a manifest (resume, checked restore) instead of
      the original's Windows-path names; the epoch-index-38 checkpoint and ``-final`` keep the original names.
    - ``--seed`` seeds Python, NumPy and TF and runs dynamic_rnn with parallel_iterations=1 (deterministic
      dropout); the original is unseeded. The fetched state is stacked in the graph before it is fed back (the
      original converted the nested tuple with numpy): the same values.
    - A NaN loss stops training with a clear error; the last good checkpoint is kept.

Generation (not in the original)::

    python -m legacy_lstm.ptb_thomas --mode=generate --prompt "the stock market" --num_words 20

On a cluster (TF1's ps/worker flags; legacy_lstm/distributed.py): each worker trains on its contiguous piece of the
training text; the chief writes the run directory, the epoch-index-38 checkpoint included::

    python -m legacy_lstm.cluster -- python -m legacy_lstm.ptb_thomas --preset=test --run_dir=runs/thomas-cluster
"""

import contextlib
import dataclasses
import json
import pathlib
import time

import numpy as np
from absl import flags

from legacy_lstm import cli
from legacy_lstm import distributed
from legacy_lstm import fast_lstm
from legacy_lstm import ptb_common as common
from legacy_lstm import published
from legacy_lstm import runs
from legacy_lstm import training
from legacy_lstm.compat import sequence_loss, tf, tf1
from legacy_lstm.data import ptb as ptb_data
from legacy_lstm.ptb_common import Config, make_multi_cell

APP = "ptb_thomas"
PUBLISHED_APP = "ptb"  # the published numbers are in published/ptb.json, preset "thomas"
THOMAS_NAME = "two-layer-lstm-medium-config-60-epoch-0p93-lr-decay-10-max-lr"
THOMAS_STATE_FILE = "thomas_checkpoint"  # the Saver state file of the original-named checkpoints
HIS_TEST = "thomas_test.json"  # his checkpoint's test report and the sha256 of the checkpoint's files

PRESETS = {
    "thomas": Config(style="thomas", init_scale=0.05, num_steps=35, hidden_size=650, epochs_at_initial_lr=10,
                     epochs=60, keep_prob=0.5, lr_decay=0.93, forget_bias=1.0, rnn_mode="basic", tie_layers=True,
                     test_epoch=39),
    "test": Config(style="thomas", init_scale=0.05, num_steps=5, hidden_size=16, epochs_at_initial_lr=1, epochs=2,
                   keep_prob=0.5, lr_decay=0.93, forget_bias=1.0, rnn_mode="basic", tie_layers=True, test_epoch=1),
}


def published_numbers(preset="thomas"):
    return published.load(PUBLISHED_APP)["presets"][preset]


def _check_style(config):
    if config.style != "thomas":
        raise ValueError(f"legacy_lstm.ptb_thomas trains Thomas's graph (style 'thomas'), got style {config.style!r}: "
                         "the official presets are legacy_lstm.ptb's")


# ---------------------------------------------------------------------------------------------------------
# The graph (lstm_tutorial.py)
# ---------------------------------------------------------------------------------------------------------
class Input:
    """lstm_tutorial.py's Input: the queue producer over ``data`` and its epoch size."""

    def __init__(self, batch_size, num_steps, data):
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.epoch_size = ((len(data) // batch_size) - 1) // num_steps
        self.input_data, self.targets, _ = ptb_data.batch_producer(data, batch_size, num_steps)


class Model:
    """lstm_tutorial.py's Model class (adventuresinML/adventures-in-ml-code), in its order of variable creation."""

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
        rnn = fast_lstm.dynamic_rnn if config.rnn_mode == "fused" else tf1.nn.dynamic_rnn
        output, self.state = rnn(cell, inputs, dtype=tf.float32, initial_state=rnn_tuple_state,
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
        # distributed.optimizer: the optimizer itself in one process; replicated on a cluster
        optimizer = distributed.optimizer(tf1.train.GradientDescentOptimizer(self.learning_rate))
        self.train_op = optimizer.apply_gradients(zip(grads, tvars),
                                                  global_step=tf1.train.get_or_create_global_step())
        self.new_lr = tf1.placeholder(tf.float32, shape=[])
        self.lr_update = tf1.assign(self.learning_rate, self.new_lr)

    def zero_state(self, config):
        return np.zeros((config.num_layers, 2, self.batch_size, config.hidden_size), dtype=np.float32)

    def assign_lr(self, session, lr_value):
        session.run(self.lr_update, feed_dict={self.new_lr: lr_value})


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------
def thomas_data_lines(train_data, word_to_id):
    """What lstm_tutorial.py's ``load_data()`` printed: ``train_data[:5]`` ([9970, 9971, 9972, 9974, 9975] on
    PTB), the whole word_to_id dict, the vocabulary size, and the first 10 training words."""
    reverse = {i: w for w, i in word_to_id.items()}
    return [str([int(i) for i in train_data[:5]]), str(word_to_id), str(len(word_to_id)),
            " ".join(reverse[int(i)] for i in train_data[:10])]


def train(paths, run_dir, preset="thomas", seed=None, max_epochs=None, rnn_mode=None, tie_layers=None, log=print,
          exact_step_seconds=False, data_prints=True, progress=False, cluster=None):
    """Train (resuming from ``run_dir``, with the run's own seed); ``paths`` = (train, valid, test) files.
    Returns {"curve", "run_dir", "seed", "finished", "seconds", "config"}. ``max_epochs`` counts epochs in
    total. ``exact_step_seconds``: the log line shows the measured seconds per step instead of the original's
    whole seconds / 50. ``data_prints``: log what the original's ``load_data()`` printed (``thomas_data_lines``).
    ``cluster``: a worker task's ``legacy_lstm.distributed.Cluster`` (None: one process); the worker trains on its
    contiguous piece of the training text, and the chief alone writes the run directory (the epoch-38 checkpoint
    included)."""
    preset_name, config = common.resolve_config(PRESETS, preset, rnn_mode=rnn_mode, tie_layers=tie_layers)
    _check_style(config)
    cli.epochs_to_run(config.epochs, max_epochs)  # a usage error before any data is read
    train_data, _, _, word_to_id = common.load(paths, config)
    if data_prints:
        for line in thomas_data_lines(train_data, word_to_id):
            log(line)
    saved = distributed.saved_manifest(run_dir, cluster, log)  # a worker: the chief's
    seed = training.resolve_seed(saved, seed)
    config = common.resume_on(config, saved)  # a block/basic run may resume on fused (and back): same variables
    manifest = common.make_manifest(APP, preset_name, config, word_to_id, seed, len(train_data))
    if cluster is not None:
        train_data = cluster.shard_tokens(train_data)
    result = training.train(_ThomasLoop(config, train_data, seed, exact_step_seconds), run_dir, manifest,
                            config.epochs, max_epochs, seed, vocab=word_to_id, log=log, progress=progress,
                            cluster=cluster)
    result["config"] = config
    return result


class _ThomasLoop(training.Loop):
    session_config = common.SESSION_CONFIG
    final_name = f"{THOMAS_NAME}-final"

    def __init__(self, config, train_data, seed, exact_step_seconds):
        self.config, self.train_data, self.seed, self.exact_step_seconds = config, train_data, seed, exact_step_seconds

    def build(self):
        self.input = Input(self.config.batch_size, self.config.num_steps, self.train_data)
        return Model(self.input, True, self.config, parallel_iterations=1 if self.seed is not None else None)

    def start(self, sitting):
        m = sitting.model
        # The original kept the last 5 per-epoch checkpoints; the epoch-index-38 one its test loads is kept here
        # under its original name by a second Saver that deletes nothing (the chief's, on a cluster).
        self.keeper = None
        if sitting.is_chief:
            self.keeper = tf1.train.Saver(var_list=sitting.run.var_list, max_to_keep=None, save_relative_paths=True)
        self.step = sitting.sess.make_callable([m.cost, m.train_op, m.state_array], feed_list=[m.init_state])
        self.step_print = sitting.sess.make_callable([m.cost, m.train_op, m.state_array, m.accuracy],
                                                     feed_list=[m.init_state])

    def context(self, sitting):
        return ptb_data.queue_runners(sitting.sess)

    def epoch(self, sitting, epoch):
        config, sess = self.config, sitting.sess
        lr = config.learning_rate_at(epoch - 1)
        sitting.model.assign_lr(sess, lr)
        row = thomas_epoch(self.step, self.step_print, sitting.model.zero_state(config), self.input.epoch_size,
                           epoch - 1, config, sitting.log, self.exact_step_seconds, sitting)
        row["learning_rate"] = lr
        row["cell"] = fast_lstm.path_name(config.rnn_mode)  # the path that trained this epoch
        # the kept checkpoint first: a kill between the two saves retrains this epoch and rewrites it
        if self.keeper is not None and config.test_epoch is not None and epoch == config.test_epoch:
            self.keeper.save(sess, str(sitting.run.dir / THOMAS_NAME), global_step=epoch - 1,
                             latest_filename=THOMAS_STATE_FILE, write_meta_graph=False)
        return row

    def summaries(self, row):
        return {"train": {k: row[k] for k in ("cost", "train_perplexity", "train_accuracy")}}


def thomas_epoch(step, step_print, zero_state, epoch_size, epoch, config, log=print, exact_step_seconds=False,
                 sitting=None):
    """One epoch of lstm_tutorial.py's train loop: state from zeros, carried batch to batch; every
    ``print_iter`` steps (from step 0) the accuracy is fetched too and the original's line printed, its
    "Seconds per step" the original's whole seconds since the last print / print_iter (``exact_step_seconds``:
    the measured value). The curve row: mean cost, its per-word perplexity, and the mean accuracy of the
    printed steps."""
    current_state = zero_state
    costs, accs, ran = 0.0, [], 0
    start = time.time()
    t_print = start
    steps = range(epoch_size)
    if sitting:  # one process: every step; a cluster worker: its steps over its own piece of the data
        epoch_size, steps = sitting.share(epoch_size, steps, split=False)
    with sitting.batches(epoch_size) if sitting else contextlib.nullcontext():
        for s in steps:
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
            training.check_finite(cost, f"epoch {epoch} step {s}")
            if sitting:
                sitting.tick()
            costs += float(cost)
            ran += 1
    ran = ran or float("nan")  # only a cluster worker that joined after the epoch's steps were taken
    mean_cost = costs / ran
    return {"epoch": epoch + 1, "cost": mean_cost, "train_perplexity": float(np.exp(mean_cost / config.num_steps)),
            "train_accuracy": float(np.mean(accs)) if accs else float("nan"),
            "seconds": round(time.time() - start, 3), "seconds_per_train_step": round((time.time() - start) / ran, 5)}


# ---------------------------------------------------------------------------------------------------------
# Test
# ---------------------------------------------------------------------------------------------------------
def load_run(run_dir):
    """(config, word_to_id, manifest) saved with the run in ``run_dir``."""
    opened = training.open_run(run_dir, APP)
    return Config(**opened.manifest["config"]), opened.vocab, opened.manifest


def thomas_checkpoint(run_dir, config):
    """The original's test checkpoint (epoch index test_epoch-1) if it was written, else None."""
    state = tf1.train.get_checkpoint_state(str(run_dir), latest_filename=THOMAS_STATE_FILE)
    if state is None or not state.model_checkpoint_path:
        return None
    path = state.model_checkpoint_path
    return path if tf1.train.checkpoint_exists(path) else None


def his_test(paths, run_dir, log=print):
    """His protocol on his epoch-index test_epoch-1 checkpoint: tested when the run dir holds it; when the run was
    carried here without it (``carry_skip``), the test of it recorded on the machine that wrote it (``HIS_TEST``),
    also written back as ``report.json``. FileNotFoundError when neither is there."""
    config, _, manifest = load_run(run_dir)
    if thomas_checkpoint(run_dir, config) is not None:
        return test(paths, run_dir, log=log)
    path = pathlib.Path(run_dir) / HIS_TEST
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} holds neither his test checkpoint ({THOMAS_NAME}-{config.test_epoch - 1})"
                                f" nor a recorded test of it ({HIS_TEST}): it cannot be tested here")
    recorded = runs.read_json(run_dir, HIS_TEST)
    log(f"{THOMAS_NAME}-{config.test_epoch - 1} was not carried here: its test recorded in {path} is used "
        f"(Average accuracy: {recorded['report'].get('thomas_accuracy')})")
    runs.atomic_write_text(pathlib.Path(run_dir) / common.REPORT,
                           json.dumps(recorded["report"], indent=1, default=str) + "\n")
    # the test's own wall time on the machine that ran it, not this lookup's
    return dict(recorded["report"], recorded_test_seconds=recorded["report"].get("test_seconds"))


def carry_skip(run_dir, newest):
    """The files a pack of ``run_dir`` (newest epoch checkpoint: prefix ``newest``) may leave out: his test
    checkpoint and its state file, once its test is recorded (``HIS_TEST``, sha256 and all) and its bytes are not
    the newest checkpoint's (then they cost nothing in a pack). A resume does not read them; ``his_test`` uses the
    record. Returns (names, reason)."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / HIS_TEST).exists():
        return [], None
    manifest = runs.read_manifest(run_dir) or {}
    test_epoch = (manifest.get("config") or {}).get("test_epoch")
    if test_epoch is None or max(runs.epoch_checkpoints(run_dir), default=0) < test_epoch:
        return [], None  # his epoch is not behind the newest checkpoint: a resume may write it again
    recorded = runs.read_json(run_dir, HIS_TEST)
    his = common.checkpoint_files(run_dir / recorded["checkpoint"])
    if not his or his != recorded["sha256"]:
        return [], None  # not the checkpoint that was tested (or gone): keep whatever is there
    if sorted(his.values()) == sorted(common.checkpoint_files(run_dir / newest).values()):
        return [], None
    return sorted(his) + [THOMAS_STATE_FILE], (f"{recorded['checkpoint']}: his test checkpoint, its test recorded in "
                                               f"{HIS_TEST}")


def test(paths, run_dir, checkpoint=None, thomas_test=True, log=print, newest=False):
    """Evaluate a trained run on the test set; writes ``run_dir/report.json`` and returns the report: the original
    protocol (``thomas_accuracy``, the decoded sentence pair) when ``thomas_test``, and the full-test-set
    ``test_perplexity``/``test_accuracy``. The checkpoint: ``checkpoint``, else his epoch-index-38 one when
    ``thomas_test`` and not ``newest``, else the run's newest."""
    config, word_to_id, manifest = load_run(run_dir)
    train_data, _, test_data, data_vocab = common.load(paths, config)
    common.check_vocab(data_vocab, word_to_id, run_dir)
    start = time.time()
    graph = tf.Graph()
    with graph.as_default():
        report = _test(graph, config, manifest, test_data, word_to_id, run_dir, checkpoint, thomas_test and not newest,
                       thomas_test, log)
    report = common.write_report(report, APP, manifest, run_dir, start)
    his = thomas_checkpoint(run_dir, config)
    if thomas_test and his is not None and report["checkpoint"] == his:  # recorded: a pack may leave it out
        runs.atomic_write_text(pathlib.Path(run_dir) / HIS_TEST, json.dumps(
            {"checkpoint": pathlib.Path(his).name, "sha256": common.checkpoint_files(his), "report": report},
            indent=1, default=str) + "\n")
    return report


def _test(graph, config, manifest, test_data, word_to_id, run_dir, checkpoint, his_checkpoint, thomas_test, log):
    reversed_dictionary = {i: w for w, i in word_to_id.items()}
    test_input = Input(config.batch_size, config.num_steps, test_data)
    m = Model(test_input, False, config)
    run = runs.Run(run_dir, manifest)
    if checkpoint is None and his_checkpoint:
        checkpoint = thomas_checkpoint(run_dir, config)
        if checkpoint is None:
            if (pathlib.Path(run_dir) / HIS_TEST).exists():
                log(f"note: {THOMAS_NAME}-{config.test_epoch - 1} was not carried here (its test is recorded in "
                    f"{HIS_TEST}, which scripts/reproduce.py reports); testing the newest one")
            else:
                log(f"note: no checkpoint after epoch {config.test_epoch} yet ({THOMAS_NAME}-"
                    f"{config.test_epoch - 1}); testing the newest one")
    with common.session(graph) as sess:
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
class Generator(common.Generator):
    """A trained model of ``run_dir`` with batch 1 and 1 step, state carried; use as a context manager."""

    def __init__(self, run_dir, checkpoint=None):
        config, self.word_to_id, manifest = load_run(run_dir)
        self.reverse = {i: w for w, i in self.word_to_id.items()}
        self.config = dataclasses.replace(config, batch_size=1, num_steps=1)
        self.graph = tf.Graph()
        with self.graph.as_default():
            feed = common.FeedInput(1, 1)
            model = Model(feed, False, self.config)
            self._zero = model.zero_state(self.config)
            self.sess = common.session(self.graph)
            self.checkpoint = runs.Run(run_dir, manifest).restore(self.sess, checkpoint)
            fn = self.sess.make_callable([model.logits, model.state_array], feed_list=[feed.input_data,
                                                                                     model.init_state])
            self._step = lambda x, state: fn(x, state)
        self.graph.finalize()


# ---------------------------------------------------------------------------------------------------------
# main: the only reader of flags
# ---------------------------------------------------------------------------------------------------------
THOMAS_TEST = flags.DEFINE_boolean("thomas_test", True, "--mode=test: the original protocol (checkpoint of "
                                   "epoch index 38, 30 batches, accuracy of 5-29, row 0 of batch 25) beside the "
                                   "full-test-set numbers.")
DATA_PRINTS = flags.DEFINE_boolean("data_prints", True, "Print what the original's load_data() printed "
                                    "(train_data[:5], the whole word_to_id dict, the vocabulary size, the first 10 "
                                    "words); --nodata_prints leaves them out.")
EXACT_STEP_SECONDS = flags.DEFINE_boolean("exact_step_seconds", False, "Print the measured seconds "
                                           "per step (the original printed whole seconds since the last print "
                                           "/ 50).")
flags.adopt_module_key_flags(cli)
flags.adopt_module_key_flags(common)


def main(argv):
    preset, mode, run_dir = cli.resolve_common(APP, PRESETS, "thomas", ("train", "test", "generate"), argv)
    cluster = cli.resolve_cluster(mode)
    rnn_mode = common.rnn_mode_flag()
    if cluster is not None and cluster.is_ps:
        return distributed.serve(cluster)

    def train_it(paths):
        return train(paths, run_dir, preset, cli.SEED.value, cli.MAX_EPOCHS.value, rnn_mode, common.TIE_LAYERS.value,
                     exact_step_seconds=EXACT_STEP_SECONDS.value, data_prints=DATA_PRINTS.value,
                     progress=cli.PROGRESS.value, cluster=cluster)
    if cluster is not None and not cluster.is_chief:  # a worker trains; the chief also tests, as one process does
        train_it(ptb_data.locate(cli.resolve_data_dir()))
        return 0
    return common.run_mode(
        mode, run_dir, train_it,
        lambda paths, checkpoint: test(paths, run_dir, checkpoint, thomas_test=THOMAS_TEST.value),
        Generator)


if __name__ == "__main__":
    cli.run(main)
