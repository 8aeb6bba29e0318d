"""TF 1.15 oracle for legacy_lstm/essentials.py: the Deep Learning Essentials ``lstm_model`` graph, toy sizes.

Run under Python 3.7 + TensorFlow 1.15.5 (tests/tf1_oracle/README.md): ``python scripts/tf1_oracle/essentials.py``
(or import it and call ``make()``). Written from the description of the book's code in legacy_lstm/essentials.py (module
docstring), in its order:

    labels   placeholder float64 [batch, classes]; raw_data placeholder int32 [batch, max_length]
    data     tf.Variable(tf.zeros([batch, max_length, dim]), dtype=tf.float32): dead code, overwritten by
    data     tf.nn.embedding_lookup(word_vectors, raw_data) with word_vectors a float64 numpy array (a constant)
    weight   Variable(truncated_normal([units, classes])); bias Variable(constant(0.1, [classes]))  (float32)
    cell     tf.contrib.rnn.BasicLSTMCell(units) in DropoutWrapper(output_keep_prob=...)
    output   tf.nn.dynamic_rnn(wrapped, data, dtype=tf.float64), transposed to time-major, gather(T - 1)
    logits   weight, last, bias cast to float64, then matmul(last, weight) + bias
    loss     reduce_mean(softmax_cross_entropy_with_logits(logits, labels)); AdamOptimizer() (lr 0.001, beta1
             0.9, beta2 0.999, epsilon 1e-8)

Differences from the book, on purpose: output_keep_prob is 1.0 (dropout off; TF 1.15 and TF 2 draw different
random numbers, so only the dropout-free function can be compared; a Python float 1.0 makes DropoutWrapper skip
the dropout op), and an argmax accuracy op is added (it has no variable). The toy sizes are tiny (see CONFIG)
and the word vectors are a fixed seeded numpy array stored in case.npz.

Case ``essentials`` (tests/tf1_oracle/essentials/, checked by tests/test_oracle_essentials.py): 4 Adam steps,
each on its own fixed batch.
"""

import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (the folder is not a package; this keeps the script runnable by path)

CONFIG = {"batch_size": 4, "lstm_units": 5, "num_classes": 2, "max_sequence_length": 4, "embedding_dimension": 6,
          "output_keep_prob": 1.0}
VOCAB = 15
STEPS = 4
SEED = 1


def lstm_model(word_vectors, batch_size, lstm_units, num_classes, max_sequence_length, embedding_dimension,
               output_keep_prob):
    """The book's graph; returns the tensors a training step and an evaluation need."""
    labels = tf.placeholder(tf.float64, [batch_size, num_classes])
    raw_data = tf.placeholder(tf.int32, [batch_size, max_sequence_length])
    data = tf.Variable(tf.zeros([batch_size, max_sequence_length, embedding_dimension]), dtype=tf.float32)
    data = tf.nn.embedding_lookup(word_vectors, raw_data)
    weight = tf.Variable(tf.truncated_normal([lstm_units, num_classes]))
    bias = tf.Variable(tf.constant(0.1, shape=[num_classes]))
    lstm_cell = tf.contrib.rnn.BasicLSTMCell(lstm_units)
    wrapped_lstm_cell = tf.contrib.rnn.DropoutWrapper(cell=lstm_cell, output_keep_prob=output_keep_prob)
    output, state = tf.nn.dynamic_rnn(wrapped_lstm_cell, data, dtype=tf.float64)
    output = tf.transpose(output, [1, 0, 2])
    last = tf.gather(output, int(output.get_shape()[0]) - 1)
    weight = tf.cast(weight, tf.float64)
    last = tf.cast(last, tf.float64)
    bias = tf.cast(bias, tf.float64)
    prediction = tf.matmul(last, weight) + bias
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=prediction, labels=labels))
    optimizer = tf.train.AdamOptimizer().minimize(loss)
    correct = tf.equal(tf.argmax(prediction, 1), tf.argmax(labels, 1))  # not in the book
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float64))
    return raw_data, labels, prediction, loss, optimizer, accuracy, state


def batches(seed):
    """STEPS fixed batches: ids int32 [STEPS, batch, max_length] in [0, VOCAB), one-hot labels float64."""
    rng = np.random.RandomState(seed)
    shape = [STEPS, CONFIG["batch_size"], CONFIG["max_sequence_length"]]
    x = rng.randint(0, VOCAB, shape).astype(np.int32)
    classes = rng.randint(0, CONFIG["num_classes"], shape[:2])
    classes[:, :2] = [0, 1]  # both classes in every batch
    return x, np.eye(CONFIG["num_classes"], dtype=np.float64)[classes]


def make():
    folder = common.case_dir("essentials")
    rng = np.random.RandomState(SEED)
    word_vectors = rng.random_sample([VOCAB, CONFIG["embedding_dimension"]])  # float64 uniform [0, 1), the book's
    xs, ys = batches(SEED + 1)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(SEED)
        raw_data, labels, prediction, loss, optimizer, accuracy, state = lstm_model(word_vectors, **CONFIG)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            common.save(sess, folder, common.INIT)
            names = common.variable_names()
            losses, accs, logits = [], [], []
            for x, y in zip(xs, ys):
                _, cost, acc, p = sess.run([optimizer, loss, accuracy, prediction], {raw_data: x, labels: y})
                losses.append(cost)
                accs.append(acc)
                logits.append(p)
            common.save(sess, folder, common.TRAINED)
            final_logits, final_losses = [], []
            for x, y in zip(xs, ys):
                p, cost = sess.run([prediction, loss], {raw_data: x, labels: y})
                final_logits.append(p)
                final_losses.append(cost)
    logits, final_logits = np.stack(logits), np.stack(final_logits)
    arrays = {"word_vectors": word_vectors, "x": xs, "y": ys, "losses": np.array(losses),
              "accuracies": np.array(accs), "logits": logits, "predictions": np.argmax(logits, -1),
              "final_logits": final_logits, "final_predictions": np.argmax(final_logits, -1),
              "final_losses": np.array(final_losses)}
    meta = {"app": "essentials", "case": "essentials", "steps": STEPS, "seed": SEED, "config": CONFIG,
            "vocab": VOCAB, "variables": names,
            "note": "the book's lstm_model at toy sizes, dropout off (output_keep_prob 1.0), Adam defaults",
            "array_notes": {
                "word_vectors": "float64 [vocab, dim]: the embedding constant (numpy array in the graph)",
                "x": "int32 [steps, batch, max_length]: raw_data fed at each step",
                "y": "float64 [steps, batch, classes]: one-hot labels fed at each step",
                "losses": "float64 loss returned by each training step (before its update)",
                "accuracies": "accuracy returned by each training step (before its update)",
                "logits": "float64 prediction returned by each training step [steps, batch, classes]",
                "predictions": "argmax of logits [steps, batch]",
                "final_logits": "prediction on each batch of x after the last step",
                "final_predictions": "argmax of final_logits",
                "final_losses": "loss on each batch of x after the last step"}}
    common.write_case(folder, arrays, meta)
    return folder


if __name__ == "__main__":
    make()
