"""Benchmark one training step (forward + backward + update) of each app's shape, per LSTM implementation.

    python scripts/benchmark.py                         # everything, writes results/benchmark.{json,md}
    python scripts/benchmark.py --shapes stocktwits --impls basic,block --processes 3 --steps 8
    python scripts/benchmark.py --paired stocktwits fused basic --steps 20    # one paired A/B in one process
    python scripts/benchmark.py --threads fused --shapes ptb_medium,stocktwits   # results/benchmark-threads.json

Each (shape, implementation) is measured in several fresh processes (``--processes``, the implementations taken
in turn); a process builds the graph, runs ``--warmup`` steps, then times ``--steps`` steps and reports its median
step time and peak RSS.
The table reports the median over processes. In the same run it measures the fp32 GEMM throughput of the
step's dominant matrix product (the roofline) and each implementation's fraction of it, and profiles one
StockTwits step with the TF timeline to show where the time goes.

Implementations: ``basic``, ``block``, ``cudnn_compatible`` (legacy_lstm.cells in dynamic_rnn, static_rnn for
fables), ``keras`` (the tf_keras ``LSTM`` layer in the same v1 graph), ``fused`` (legacy_lstm.fast_lstm on the
basic cells, what ``--cell=fused`` runs; its variants ``fused_1chunk``, ``fused_tf``, ``fused_xla``, ``fused_tb``
and ``fused_native`` change one choice of ``legacy_lstm.fast_lstm.OPTIONS`` each, see ``FUSED_VARIANTS``) and
``torch`` (``nn.LSTM``, CPU, eager; optional: skipped when ``import torch`` fails; it need not be in the project's
environment, e.g. ``pip install --target DIR torch`` and ``PYTHONPATH=DIR``). Fables, imdb and essentials have no
fused row (their apps refuse --cell=fused: fables' static_rnn has 3 steps, nothing to fuse).

After the tables: the projected wall time of each app's published configuration (``PROJECTIONS``: steps per epoch x
epochs x the measured step time, training steps only).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@dataclasses.dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    steps: int          # time steps per example
    embed: int          # LSTM input depth (embedding size; 1 for fables' scalar inputs)
    units: tuple
    vocab: int          # embedding rows (0: no embedding)
    classes: int        # output classes (1: sigmoid + MSE as StockTwits)
    optimizer: str
    carry_state: bool   # feed the final state back through feed_dict (PTB)
    static: bool = False  # static_rnn (fables) instead of dynamic_rnn
    fusable: bool = True  # the app takes --cell=fused (no fused rows where it refuses it: fables, imdb, essentials)

    @property
    def tokens(self):
        return self.batch * self.steps

    def lstm_flops(self):
        """Multiply-add FLOPs of the LSTM GEMMs of one step: forward 2*B*(I+U)*4U per time step and layer,
        backward twice that (input and weight gradients)."""
        total, depth = 0, self.embed
        for units in self.units:
            total += 3 * 2 * self.batch * (depth + units) * 4 * units * self.steps
            depth = units
        return total

    def dominant_gemm(self):
        """[m, k, n] of the matrix product that dominates the step: the 10k-way softmax for PTB, the first
        LSTM layer's per-step [x, h] x kernel otherwise."""
        if self.name.startswith("ptb"):
            return [self.batch * self.steps, self.units[-1], self.classes]
        return [self.batch, self.embed + self.units[0], 4 * self.units[0]]

    def head_flops(self):
        per_output = self.steps if self.classes > 1 and self.name.startswith("ptb") else 1
        return 3 * 2 * self.batch * per_output * self.units[-1] * self.classes


SHAPES = {
    "stocktwits": Shape("stocktwits", 256, 244, 300, (128, 64), 31981, 1, "adadelta", False),
    "stocktwits_auto": Shape("stocktwits_auto", 256, 39, 300, (128, 64), 31981, 1, "adadelta", False),
    "ptb_small": Shape("ptb_small", 20, 20, 200, (200, 200), 10000, 10000, "sgd_clip", True),
    "ptb_medium": Shape("ptb_medium", 20, 35, 650, (650, 650), 10000, 10000, "sgd_clip", True),
    "ptb_large": Shape("ptb_large", 20, 35, 1500, (1500, 1500), 10000, 10000, "sgd_clip", True),
    "fables": Shape("fables", 1, 3, 1, (512,), 0, 112, "rmsprop", False, static=True, fusable=False),
    "fables_improved": Shape("fables_improved", 1, 3, 1, (512, 512), 0, 112, "rmsprop", False, static=True,
                             fusable=False),
    # imdb lstm: Embedding(10000, 128) -> LSTM(64) over 200 tokens, batch 64, Adam (its head: one Dense(1) here)
    "imdb": Shape("imdb", 64, 200, 128, (64,), 10000, 1, "adam", False, fusable=False),
    # essentials: batch 4, 4 tokens, embedding 64, LSTM 16, 2 classes, Adam (the book runs it in float64; fp32 here)
    "essentials": Shape("essentials", 4, 4, 64, (16,), 16, 2, "adam", False, fusable=False),
}
IMPLS = ("basic", "block", "cudnn_compatible", "keras", "fused", "torch")
# The published configurations as training steps: (app and preset, benchmark shape, steps per epoch, epochs). PTB:
# ((929,589 training words // batch) - 1) // num_steps steps per epoch; StockTwits: 303 batches of 256; IMDB: 20,000
# training reviews (80% of 25,000) // 64 + 1. Validation and test passes are not counted.
PROJECTIONS = (("stocktwits (faithful, T=244, 50 epochs)", "stocktwits", 303, 50),
               ("stocktwits --variant=fast (T=39, 50 epochs)", "stocktwits_auto", 303, 50),
               ("ptb small (13 epochs)", "ptb_small", 2323, 13),
               ("ptb medium (39 epochs)", "ptb_medium", 1327, 39),
               ("ptb large (55 epochs)", "ptb_large", 1327, 55),
               ("ptb_thomas (650x2 tied, 35 steps; to the epoch-38 checkpoint)", "ptb_medium", 1327, 38),
               ("fables blog (1 layer, 50,000 iterations of batch 1)", "fables", 50000, 1),
               ("fables improved (2 layers, 50,000 iterations)", "fables_improved", 50000, 1),
               ("imdb lstm (313 batches of 64, 5 epochs)", "imdb", 313, 5),
               ("essentials book (--nosingle_step: 1,000 iterations)", "essentials", 1000, 1))
# legacy_lstm.fast_lstm.OPTIONS of each fused variant ("fused" is what --cell=fused runs)
_FUSED = {"backward": "op", "xla": False, "chunks": "auto", "transposed_wh": True, "native": False}
FUSED_VARIANTS = {"fused": _FUSED,
                  "fused_1chunk": {**_FUSED, "chunks": 1},
                  "fused_tf": {**_FUSED, "backward": "tf"},
                  "fused_xla": {**_FUSED, "backward": "tf", "xla": True},
                  "fused_tb": {**_FUSED, "transposed_wh": False},
                  "fused_native": {**_FUSED, "native": True}}


# ---------------------------------------------------------------------------------------------------------
# Worker side (one fresh process per measurement)
# ---------------------------------------------------------------------------------------------------------
def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tf_step(shape, impl, profile=False):
    """Build the shape's graph with ``impl``; return (run_step callable, session, graph)."""
    import numpy as np
    from legacy_lstm import cells, fast_lstm
    from legacy_lstm.compat import tf, tf1
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        rng = np.random.RandomState(0)
        if shape.vocab:
            ids = tf1.placeholder(tf.int32, [shape.batch, shape.steps], name="inputs")
            embedding = tf1.get_variable("embedding", [shape.vocab, shape.embed])
            x = tf.nn.embedding_lookup(embedding, ids)
            feed_x = rng.randint(0, shape.vocab, (shape.batch, shape.steps))
        else:
            ids = tf1.placeholder(tf.float32, [shape.batch, shape.steps, 1], name="inputs")
            x = ids
            feed_x = rng.rand(shape.batch, shape.steps, 1).astype(np.float32)
        if impl == "keras":
            out = x
            for units in shape.units:
                out = tf.keras.layers.LSTM(units, return_sequences=True)(out)
            initial, final = (), ()
        else:
            stack = tf1.nn.rnn_cell.MultiRNNCell([cells.make_cell("basic" if impl.startswith("fused") else impl, u)
                                                  for u in shape.units])
            initial = stack.zero_state(shape.batch, tf.float32)
            if shape.static:
                outs, final = tf1.nn.static_rnn(stack, tf.unstack(x, axis=1), initial_state=initial)
                out = tf.stack(outs, axis=1)
            elif impl.startswith("fused"):
                fast_lstm.OPTIONS.update(FUSED_VARIANTS[impl])
                out, final = fast_lstm.dynamic_rnn(stack, x, initial_state=initial)
            else:
                out, final = tf1.nn.dynamic_rnn(stack, x, initial_state=initial)
        if shape.classes == 1:
            labels = tf1.placeholder(tf.float32, [shape.batch, 1])
            pred = tf.sigmoid(tf1.layers.dense(out[:, -1], 1))
            loss = tf1.losses.mean_squared_error(labels, pred)
            feed_y = rng.randint(0, 2, (shape.batch, 1)).astype(np.float32)
        elif shape.name.startswith("ptb"):
            labels = tf1.placeholder(tf.int32, [shape.batch, shape.steps])
            logits = tf1.layers.dense(out, shape.classes)
            loss = tf.reduce_sum(tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), axis=0))
            feed_y = rng.randint(0, shape.classes, (shape.batch, shape.steps))
        else:
            labels = tf1.placeholder(tf.int32, [shape.batch])
            logits = tf1.layers.dense(out[:, -1], shape.classes)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            feed_y = rng.randint(0, shape.classes, (shape.batch,))
        if shape.optimizer == "adadelta":
            train_op = tf1.train.AdadeltaOptimizer(0.1).minimize(loss)
        elif shape.optimizer == "adam":
            train_op = tf1.train.AdamOptimizer(0.001).minimize(loss)
        elif shape.optimizer == "rmsprop":
            train_op = tf1.train.RMSPropOptimizer(0.001).minimize(loss)
        else:
            params = tf1.trainable_variables()
            grads, _ = tf.clip_by_global_norm(tf.gradients(loss, params), 5.0)
            train_op = tf1.train.GradientDescentOptimizer(1.0).apply_gradients(zip(grads, params))
        sess = tf1.Session(graph=graph)
        sess.run(tf1.global_variables_initializer())
        graph.finalize()
    flat_initial = tf.nest.flatten(initial)
    fetches = [loss, train_op] + ([tf.nest.flatten(final)] if shape.carry_state else [])
    state = [np.zeros(t.shape.as_list(), np.float32) for t in flat_initial] if shape.carry_state else []

    def run_step(options=None, run_metadata=None):
        feed = {ids: feed_x, labels: feed_y, **dict(zip(flat_initial, state))}
        result = sess.run(fetches, feed, options=options, run_metadata=run_metadata)
        if shape.carry_state:
            state[:] = result[2]
        return result[0]
    return run_step, sess, graph


def _torch_step(shape):
    import numpy as np
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.RandomState(0)
    layers, depth = [], shape.embed
    for units in shape.units:
        layers.append(torch.nn.LSTM(depth, units, batch_first=True))
        depth = units
    modules = torch.nn.ModuleList(layers)
    embedding = torch.nn.Embedding(shape.vocab, shape.embed) if shape.vocab else None
    head = torch.nn.Linear(shape.units[-1], shape.classes)
    params = list(modules.parameters()) + list(head.parameters()) + (list(embedding.parameters()) if embedding else [])
    if shape.optimizer == "adadelta":
        opt = torch.optim.Adadelta(params, lr=0.1)
    elif shape.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=0.001)
    elif shape.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=0.001)
    else:
        opt = torch.optim.SGD(params, lr=1.0)
    if shape.vocab:
        x = torch.from_numpy(rng.randint(0, shape.vocab, (shape.batch, shape.steps)))
    else:
        x = torch.from_numpy(rng.rand(shape.batch, shape.steps, 1).astype(np.float32))
    if shape.classes == 1:
        y = torch.from_numpy(rng.randint(0, 2, (shape.batch, 1)).astype(np.float32))
    elif shape.name.startswith("ptb"):
        y = torch.from_numpy(rng.randint(0, shape.classes, (shape.batch, shape.steps)))
    else:
        y = torch.from_numpy(rng.randint(0, shape.classes, (shape.batch,)))
    state = [None] * len(layers)

    def run_step():
        opt.zero_grad()
        out = embedding(x) if embedding is not None else x
        for k, layer in enumerate(layers):
            out, new_state = layer(out, state[k])
            if shape.carry_state:
                state[k] = tuple(s.detach() for s in new_state)
        if shape.classes == 1:
            loss = torch.nn.functional.mse_loss(torch.sigmoid(head(out[:, -1])), y)
        elif shape.name.startswith("ptb"):
            logits = head(out)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, shape.classes), y.reshape(-1),
                                                     reduction="none").reshape(shape.batch, shape.steps)
            loss = loss.mean(0).sum()
        else:
            loss = torch.nn.functional.cross_entropy(head(out[:, -1]), y)
        loss.backward()
        if shape.optimizer == "sgd_clip":
            torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        return float(loss)
    return run_step


def worker(shape_name, impl, steps, warmup):
    shape = SHAPES[shape_name]
    if impl == "torch":
        run_step = _torch_step(shape)
    else:
        run_step, _, _ = _tf_step(shape, impl)
    for _ in range(warmup):
        run_step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run_step()
        times.append(time.perf_counter() - start)
    return {"step_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000,
            "max_ms": max(times) * 1000, "peak_rss_mb": _peak_rss_mb()}


def paired_summary(steps, pairs, warmup, script):
    """``paired``'s measurement as a results document: the median step time of each, the median of the paired
    ratios A/B with its quartiles, and the command (``script`` and this process's arguments), machine, versions
    and date that produced it."""
    from legacy_lstm.compat import machine, versions
    times_a, times_b, ratios = paired(steps, pairs, warmup)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return {"pairs": pairs, "a_median_ms": 1e3 * statistics.median(times_a),
            "b_median_ms": 1e3 * statistics.median(times_b), "ratio_median": statistics.median(ratios),
            "ratio_q1": q1, "ratio_q3": q3, "command": f"python scripts/{script} " + " ".join(sys.argv[1:]),
            "machine": machine(), "versions": versions(), "date": time.strftime("%Y-%m-%d")}


def paired(steps, pairs, warmup):
    """(seconds of A, seconds of B, ratios A/B): ``pairs`` pairs, alternating which of the two runs first."""
    for step in steps:
        for _ in range(warmup):
            step()
    times = ([], [])
    for i in range(pairs):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            steps[k]()
            times[k].append(time.perf_counter() - start)
    return times[0], times[1], [a / b for a, b in zip(*times)]


def paired_worker(shape_name, impls, pairs, warmup):
    """Two TF implementations of one shape in this process, their steps alternating (``paired``): the median step
    time of each and the median of the paired ratios A/B with its quartiles."""
    shape = SHAPES[shape_name]
    known = [i for i in dict.fromkeys(IMPLS + tuple(FUSED_VARIANTS)) if i != "torch"]
    for impl in impls:
        if impl not in known or (impl.startswith("fused") and not shape.fusable):
            raise SystemExit(f"--paired: {impl} cannot run at {shape_name} in this mode (TF implementations: "
                             f"{', '.join(known)}; none of the fused ones where the app refuses --cell=fused)")
    if pairs < 2:
        raise SystemExit("--paired needs --steps >= 2 (pairs)")
    a, b = impls
    steps = [_tf_step(SHAPES[shape_name], impl)[0] for impl in impls]
    return {"shape": shape_name, "a": a, "b": b, **paired_summary(steps, pairs, warmup, "benchmark.py")}


def gemm_worker(m, k, n, repeats, dtype="float32", transpose_b=False):
    """GEMM throughput (GFLOP/s) of [m,k] x [k,n] in a TF graph, median over ``repeats`` timed runs of 20;
    ``dtype`` bfloat16: both operands cast once, outside the timed products (what a bf16 LSTM path's GEMMs
    would get on this CPU); ``transpose_b``: the right operand stored [n, k] and multiplied with transpose_b=True
    (what TF's MatMul gradient does for dx = dy W^T)."""
    from legacy_lstm.compat import tf, tf1
    with tf.Graph().as_default():
        a = tf1.get_variable("a", [m, k], dtype, initializer=tf1.random_normal_initializer(dtype=dtype))
        b = tf1.get_variable("b", [n, k] if transpose_b else [k, n], dtype,
                             initializer=tf1.random_normal_initializer(dtype=dtype))
        # 20 independent products per run, as the forward/backward of the LSTM steps offer both cores work.
        prods = [tf.reduce_sum(tf.cast(tf.matmul(a + tf.cast(i, a.dtype), b, transpose_b=transpose_b), tf.float32))
                 for i in range(20)]
        total = tf.add_n(prods)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for _ in range(3):
                sess.run(total)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                sess.run(total)
                times.append(time.perf_counter() - start)
    flops = 20 * 2 * m * k * n
    return {"gflops": flops / statistics.median(times) / 1e9, "shape": [m, k, n], "dtype": dtype,
            "transpose_b": transpose_b}


def profile_worker(impl, steps):
    """Where the time of one StockTwits step goes, from the TF timeline (step stats) of ``steps`` runs."""
    from legacy_lstm import timeline
    run_step, _, _ = _tf_step(SHAPES["stocktwits"], impl)
    for _ in range(2):
        run_step()
    categories, walls = timeline.step_op_times(run_step, steps, _categorise)
    return {"impl": impl, "wall_ms": timeline.median_ms(walls),
            "op_time_ms": dict(categories.most_common()), "op_time_total_ms": sum(categories.values()),
            "note": "op times are summed over both cores' threads (they overlap); wall includes session overhead"}


def _categorise(name, op):
    """The profile's group of an op (its node name and type, legacy_lstm.timeline.step_op_times' key)."""
    backward = "gradients" in name
    if "Adadelta" in op or "Apply" in op or "/Adadelta" in name:
        return "optimizer update"
    if op in ("GatherV2", "ResourceGather") or "embedding_lookup" in name:
        return "embedding gather/scatter" + (" (backward)" if backward else "")
    if op in ("UnsortedSegmentSum", "Unique"):
        return "embedding gather/scatter (backward)"
    if op in ("MatMul", "_MklMatMul", "_FusedMatMul", "BatchMatMulV2", "_MklFusedMatMul", "_MklNativeFusedMatMul",
              "_MklNativeMatMul"):
        return "LSTM GEMMs " + ("backward" if backward else "forward")
    if op in ("XlaLaunch", "_XlaRun", "_XlaCompile", "PartitionedCall", "StatefulPartitionedCall"):
        return "XLA-compiled gate maths (fused_xla)"
    if op == "LSTMBlockCell":
        return "fused LSTMBlockCell op forward (its GEMM + gate math)"
    if op in ("LSTMBlockCellGrad", "Sigmoid", "Tanh", "Mul", "AddV2", "Add", "SigmoidGrad",
              "TanhGrad", "BiasAdd", "BiasAddGrad", "Split", "ConcatV2", "Sum", "_MklAdd", "AddN",
              "RandomUniform", "GreaterEqual", "Cast", "RealDiv", "Select", "SelectV2", "Floor", "SplitV",
              "Sub", "_MklSub", "_MklMul"):
        return "element-wise gate math " + ("backward" if backward else "forward")
    if op in ("Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond", "Less", "LogicalAnd",
              "Identity", "TensorArrayV3", "TensorArrayReadV3", "TensorArrayWriteV3", "TensorArrayGatherV3",
              "TensorArrayScatterV3", "TensorArraySizeV3", "TensorArrayGradV3", "StackV2", "StackPushV2",
              "StackPopV2", "Const", "Shape", "StridedSlice", "Reshape", "Pack", "Fill", "ZerosLike",
              "_Recv", "_Send", "NoOp", "Maximum", "Range", "Transpose", "_MklTranspose", "ExpandDims",
              "Assert", "Equal", "ReadVariableOp", "VarHandleOp", "_Arg", "_Retval", "StridedSliceGrad") \
            or op.startswith("TensorList"):
        return "while-loop / tensor-array / plumbing"
    return f"other ({op})"


# ---------------------------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------------------------
def _spawn(args, env=None):
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO,
                         env=None if env is None else dict(os.environ, **env))
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _torch_available():
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                         text=True)
    return out.stdout.strip() if out.returncode == 0 else None


# TF's thread pools as each worker process gets them (TF reads these when a session's config leaves them at 0, as
# every app's does): "default" is TF's own choice (one thread per core for each pool).
THREAD_SETTINGS = {"default": {}, "inter1": {"TF_NUM_INTEROP_THREADS": "1"},
                   "intra1": {"TF_NUM_INTRAOP_THREADS": "1"},
                   "inter1_intra1": {"TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}}


def threads_sweep(shape_names, impl, processes, steps, warmup, log=print):
    """Each shape's step time with ``impl`` under each of THREAD_SETTINGS, in fresh processes taken round robin
    (``processes`` rounds): {shape: {setting: {"step_ms": median over processes, "runs": [...], "ratio": to
    default}}}."""
    out = {}
    for shape_name in shape_names:
        runs = {name: [] for name in THREAD_SETTINGS}
        for _ in range(processes):
            for name, env in THREAD_SETTINGS.items():
                got = _spawn(["--worker", shape_name, impl, "--steps", str(steps), "--warmup", str(warmup)], env)
                runs[name].append(got.get("step_ms"))
                log(f"{shape_name} {impl} {name}: {got}")
        medians = {name: statistics.median(v for v in r if v is not None) if any(v is not None for v in r) else None
                   for name, r in runs.items()}
        base = medians["default"]
        out[shape_name] = {name: {"step_ms": m, "runs": runs[name],
                                  "ratio": None if m is None or not base else round(m / base, 3)}
                           for name, m in medians.items()}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile_steps", type=int, default=3)
    parser.add_argument("--out", default=None, help="default: results/benchmark (--threads: results/benchmark-threads)")
    parser.add_argument("--worker", nargs=2, metavar=("SHAPE", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--gemm", nargs=3, type=int, metavar=("M", "K", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--gemm_dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--gemm_transpose_b", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", metavar="IMPL", help=argparse.SUPPRESS)
    parser.add_argument("--threads", metavar="IMPL", help="only the thread sweep: --shapes with IMPL under each "
                        "of THREAD_SETTINGS (TF_NUM_INTEROP_THREADS / TF_NUM_INTRAOP_THREADS), --processes rounds; "
                        "writes <out>.json")
    parser.add_argument("--paired", nargs=3, metavar=("SHAPE", "IMPL_A", "IMPL_B"),
                        help="only a paired A/B of two TF implementations at one shape in one process (--steps "
                        "pairs after --warmup steps each): prints the median ratio A/B (below 1: A is faster), "
                        "then the measurement as one JSON line")
    args = parser.parse_args()
    if args.paired:
        doc = paired_worker(args.paired[0], args.paired[1:], args.steps, args.warmup)
        print(f"{doc['shape']}: {doc['a']} {doc['a_median_ms']:.1f} ms, {doc['b']} {doc['b_median_ms']:.1f} ms; "
              f"{doc['a']}/{doc['b']} paired median {doc['ratio_median']:.3f} "
              f"(quartiles {doc['ratio_q1']:.3f}-{doc['ratio_q3']:.3f}, {doc['pairs']} pairs)")
        print(json.dumps(doc))
        return
    if args.threads:
        from legacy_lstm.compat import machine, versions
        shapes = args.shapes.split(",")
        if args.threads not in dict.fromkeys(IMPLS + tuple(FUSED_VARIANTS)) or args.threads == "torch":
            parser.error(f"--threads {args.threads}: a TF implementation (torch sets its own threads)")
        unfit = [n for n in shapes if n not in SHAPES or (args.threads.startswith("fused") and not SHAPES[n].fusable)]
        if unfit:
            parser.error(f"--threads {args.threads} cannot run at {', '.join(unfit)} (unknown, or an app that "
                         "refuses --cell=fused)")
        args.out = args.out or str(REPO / "results" / "benchmark-threads")
        started = time.time()
        sweep = threads_sweep(shapes, args.threads, args.processes, args.steps, args.warmup)
        doc = {"command": "python scripts/benchmark.py " + " ".join(sys.argv[1:]), "machine": machine(),
               "versions": versions(), "processes": args.processes, "steps": args.steps, "warmup": args.warmup,
               "settings": THREAD_SETTINGS, "wall_seconds": round(time.time() - started, 1), "results": sweep}
        out = pathlib.Path(args.out).with_suffix(".json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
        for shape_name, rows in sweep.items():
            print(shape_name, {name: (r["step_ms"] and round(r["step_ms"], 1), r["ratio"]) for name, r in rows.items()})
        print(f"wrote {out}")
        return
    if args.worker:
        print(json.dumps(worker(*args.worker, steps=args.steps, warmup=args.warmup)))
        return
    if args.gemm:
        print(json.dumps(gemm_worker(*args.gemm, repeats=7, dtype=args.gemm_dtype, transpose_b=args.gemm_transpose_b)))
        return
    if args.profile:
        print(json.dumps(profile_worker(args.profile, args.profile_steps)))
        return

    args.out = args.out or str(REPO / "results" / "benchmark")
    started = time.time()
    torch_version = _torch_available()
    impls = [i for i in args.impls.split(",") if i != "torch" or torch_version]
    results = {}
    for shape_name in args.shapes.split(","):
        shape = SHAPES[shape_name]
        gemm = [_spawn(["--gemm", *map(str, shape.dominant_gemm())]) for _ in range(args.processes)]
        gemm_gflops = statistics.median(g["gflops"] for g in gemm if "gflops" in g)
        # the same GEMM in bfloat16: whether a bf16 path (ptb_word_lm's --use_fp16 analogue) could be faster here
        bf16 = [_spawn(["--gemm", *map(str, shape.dominant_gemm()), "--gemm_dtype", "bfloat16"])
                for _ in range(args.processes)]
        bf16_gflops = statistics.median(g["gflops"] for g in bf16 if "gflops" in g) if any(
            "gflops" in g for g in bf16) else None
        results[shape_name] = {"shape": dataclasses.asdict(shape), "gemm_gflops": gemm_gflops,
                               "gemm_bf16_gflops": bf16_gflops, "gemm_shape": shape.dominant_gemm(), "impls": {}}
        measured = [impl for impl in impls if not (impl.startswith("fused") and not shape.fusable)]
        # round robin (A B C A B C ...): a drift of the shared machine's speed then touches every impl alike
        spawned = {impl: [] for impl in measured}
        for _ in range(args.processes):
            for impl in measured:
                spawned[impl].append(_spawn(["--worker", shape_name, impl, "--steps", str(args.steps), "--warmup",
                                          str(args.warmup)]))
        for impl, runs in spawned.items():
            good = [r for r in runs if "step_ms" in r]
            if not good:
                results[shape_name]["impls"][impl] = {"error": runs[0].get("error")}
                continue
            step_ms = statistics.median(r["step_ms"] for r in good)
            flops = shape.lstm_flops() + shape.head_flops()
            results[shape_name]["impls"][impl] = {
                "step_ms": step_ms, "process_medians_ms": [round(r["step_ms"], 2) for r in good],
                "steps_per_s": 1000 / step_ms, "tokens_per_s": shape.tokens * 1000 / step_ms,
                "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in good),
                "gemm_gflops_achieved": flops / step_ms / 1e6,
                "roofline_fraction": flops / step_ms / 1e6 / gemm_gflops}
            print(f"{shape_name:16s} {impl:17s} {step_ms:9.1f} ms  {results[shape_name]['impls'][impl]}", flush=True)
        _write(args, started, torch_version, results, [])  # after every shape: a timeout keeps what is measured
    profiles = [_spawn(["--profile", impl, "--profile_steps", str(args.profile_steps)])
                for impl in ("basic", "fused") if impl in impls] if "stocktwits" in args.shapes.split(",") else []
    out = _write(args, started, torch_version, results, profiles)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


def _write(args, started, torch_version, results, profiles):
    """Write <out>.json and <out>.md of what is measured so far; returns the path without suffix."""
    projections = []
    for label, shape_name, steps_per_epoch, epochs in PROJECTIONS:
        measured = results.get(shape_name, {}).get("impls", {})
        hours = {impl: steps_per_epoch * epochs * r["step_ms"] / 3.6e6 for impl, r in measured.items()
                 if "step_ms" in r}
        if hours:
            projections.append({"app": label, "shape": shape_name, "steps": steps_per_epoch * epochs,
                                "hours": hours})
    from legacy_lstm.compat import machine, versions
    doc = {"command": "python scripts/benchmark.py " + " ".join(sys.argv[1:]), "machine": machine(),
           "versions": dict(versions(), torch=torch_version), "processes": args.processes, "steps": args.steps,
           "warmup": args.warmup, "wall_seconds": round(time.time() - started, 1), "results": results,
           "profiles": profiles, "projections": projections}
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    return out


def markdown(doc):
    lines = ["# Benchmark: one training step (forward + backward + update)", "",
             f"Command: `{doc['command']}`  ",
             f"Machine: {doc['machine']['cpus']} CPUs ({doc['machine'].get('cpu_model') or 'model not recorded'}), "
             f"{doc['machine']['platform']}  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + "  ",
             f"Median over {doc['processes']} fresh processes of each process's median of {doc['steps']} steps "
             f"(after {doc['warmup']} warm-up steps). Wall time of the benchmark: {doc['wall_seconds']} s.", ""]
    for shape_name, res in doc["results"].items():
        s = res["shape"]
        lines += [f"## {shape_name}: batch {s['batch']}, {s['steps']} steps, input {s['embed']}, units {s['units']}",
                  "", f"Roofline: fp32 GEMM {res['gemm_shape']} at {res['gemm_gflops']:.1f} GFLOP/s"
                  + (f"; the same GEMM in bfloat16 at {res['gemm_bf16_gflops']:.1f} GFLOP/s "
                     f"({res['gemm_bf16_gflops'] / res['gemm_gflops']:.2f}x fp32)."
                     if res.get("gemm_bf16_gflops") else "."), "",
                  "| impl | step ms | vs basic | vs torch | steps/s | tokens/s | peak RSS MB | LSTM+head GFLOP/s "
                  "| of roofline |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        base = res["impls"].get("basic", {}).get("step_ms")
        torch_ms = res["impls"].get("torch", {}).get("step_ms")
        for impl, r in res["impls"].items():
            if "error" in r:
                lines.append(f"| {impl} | error: {r['error']} | | | | | | | |")
                continue
            speed = f"{base / r['step_ms']:.2f}x" if base else ""
            vs_torch = f"{torch_ms / r['step_ms']:.2f}x" if torch_ms else ""
            lines.append(f"| {impl} | {r['step_ms']:.1f} | {speed} | {vs_torch} | {r['steps_per_s']:.2f} | "
                         f"{r['tokens_per_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['gemm_gflops_achieved']:.1f} | "
                         f"{r['roofline_fraction']:.0%} |")
        lines.append("")
    if doc.get("projections"):
        impls = list(dict.fromkeys(impl for p in doc["projections"] for impl in p["hours"]))
        lines += ["## Projected wall time of the published configurations (training steps only, hours)", "",
                  "Steps per epoch x epochs x the step time above; validation and test passes are not counted.", "",
                  "| app | shape | steps | " + " | ".join(impls) + " |",
                  "| --- | --- | ---: | " + " | ".join("---:" for _ in impls) + " |"]
        for p in doc["projections"]:
            cells = [f"{p['hours'][i]:.2f}" if i in p["hours"] else "" for i in impls]
            lines.append(f"| {p['app']} | {p['shape']} | {p['steps']} | " + " | ".join(cells) + " |")
        lines.append("")
    for prof in doc.get("profiles", []):
        if "error" in prof:
            continue
        lines += [f"## Where the time goes: StockTwits step, `{prof['impl']}` (TF timeline)", "",
                  f"Wall {prof['wall_ms']:.0f} ms per traced step; op time summed over threads "
                  f"{prof['op_time_total_ms']:.0f} ms.", "", "| category | ms | share of op time |",
                  "| --- | ---: | ---: |"]
        for cat, ms in prof["op_time_ms"].items():
            lines.append(f"| {cat} | {ms:.1f} | {ms / prof['op_time_total_ms']:.1%} |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
