"""TF 1.15: the first training steps of ptb_word_lm's LargeConfig on the real PTB train file, for several seeds.

Our PTB large run (results/ptb-large.json, docs/ptb.md) starts with a blow-up: its first log line, after 11 steps,
reads perplexity 32,892,896 (17.3 nats a word against a uniform 9.2), the same on our fused and basic paths. This
script asks the original framework the same question: ptb_word_lm's Train model (this folder's ptb.py, the
official graph at LargeConfig: init_scale 0.04, clip 10, 2 x 1500 units, 35 steps, batch 20, keep_prob 0.35,
learning rate 1.0), graph seed ``--seeds``, and prints per step the cost, the gradient's global norm before the
clip, and the running perplexity that ptb_word_lm's first log line shows ("0.008 perplexity: ..." is after 11
steps).

Run with a Python 3.7 + TF 1.15.5 interpreter (tests/tf1_oracle/README.md), the PTB files in --data_dir:

    python scripts/tf1_oracle/ptb_large_start.py --data_dir=DIR/ptb --seeds=2017,1,2,3 --steps=11

It needs no fixture and writes nothing: its output is quoted in docs/ptb.md.
"""

import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ptb as oracle  # noqa: E402


class LargeConfig(object):
    """ptb_word_lm.py's LargeConfig."""
    init_scale = 0.04
    learning_rate = 1.0
    max_grad_norm = 10
    num_layers = 2
    num_steps = 35
    hidden_size = 1500
    max_epoch = 14
    max_max_epoch = 55
    keep_prob = 0.35
    lr_decay = 1 / 1.15
    batch_size = 20
    vocab_size = 10000
    rnn_mode = "block"


def first_steps(train, config, seed, steps):
    """[(step, cost, global norm, running perplexity)] of the first ``steps`` training steps from graph seed
    ``seed``, as ptb_word_lm's run_epoch takes them (state fed back, learning rate assigned first)."""
    rows = []
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        initializer = tf.random_uniform_initializer(-config.init_scale, config.init_scale)
        with tf.name_scope("Train"):
            train_input = oracle.PTBInput(config=config, data=train, name="TrainInput")
            with tf.variable_scope("Model", reuse=None, initializer=initializer):
                m = oracle.PTBModel(is_training=True, config=config, input_=train_input)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            m.assign_lr(session, config.learning_rate)
            with oracle.Queues(session):
                state = session.run(m.initial_state)
                costs, iters = 0.0, 0
                for step in range(steps):
                    feed = {}
                    for i, (c, h) in enumerate(m.initial_state):
                        feed[c] = state[i].c
                        feed[h] = state[i].h
                    vals = session.run({"cost": m.cost, "final_state": m.final_state, "norm": m.global_norm,
                                        "train": m.train_op}, feed)
                    state = vals["final_state"]
                    costs += vals["cost"]
                    iters += config.num_steps
                    rows.append((step, float(vals["cost"]), float(vals["norm"]), float(np.exp(costs / iters))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True, help="the folder of ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    parser.add_argument("--seeds", default="2017,1,2,3")
    parser.add_argument("--steps", type=int, default=11)
    parser.add_argument("--rnn_mode", default="block", choices=("basic", "block"))
    args = parser.parse_args()
    train, _, _, word_to_id = oracle.ptb_raw_data(*[os.path.join(args.data_dir, "ptb.%s.txt" % s)
                                                     for s in ("train", "valid", "test")])
    config = LargeConfig()
    config.rnn_mode = args.rnn_mode
    assert len(word_to_id) == config.vocab_size
    print("TF %s, LargeConfig, rnn_mode %s, the first %d steps" % (tf.__version__, config.rnn_mode, args.steps))
    for seed in [int(s) for s in args.seeds.split(",")]:
        start = time.time()
        rows = first_steps(train, config, seed, args.steps)
        print("seed %d (%.0f s): perplexity after %d steps %.1f; max global norm %.1f" % (
            seed, time.time() - start, args.steps, rows[-1][3], max(r[2] for r in rows)))
        for step, cost, norm, ppl in rows:
            print("  step %2d  cost %9.2f  (%.2f nats a word)  global norm %8.2f  running perplexity %.1f" % (
                step, cost, cost / config.num_steps, norm, ppl))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
