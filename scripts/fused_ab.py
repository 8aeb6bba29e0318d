"""Paired A/B of two ``legacy_lstm.fast_lstm.OPTIONS`` settings on a PTB preset's real training step, in one process.

    python scripts/fused_ab.py --preset=medium --a='{"transposed_wh": true}' --b='{"transposed_wh": false}'
    python scripts/fused_ab.py --preset=medium --a='{}' --b='{}'          # the A/A control: a ratio near 1

Both graphs (ptb_word_lm's training model with ``--cell=fused``, on the real data, initial weights) are built in
this process, one per setting (OPTIONS are read when a graph is built), and their steps alternate A B, B A, A B ...
so that a drift of a shared machine's speed touches both alike. Prints and writes (``--out``) the median step time
of each and the median of the paired ratios A/B with its quartiles: a ratio below 1 means A is faster. Separate
processes (scripts/benchmark.py) vary by up to ±20% on this project's machines, more than the effects measured here.
"""

import argparse
import contextlib
import dataclasses
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmark import paired_summary  # noqa: E402 (scripts/benchmark.py: the pairing both scripts use)
from legacy_lstm import fast_lstm, ptb  # noqa: E402
from legacy_lstm.compat import seed_everything, tf, tf1  # noqa: E402
from legacy_lstm.data import ptb as ptb_data  # noqa: E402


def _step(config, train_data, valid_data, options, stack):
    """A training-step callable of a fresh graph built with ``options`` (queue runners kept open by ``stack``)."""
    saved = dict(fast_lstm.OPTIONS)
    fast_lstm.OPTIONS.update(options)
    try:
        graph = tf.Graph()
        with graph.as_default():
            seed_everything(1)
            model, _ = ptb.official_graph(config, train_data, valid_data)
            sess = stack.enter_context(tf1.Session(graph=graph))
            sess.run(tf1.global_variables_initializer())
            model.assign_lr(sess, 1.0)
            step = sess.make_callable([model.cost, model.train_op])
            graph.finalize()
            stack.enter_context(ptb_data.queue_runners(sess))
        return step
    finally:
        fast_lstm.OPTIONS.clear()
        fast_lstm.OPTIONS.update(saved)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--a", default='{"transposed_wh": true}', help="OPTIONS of A (JSON)")
    parser.add_argument("--b", default='{"transposed_wh": false}', help="OPTIONS of B (JSON)")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--out", default=None, help="a JSON file to write")
    args = parser.parse_args()
    options = (json.loads(args.a), json.loads(args.b))
    for opts in options:
        unknown = set(opts) - set(fast_lstm.OPTIONS)
        if unknown:
            parser.error(f"unknown OPTIONS {sorted(unknown)}; known: {sorted(fast_lstm.OPTIONS)}")
    config = dataclasses.replace(ptb.PRESETS[args.preset], rnn_mode="fused")
    train_data, valid_data, _, _ = ptb_data.load_raw(*ptb_data.locate(args.data_dir))
    with contextlib.ExitStack() as stack:
        steps = [_step(config, train_data, valid_data, opts, stack) for opts in options]
        measured = paired_summary(steps, args.pairs, args.warmup, "fused_ab.py")
    doc = {"preset": args.preset, "a": {**fast_lstm.OPTIONS, **options[0]}, "b": {**fast_lstm.OPTIONS, **options[1]},
           **measured}
    q1, q3 = doc["ratio_q1"], doc["ratio_q3"]
    print(f"A {doc['a_median_ms']:.1f} ms, B {doc['b_median_ms']:.1f} ms per step (medians of {args.pairs}); "
          f"A/B paired: median {doc['ratio_median']:.3f} (quartiles {q1:.3f}-{q3:.3f})")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
