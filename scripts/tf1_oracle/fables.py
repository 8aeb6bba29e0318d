"""TF 1.15 oracle for legacy_lstm/fables.py: Atienza's rnn_words.py graph at toy sizes (run under TF 1.15.5).

Written from the description of the original in legacy_lstm/fables.py (module docstring): raw word ids fed as
one float feature [batch, n_input, 1], reshaped and split into n_input steps, ``tf.contrib.rnn.static_rnn``
over BasicLSTMCell (1 layer: the bare cell of the blog's Listing 3; 2 layers: MultiRNNCell of the "improved"
listing), logits = last output x W + b with W, b ``tf.random_normal`` (stddev 1) variables, mean softmax
cross-entropy on one-hot labels, ``RMSPropOptimizer(learning_rate)`` with the TF1 defaults (decay 0.9,
momentum 0, epsilon 1e-10) and an argmax accuracy. Each step is the original's
``session.run([optimizer, accuracy, cost, pred])`` on one fixed window (batch 1, as the original trains).

Cases (tests/tf1_oracle/<case>/, checked by tests/test_oracle_fables.py):
    fables           1 layer, batch 1, 6 steps on 6 non-overlapping windows (stride n_input + 1)
    fables_improved  2 layers (MultiRNNCell), 5 steps on batches of 2 windows: the original feeds one window,
                     but its graph takes any batch; two make the mean over the batch matter
    fables_long      1 layer, batch 1, 300 steps with the window offsets drawn as the original's loop draws them
                     (seeded): RMSProp's mean square starts at 1 in TF1 and only after many steps decays towards
                     the squared gradients, where epsilon (1e-10) changes the updates visibly

Run with a Python 3.7 + TF 1.15.5 interpreter (tests/tf1_oracle/README.md): ``python scripts/tf1_oracle/fables.py``
(or import it and call ``make()``).
"""

import os
import random
import sys

import numpy as np
import tensorflow as tf
from tensorflow.contrib import rnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

VOCAB_SIZE = 20
N_INPUT = 3
N_HIDDEN = 8
LEARNING_RATE = 0.001  # the original's
SEED = 2017
TEXT_TOKENS = 40       # length of the fixed "text" of ids the windows come from


def text_ids(seed):
    """A fixed toy text: ids in [0, VOCAB_SIZE), every id present (the original's dictionary covers the text)."""
    rng = np.random.RandomState(seed)
    ids = np.concatenate([np.arange(VOCAB_SIZE), rng.randint(0, VOCAB_SIZE, TEXT_TOKENS - VOCAB_SIZE)])
    rng.shuffle(ids)
    return ids.astype(np.int64)


def windows(ids, offsets):
    """(x float32 [len(offsets), N_INPUT, 1] raw ids as numbers, y one-hot float32 [len(offsets), VOCAB_SIZE])."""
    x = np.stack([ids[o:o + N_INPUT] for o in offsets]).astype(np.float32)[:, :, None]
    y = np.zeros([len(offsets), VOCAB_SIZE], np.float32)
    y[np.arange(len(offsets)), [ids[o + N_INPUT] for o in offsets]] = 1.0
    return x, y


def original_offsets(num_tokens, steps, seed):
    """The original loop's window starts: random in 0..n_input+1, then + n_input + 1, redrawn at the end."""
    rng = random.Random(seed)
    offset = rng.randint(0, N_INPUT + 1)
    out = []
    for _ in range(steps):
        if offset > num_tokens - (N_INPUT + 1):
            offset = rng.randint(0, N_INPUT + 1)
        out.append([offset])
        offset += N_INPUT + 1
    return out


def build(n_layers):
    """rnn_words.py's graph: placeholders, weights/biases dicts, RNN(), cost, RMSProp, accuracy."""
    x = tf.placeholder("float", [None, N_INPUT, 1])
    y = tf.placeholder("float", [None, VOCAB_SIZE])
    weights = {"out": tf.Variable(tf.random_normal([N_HIDDEN, VOCAB_SIZE]))}
    biases = {"out": tf.Variable(tf.random_normal([VOCAB_SIZE]))}

    def RNN(x, weights, biases):
        x = tf.reshape(x, [-1, N_INPUT])
        x = tf.split(x, N_INPUT, 1)
        if n_layers == 1:
            rnn_cell = rnn.BasicLSTMCell(N_HIDDEN)
        else:
            rnn_cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(N_HIDDEN) for _ in range(n_layers)])
        outputs, states = rnn.static_rnn(rnn_cell, x, dtype=tf.float32)
        return tf.matmul(outputs[-1], weights["out"]) + biases["out"]

    pred = RNN(x, weights, biases)
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=pred, labels=y))
    optimizer = tf.train.RMSPropOptimizer(learning_rate=LEARNING_RATE).minimize(cost)
    correct_pred = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))
    return x, y, pred, cost, optimizer, accuracy


def make_case(name, n_layers, batch_offsets, seed, note):
    """Build, save init, run one training step per batch, save trained, write case.npz/json."""
    folder = common.case_dir(name)
    ids = text_ids(seed)
    batches = [windows(ids, offsets) for offsets in batch_offsets]
    xs = np.stack([b[0] for b in batches])
    ys = np.stack([b[1] for b in batches])
    all_x, all_y = windows(ids, range(len(ids) - N_INPUT))  # every window, stride 1 (the port's window_hits)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        x, y, pred, cost, optimizer, accuracy = build(n_layers)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            common.save(sess, folder, common.INIT)
            names = common.variable_names()
            losses, accs, logits = [], [], []
            for bx, by in zip(xs, ys):
                _, acc, loss, onehot_pred = sess.run([optimizer, accuracy, cost, pred], {x: bx, y: by})
                losses.append(loss)
                accs.append(acc)
                logits.append(onehot_pred)
            common.save(sess, folder, common.TRAINED)
            final_logits = sess.run(pred, {x: all_x})
    arrays = {"x": xs, "y": ys, "losses": np.array(losses, np.float32), "accuracies": np.array(accs, np.float32),
              "logits": np.stack(logits), "predictions": np.argmax(np.stack(logits), -1),
              "text_x": all_x, "text_y": np.argmax(all_y, 1), "final_logits": final_logits,
              "final_predictions": np.argmax(final_logits, 1)}
    meta = {"app": "fables", "case": name, "steps": len(xs), "seed": seed, "note": note,
            "config": {"n_layers": n_layers, "n_hidden": N_HIDDEN, "n_input": N_INPUT,
                       "learning_rate": LEARNING_RATE, "vocab_size": VOCAB_SIZE, "batch_size": int(xs.shape[1])},
            "variables": names,
            "array_notes": {
                "x": "float32 [steps, batch, n_input, 1]: the windows fed at each step (raw ids as numbers)",
                "y": "float32 [steps, batch, vocab]: one-hot labels fed at each step",
                "losses": "cost returned by each training step (before its update)",
                "accuracies": "accuracy returned by each training step (before its update)",
                "logits": "pred returned by each training step [steps, batch, vocab]",
                "predictions": "argmax of logits [steps, batch]",
                "text_x": "every stride-1 window of the toy text [N, n_input, 1]",
                "text_y": "the label id of each window [N]",
                "final_logits": "pred on text_x after the last step [N, vocab]",
                "final_predictions": "argmax of final_logits [N]"}}
    common.write_case(folder, arrays, meta)
    return folder


def make():
    stride = N_INPUT + 1  # the original's non-overlapping windows
    make_case("fables", 1, [[o] for o in range(1, 1 + 6 * stride, stride)], SEED,
              "blog preset (Listing 3): one BasicLSTMCell, one window per step")
    make_case("fables_improved", 2, [[o, o + 2] for o in range(0, 5 * 7, 7)], SEED + 1,
              "improved preset (Listing 10): MultiRNNCell of two BasicLSTMCell; two windows per step")
    make_case("fables_long", 1, original_offsets(TEXT_TOKENS, 300, SEED), SEED + 2,
              "blog preset, 300 steps of one window, offsets as the original's loop draws them: long enough for "
              "RMSProp's mean square to decay from its initial 1 towards the squared gradients, where epsilon "
              "(1e-10) starts to matter")


if __name__ == "__main__":
    make()
