"""Reverse check, TF 1.15 side: a checkpoint our StockTwits app wrote must load in TF 1.15 and predict the same.

Run with Python 3.7 + TensorFlow 1.15.5, on the folder scripts/tf1_oracle/write_ours.py wrote (TF 2)::

    /path/to/py37-tf1.15/bin/python scripts/tf1_oracle/check_ours.py OUT_DIR

For each ``OUT_DIR/<cell>/`` it builds the original's graph with TF 1.15's own cell (scripts/tf1_oracle/stocktwits.py
``build_graph``) at the run's config, checks that the app's ``sentiment.ckpt`` holds exactly that graph's variables
(names and shapes, Adadelta slots included), restores them by name with a plain ``tf.train.Saver()`` (as the
original's test_network does; no renaming), predicts the messages of ours.npz from a zero state with keep_prob 1 and
compares with our predictions. Prints the max difference per cell; exits 1 when a cell is off by more than TOL.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stocktwits  # noqa: E402  (scripts/tf1_oracle/stocktwits.py, the TF 1.15 graph)

TOL = 1e-6  # float32 forward pass of the same kernels; measured differences are a few ulps


def check(folder):
    with open(os.path.join(folder, "ours.json")) as f:
        meta = json.load(f)
    ours = np.load(os.path.join(folder, "ours.npz"))
    config = dict(stocktwits.CONFIG, vocab_size=meta["vocab_size"], lstm_sizes=meta["lstm_sizes"],
                  embed_size=meta["embed_size"], batch_size=meta["batch_size"],
                  learning_rate=meta["learning_rate"])
    prefix = os.path.join(folder, meta["checkpoint"])
    graph = tf.Graph()
    with graph.as_default():
        model = stocktwits.build_graph(meta["cell"], config)
        wanted = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
        held = tf.train.NewCheckpointReader(prefix).get_variable_to_shape_map()
        if set(wanted) != set(held) or any(list(held[k]) != s for k, s in wanted.items()):
            raise AssertionError("%s: variables differ; only in TF 1.15's graph: %s; only in ours: %s; shapes: %s"
                                 % (folder, sorted(set(wanted) - set(held)), sorted(set(held) - set(wanted)),
                                    {k: (s, held[k]) for k, s in wanted.items() if k in held and list(held[k]) != s}))
        with tf.Session(graph=graph) as sess:
            tf.train.Saver().restore(sess, prefix)
            x, bs = ours["inputs"], config["batch_size"]
            predictions = []
            for start in range(0, len(x), bs):
                batch = np.zeros((bs, x.shape[1]), np.int32)  # the zero state fixes the batch size: pad it
                chunk = x[start:start + bs]
                batch[:len(chunk)] = chunk
                out = sess.run(model["predictions"], {model["inputs"]: batch, model["keep_prob"]: 1.0})
                predictions.append(out[:len(chunk), 0])
    predictions = np.concatenate(predictions)
    diff = float(np.max(np.abs(predictions.astype(np.float64) - ours["predictions"])))
    return diff, len(wanted), predictions


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: check_ours.py OUT_DIR (written by scripts/tf1_oracle/write_ours.py)")
    tf.logging.set_verbosity(tf.logging.ERROR)
    folders = sorted(os.path.join(argv[0], d) for d in os.listdir(argv[0])
                     if os.path.isfile(os.path.join(argv[0], d, "ours.json")))
    if not folders:
        sys.exit("no case in %s (expected <cell>/ours.json from write_ours.py)" % argv[0])
    failed = False
    for folder in folders:
        diff, n_vars, predictions = check(folder)
        ok = diff <= TOL
        failed |= not ok
        print("%-18s %s: TF 1.15 restored all %d variables of our sentiment.ckpt by name; %d predictions "
              "(%.3f..%.3f), max |TF 1.15 - ours| = %.3g (tolerance %g)"
              % (os.path.basename(folder), "OK  " if ok else "FAIL", n_vars, len(predictions), predictions.min(),
                 predictions.max(), diff, TOL))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
