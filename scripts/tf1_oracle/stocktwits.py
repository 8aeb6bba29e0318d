"""TF 1.15 oracle for the StockTwits app: Hoffman's original graph, at tiny sizes, under real TensorFlow 1.15.

Run with Python 3.7 + TensorFlow 1.15.5 (tf.contrib present)::

    /path/to/py37-tf1.15/bin/python scripts/tf1_oracle/stocktwits.py

It writes three cases, one per LSTM cell, under tests/tf1_oracle/ (see scripts/tf1_oracle/common.py for the
layout); tests/test_oracle_stocktwits.py checks legacy_lstm/stocktwits.py ``build_graph`` against them.

    stocktwits_basic              tf.contrib.rnn.BasicLSTMCell (the original's cell; forget_bias 1)
    stocktwits_block              tf.contrib.rnn.LSTMBlockCell (forget_bias 1, no cell clip, no peepholes)
    stocktwits_cudnn_compatible   tf.contrib.cudnn_rnn.CudnnCompatibleLSTMCell (forget_bias 0)

The graph is the notebook's (described in legacy_lstm/stocktwits.py): a ``tf.Variable`` embedding drawn from
uniform(-1, 1), a MultiRNNCell of two DropoutWrapper(cell, output_keep_prob) layers, ``dynamic_rnn`` from a
zero state of the fixed batch size, ``fully_connected`` with a sigmoid on the last time step's output, mean squared
error, Adadelta (rho 0.95, epsilon 1e-8 by default). Training feeds keep_prob 1 and carries the LSTM state from
step to step as the original's training loop does (the final state of step i is the initial state of step i+1,
starting from zeros).

TF 1.15 difference noted: with LSTMBlockCell and CudnnCompatibleLSTMCell, an ``inputs`` placeholder of shape
[None, None] (the original's) fails to build: ``dynamic_rnn`` raises "Input tensor
'MultiRNNCellZeroState/LSTMBlockCellZeroState/zeros:0' enters the loop with shape (4, 8), but has shape (?, 8)
after one iteration" because the block cell's output loses the static batch of the fixed-batch zero state. Those
two cases therefore use a placeholder of shape [batch_size, None]; the basic case keeps [None, None]. The
placeholder's shape changes no variable and no number.
"""

import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (the folder is not a package; this keeps the script runnable by path)

CASES = ("stocktwits_basic", "stocktwits_block", "stocktwits_cudnn_compatible")
CELLS = {"stocktwits_basic": "basic", "stocktwits_block": "block",
         "stocktwits_cudnn_compatible": "cudnn_compatible"}

# Tiny sizes. The learning rate is 10x the original's 0.1: with Adadelta's tiny first steps (about
# lr * sqrt(eps / (1 - rho)) = lr * 4.5e-4 per weight) the original rate would move the weights by ~1e-4 in
# 4 steps, too close to the test tolerance to make the fixtures discriminating.
CONFIG = {"vocab_size": 30, "embed_size": 8, "lstm_sizes": [8, 4], "batch_size": 4, "seq_len": 6,
          "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-8, "keep_prob": 1.0, "steps": 4, "seed": 1234}


def make_cell(kind, size):
    if kind == "basic":
        return tf.contrib.rnn.BasicLSTMCell(size)
    if kind == "block":
        return tf.contrib.rnn.LSTMBlockCell(size)
    if kind == "cudnn_compatible":
        return tf.contrib.cudnn_rnn.CudnnCompatibleLSTMCell(size)
    raise ValueError(kind)


def build_graph(kind, config=CONFIG):
    """The notebook's graph (model_inputs, build_embedding_layer, build_lstm_layers, build_cost_fn_and_opt,
    build_accuracy), in its order, so that the variables get the names TF 1.x gave them."""
    batch = config["batch_size"]
    # See the module docstring: the block cells need the batch in the placeholder under TF 1.15.
    inputs = tf.placeholder(tf.int32, [None, None] if kind == "basic" else [batch, None], name="inputs")
    labels = tf.placeholder(tf.int32, [None, None], name="labels")
    keep_prob = tf.placeholder(tf.float32, name="keep_prob")
    embedding = tf.Variable(tf.random_uniform((config["vocab_size"], config["embed_size"]), -1, 1))
    embed = tf.nn.embedding_lookup(embedding, inputs)
    layers = [tf.contrib.rnn.DropoutWrapper(make_cell(kind, size), output_keep_prob=keep_prob)
              for size in config["lstm_sizes"]]
    cell = tf.contrib.rnn.MultiRNNCell(layers)
    initial_state = cell.zero_state(batch, tf.float32)
    outputs, final_state = tf.nn.dynamic_rnn(cell, embed, initial_state=initial_state)
    predictions = tf.contrib.layers.fully_connected(outputs[:, -1], 1, activation_fn=tf.sigmoid)
    loss = tf.losses.mean_squared_error(labels, predictions)
    optimizer = tf.train.AdadeltaOptimizer(config["learning_rate"], rho=config["rho"], epsilon=config["epsilon"])
    train_op = optimizer.minimize(loss)
    correct = tf.equal(tf.cast(tf.round(predictions), tf.int32), labels)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    return {"inputs": inputs, "labels": labels, "keep_prob": keep_prob, "initial_state": initial_state,
            "final_state": final_state, "predictions": predictions, "loss": loss, "train_op": train_op,
            "accuracy": accuracy}


def batches(config=CONFIG, seed=2017):
    """``steps + 1`` fixed batches (the last one is for evaluation after training): left-padded id rows (some
    leading zeros, as the original's padding gives) and 0/1 labels of shape [batch, 1]."""
    rng = np.random.RandomState(seed)
    n, b, t = config["steps"] + 1, config["batch_size"], config["seq_len"]
    x = rng.randint(1, config["vocab_size"], size=(n, b, t)).astype(np.int32)
    lengths = rng.randint(2, t + 1, size=(n, b))
    for i in range(n):
        for j in range(b):
            x[i, j, :t - lengths[i, j]] = 0
    y = rng.randint(0, 2, size=(n, b, 1)).astype(np.int32)
    return x, y


def state_feed(model, state):
    return dict(zip(tf.nest.flatten(model["initial_state"]), tf.nest.flatten(state)))


def zero_state(config=CONFIG):
    return tuple(tf.nn.rnn_cell.LSTMStateTuple(np.zeros((config["batch_size"], n), np.float32),
                                               np.zeros((config["batch_size"], n), np.float32))
                 for n in config["lstm_sizes"])


def stack_states(states):
    """[steps] of ((c0, h0), (c1, h1)) -> {final_state_l<i>: [steps, 2 (c, h), batch, units]}."""
    out = {}
    for layer in range(len(states[0])):
        out["final_state_l%d" % layer] = np.stack([np.stack([s[layer].c, s[layer].h]) for s in states])
    return out


def run_case(name, config=CONFIG, root=common.FIXTURES):
    kind = CELLS[name]
    x, y = batches(config)
    k = config["steps"]
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(config["seed"])
        model = build_graph(kind, config)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            folder = common.case_dir(name, root)
            common.save(sess, folder, common.INIT)
            state = zero_state(config)
            losses, accs, preds, states = [], [], [], []
            for i in range(k):
                feed = {model["inputs"]: x[i], model["labels"]: y[i], model["keep_prob"]: config["keep_prob"]}
                feed.update(state_feed(model, state))
                loss, state, _, acc, pred = sess.run([model["loss"], model["final_state"], model["train_op"],
                                                      model["accuracy"], model["predictions"]], feed)
                losses.append(loss)
                accs.append(acc)
                preds.append(pred)
                states.append(state)
            common.save(sess, folder, common.TRAINED)
            # After training: the held-out batch from a zero state, keep_prob 1 (the original's evaluation).
            feed = {model["inputs"]: x[k], model["labels"]: y[k], model["keep_prob"]: 1.0}
            feed.update(state_feed(model, zero_state(config)))
            eval_loss, eval_acc, eval_pred = sess.run([model["loss"], model["accuracy"], model["predictions"]], feed)
            names = common.variable_names()
    arrays = {"inputs": x[:k], "labels": y[:k], "losses": np.array(losses, np.float32),
              "accuracies": np.array(accs, np.float32), "predictions": np.stack(preds),
              "eval_inputs": x[k], "eval_labels": y[k], "eval_loss": np.float32(eval_loss),
              "eval_accuracy": np.float32(eval_acc), "eval_predictions": eval_pred}
    arrays.update(stack_states(states))
    meta = {"app": "stocktwits", "cell": kind, "config": config, "steps": k, "variables": names,
            "inputs_placeholder": "[None, None]" if kind == "basic" else "[batch_size, None]",
            "what": {
                "inputs": "[steps, batch, seq_len] int32 ids fed at each training step (left-padded with 0)",
                "labels": "[steps, batch, 1] int32 labels fed at each training step",
                "losses": "[steps] MSE loss of each training step (forward pass of that step, before its update)",
                "accuracies": "[steps] accuracy of each training step",
                "predictions": "[steps, batch, 1] sigmoid outputs of each training step",
                "final_state_l0": "[steps, 2 (c, h), batch, lstm_sizes[0]] final state of layer 0 after each step; "
                                  "step i+1 starts from step i's (step 0 from zeros)",
                "final_state_l1": "[steps, 2 (c, h), batch, lstm_sizes[1]] same for layer 1",
                "eval_inputs": "[batch, seq_len] a held-out batch, run after training from a zero state, keep_prob 1",
                "eval_labels": "[batch, 1] its labels",
                "eval_loss": "scalar loss on the held-out batch after training",
                "eval_accuracy": "scalar accuracy on the held-out batch after training",
                "eval_predictions": "[batch, 1] predictions on the held-out batch after training"}}
    common.write_case(folder, arrays, meta)
    return folder


def make(root=common.FIXTURES):
    """Write every StockTwits case; returns their folders."""
    return [run_case(name, root=root) for name in CASES]


if __name__ == "__main__":
    tf.logging.set_verbosity(tf.logging.ERROR)
    for path in make():
        print("wrote", path)
