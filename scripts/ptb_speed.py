"""Seconds per training step of a PTB preset per rnn_mode, and the time of both test evaluations.

    python scripts/ptb_speed.py --preset=small --steps=100                # basic and block, training steps
    python scripts/ptb_speed.py --preset=small --steps=100 --test_eval    # + faithful and fast test passes
    python scripts/ptb_speed.py --preset=small --modes=basic,basic@float16,basic@bfloat16,basic   # precisions
    python scripts/ptb_speed.py --preset=medium --modes=basic,basic@bfloat16 --profile=5  # + op time by op type

Training steps are timed in the app's own loop (``PTBModel.stepper`` inside ``queue_runners``) after a warm-up,
on the real data, with an untrained model. ``--profile=N`` (official presets) then traces N more steps (TF timeline,
step stats) and sums the op time by op type, forward and backward apart: where a precision's time goes.
The test evaluations restore nothing: they time the faithful batch-1/1-step pass and the fast equivalent on initial
weights (and print both perplexities, which must agree).
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from legacy_lstm import ptb, ptb_common, ptb_thomas, timeline  # noqa: E402
from legacy_lstm.compat import seed_everything, tf, tf1  # noqa: E402
from legacy_lstm.data import ptb as ptb_data  # noqa: E402


def time_training(config, train_data, valid_data, steps, warmup, profile=0):
    """Seconds per training step (median-free mean over ``steps`` after ``warmup``); with ``profile`` > 0 (official
    graph) also the op time by op type over that many traced steps: ``(seconds, profile_dict_or_None)``."""
    graph = tf.Graph()
    with graph.as_default():
        seed_everything(1)
        if config.style == "thomas":
            inp = ptb_thomas.Input(config.batch_size, config.num_steps, train_data)
            m = ptb_thomas.Model(inp, True, config)
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                m.assign_lr(sess, 1.0)
                step = sess.make_callable([m.cost, m.train_op, m.state_array], feed_list=[m.init_state])
                graph.finalize()
                with ptb_data.queue_runners(sess):
                    state = m.zero_state(config)
                    for i in range(warmup + steps):
                        if i == warmup:
                            t = time.time()
                        _, _, state = step(state)
                    return (time.time() - t) / steps, None
        m, _ = ptb.official_graph(config, train_data, valid_data)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            m.assign_lr(sess, 1.0)
            step = m.stepper(sess, m.train_op)
            graph.finalize()
            with ptb_data.queue_runners(sess):
                state = step.zero_state
                for i in range(warmup + steps):
                    if i == warmup:
                        t = time.time()
                    _, state = step(*state)
                seconds = (time.time() - t) / steps
                return seconds, (trace_steps(sess, m, profile) if profile else None)


def trace_steps(sess, m, steps):
    """Op time of ``steps`` traced training steps (zero state fed), summed by op type per step, in ms: the
    backward's ops (under ``gradients``) apart from the forward's. Op times overlap across the cores' threads."""
    feed_in = ptb_common.flat_state(m.initial_state)
    feed = dict(zip(feed_in, sess.run(feed_in)))
    by_op, _ = timeline.step_op_times(lambda **trace: sess.run([m.cost, m.train_op], feed_dict=feed, **trace),
                                      steps, timeline.by_op_and_direction)
    top = {k: round(v, 2) for k, v in by_op.most_common(15)}
    return {"traced_steps": steps, "op_time_total_ms": round(sum(by_op.values()), 1), "top_ops_ms": top,
            "ops_ms": {k: round(v, 3) for k, v in by_op.most_common()},  # every op type, not only the top 15
            "note": "summed over the threads of both cores (they overlap); zero initial state fed"}


def time_tests(config, test_data):
    """(seconds, perplexity) of the faithful and of the fast test pass, on one set of (initial) variables."""
    graph = tf.Graph()
    with graph.as_default():
        seed_everything(1)
        eval_config = dataclasses.replace(config, batch_size=1, num_steps=1)
        faithful = ptb.eval_model(eval_config, lambda: ptb.PTBInput(eval_config, test_data, name="TestInput"))
        fast = ptb.eval_model(config, lambda: ptb.FeedInput(1, ptb.FAST_TEST_STEPS), name="Fast", reuse=True)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            steps = {"faithful": (faithful, faithful.stepper(sess)), "fast": (fast, ptb._fast_stepper(sess, fast))}
            graph.finalize()
            out = {}
            for name, (model, step) in steps.items():
                t = time.time()
                ppl = ptb.evaluate_official(sess, model, step, test_data, fast=name == "fast")
                out[name] = (time.time() - t, ppl)
            return out


def gemm_gflops(repeats=20):
    """fp32 GFLOP/s of the small preset's softmax product [400, 200] x [200, 10000] in NumPy: a yardstick for
    how much of the machine this process got (a shared machine slows every number here)."""
    import numpy as np
    a = np.random.rand(400, 200).astype(np.float32)
    b = np.random.rand(200, 10000).astype(np.float32)
    a @ b
    t = time.time()
    for _ in range(repeats):
        a @ b
    return 2 * 400 * 200 * 10000 * repeats / (time.time() - t) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--modes", default="basic,block")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--test_eval", action="store_true")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="official presets: trace N more steps per mode and sum the op time by op type")
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()
    train_data, valid_data, test_data, _ = ptb_data.load_raw(*ptb_data.locate(args.data_dir))
    config = ptb_thomas.PRESETS["thomas"] if args.preset == "thomas" else ptb.PRESETS[args.preset]
    out = {"preset": args.preset, "steps": args.steps, "gemm_gflops_before": round(gemm_gflops(), 1)}
    print(f"NumPy GEMM yardstick: {out['gemm_gflops_before']} GFLOP/s", flush=True)
    for label in filter(None, args.modes.split(",")):  # rnn_mode, or rnn_mode@precision
        mode, _, precision = label.partition("@")
        cfg = dataclasses.replace(config, rnn_mode=mode, precision=precision or "float32")
        sec, profile = time_training(cfg, train_data, valid_data, args.steps, args.warmup, args.profile)
        epoch_size = ptb_data.epoch_size(len(train_data), cfg.batch_size, cfg.num_steps)
        row = {"seconds_per_step": round(sec, 5), "epoch_size": epoch_size,
               "projected_train_hours": round(sec * epoch_size * cfg.epochs / 3600, 2)}
        if profile:
            row["profile"] = profile
        out.setdefault(label, row) if label not in out else out.setdefault(f"{label} (again)", row)
        mode = label
        print(f"{args.preset} {mode}: {sec * 1000:.1f} ms/step, {epoch_size} steps/epoch -> "
              f"{sec * epoch_size / 60:.1f} min/epoch, {sec * epoch_size * cfg.epochs / 3600:.2f} h for "
              f"{cfg.epochs} epochs (train steps only)", flush=True)
        for op, ms in (profile or {}).get("top_ops_ms", {}).items():
            print(f"    {ms:8.2f} ms  {op}", flush=True)
    if args.test_eval and config.style == "official":
        for name, (seconds, ppl) in time_tests(config, test_data).items():
            out[f"{name}_test"] = {"seconds": round(seconds, 1), "perplexity": ppl}
            print(f"{name} test evaluation: {seconds:.1f} s (perplexity {ppl:.4f} at initial weights)", flush=True)
    out["gemm_gflops_after"] = round(gemm_gflops(), 1)
    print(f"NumPy GEMM yardstick: {out['gemm_gflops_after']} GFLOP/s", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
