"""Steps/s and examples/s of distributed training on this machine: one process, then local clusters of 1 ps + N
workers (synchronous), each running the StockTwits app's published graph (``hoffman``: LSTM 128/64, embedding 300,
batch 256, padding to 244) on the first ``--records`` messages of the real data.

    python scripts/distributed_bench.py [--workers=1,2,3] [--records=7680] [--epochs=3] [--out=FILE]

Each setup is the app's own command (``python -m legacy_lstm.stocktwits --config=<json>``; on a cluster through
``python -m legacy_lstm.cluster``), trained for ``--epochs`` epochs in a fresh run dir. The times are the chief's
curve rows (``seconds``: the epoch's training batches plus the notebook's one validation pass over the 10%
validation split); epoch 1 is left out (start-up, graph building and, on a cluster, waiting for the other tasks),
the rest give the median epoch. An epoch is one pass over the training split by the cluster together: with N
workers a synchronous global step trains N batches of 256 (legacy_lstm/distributed.py), so

    global steps/s = (batches per epoch // N) / epoch seconds,   examples/s = global steps/s x N x 256.

Writes the JSON (default results/benchmark-distributed.json) and prints a Markdown table. Run it alone on the machine:
the tasks of a cluster share its cores.

    python scripts/distributed_bench.py --traffic [--out=FILE]

computes instead (nothing is trained or timed) the bytes one worker moves per step to and from the ps tasks for
each app's published configuration, from the variables of the app's own training graph built in this process:
every trainable variable an embedding lookup reads (a Gather) is an embedding, every other one is dense. Per worker
step: it reads every dense variable and the embedding rows of its batch (the gather runs on the ps), and sends the
gradients of the dense variables and of the gathered rows (async: one row per lookup; sync: the rows are summed
per word first, ``distributed._unique_rows``, so one per distinct word of the batch: the mean over the real
data's batches of the first epoch is used). Indices are int32 (4 bytes) per sent row. The data files (the
vocabulary sizes and the distinct words per batch) come from ``$LEGACY_LSTM_DATA``. Default output:
results/benchmark-distributed-traffic.json.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
BATCH = 256
SEED, SPLIT_SEED = 1, 1  # every setup's app command


def _run(command, log_path):
    start = time.time()
    with open(log_path, "w") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if code != 0:
        sys.exit(f"{' '.join(command)} failed with status {code}; see {log_path}")
    return time.time() - start


def measure(workers, records, epochs, work):
    """One setup: 0 workers = one process. Returns its row."""
    name = "one process" if workers == 0 else f"1 ps + {workers} worker{'s' if workers > 1 else ''}"
    run_dir = work / f"run-{workers}"
    config = work / "config.json"
    config.write_text(json.dumps({"max_records": records}))
    app = [sys.executable, "-m", "legacy_lstm.stocktwits", f"--config={config}", f"--run_dir={run_dir}",
           f"--max_epochs={epochs}", f"--seed={SEED}", f"--split_seed={SPLIT_SEED}", "--noprogress"]
    command = app if workers == 0 else [sys.executable, "-m", "legacy_lstm.cluster", "--ps=1",
                                        f"--workers={workers}", f"--log_dir={work / f'logs-{workers}'}", "--", *app]
    wall = _run(command, work / f"{workers}.log")
    curve = json.loads((run_dir / "curve.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    seconds = [row["seconds"] for row in curve[1:]]
    _VERSIONS.update(manifest.get("versions") or {})
    epoch_seconds = statistics.median(seconds)
    n = max(workers, 1)
    batches = _batches_per_epoch(manifest)
    steps = batches // n
    return {"setup": name, "workers": workers, "epochs": len(curve), "wall_seconds": round(wall, 1),
            "epoch_seconds": [round(s, 2) for s in seconds], "median_epoch_seconds": round(epoch_seconds, 2),
            "batches_per_epoch": batches, "global_steps_per_epoch": steps,
            "global_steps_per_second": round(steps / epoch_seconds, 3),
            "examples_per_second": round(steps * n * BATCH / epoch_seconds, 1)}


_VERSIONS = {}  # the versions the runs' manifests record (TensorFlow, tf-keras, numpy, Python)


def _batches_per_epoch(manifest):
    """Full batches of the training split: int(80%) of the records read (the app's split), in batches of 256."""
    return int(manifest["num_records"] * 0.8) // BATCH


# app, preset, lookups per worker step (batch x steps of the embedding's input; 0: no embedding)
TRAFFIC = [("stocktwits", "hoffman", 256 * 244), ("ptb", "small", 20 * 20), ("ptb", "medium", 20 * 35),
           ("ptb", "large", 20 * 35), ("ptb_thomas", "thomas", 20 * 35), ("fables", "blog", 0),
           ("fables", "improved", 0), ("essentials", "book", 0), ("imdb", "lstm", 64 * 200),
           ("imdb", "stacked", 64 * 200), ("imdb", "bidirectional", 64 * 200), ("imdb", "attention", 64 * 200),
           ("imdb", "l2", 64 * 200)]


def _distinct(batches):
    """Mean number of distinct ids in a worker's batch (the rows a sync step sends), over ``batches``."""
    import numpy as np
    return float(np.mean([np.unique(b).size for b in batches]))


def _build_published(app, preset):
    """Build the app's published training graph in the default graph (no session). Returns (note on the sizes,
    mean distinct embedding rows per worker batch over the data's first epoch, or None without an embedding)."""
    import numpy as np

    from legacy_lstm import cli, essentials, fables, imdb, ptb, ptb_thomas, stocktwits
    from legacy_lstm.data import download
    from legacy_lstm.data import fables as fable_data
    from legacy_lstm.data import ptb as ptb_data
    data_dir = str(cli.default_data_dir())
    if app == "stocktwits":
        config = stocktwits.PRESETS[preset]
        data = stocktwits.load_data(download.locate(download.STOCKTWITS, data_dir), config, stocktwits.FAITHFUL, 1)
        stocktwits.build_graph(stocktwits.embedding_rows(config, data.vocab), config)
        x, b = data.train.x, config.batch_size
        return f"vocabulary {len(data.vocab):,} words + padding", _distinct(
            x[i:i + b] for i in range(0, len(x) - b + 1, b))
    if app in ("ptb", "ptb_thomas"):
        module = ptb if app == "ptb" else ptb_thomas
        config = module.PRESETS[preset]
        fake = np.arange(config.vocab_size, dtype=np.int32)  # the producer only needs enough tokens to build
        if app == "ptb":
            ptb.official_graph(config, fake, fake)
        else:
            ptb_thomas.Model(ptb_thomas.Input(config.batch_size, config.num_steps, fake), True, config)
        train = np.asarray(ptb_data.load_raw(*ptb_data.locate(data_dir))[0])
        rows = train[:len(train) // config.batch_size * config.batch_size].reshape(config.batch_size, -1)
        t = config.num_steps
        return f"vocabulary {config.vocab_size:,}", _distinct(
            rows[:, i:i + t] for i in range(0, rows.shape[1] - t, t))
    if app == "fables":
        config = fables.PRESETS[preset]
        dictionary = fable_data.load_raw(download.locate(download.FABLE, data_dir))[2]
        fables.build_graph(len(dictionary), config)
        return f"vocabulary {len(dictionary)} (the fable's words)", None
    if app == "essentials":
        config = essentials.PRESETS[preset]
        essentials.build_graph(essentials.load_data(config, 1).word_vectors, config)
        return "word vectors fed, not variables", None
    config = imdb.PRESETS[preset]
    imdb.build_graph(config)
    data = imdb.load_data(imdb.locate_data(data_dir), config, imdb.FAITHFUL, download.cache_dir() / "imdb")
    x, b = data.train.x, config.batch_size
    return f"num_words {config.num_words:,}", _distinct(x[i:i + b] for i in range(0, len(x), b))


def traffic_row(app, preset, lookups):
    """Bytes per worker step of one published configuration (see the module docstring)."""
    from legacy_lstm.compat import tf, tf1
    with tf.Graph().as_default() as graph:
        note, distinct = _build_published(app, preset)
        gathered = set()
        for op in graph.get_operations():
            if op.type in ("Gather", "GatherV2", "ResourceGather"):
                source = op.inputs[0].op
                while source.type == "Identity":  # a variable's read
                    source = source.inputs[0].op
                gathered.add(source.name)
        dense = embed = 0
        embeddings = []
        for var in tf1.trainable_variables():
            size = var.shape.num_elements() * var.dtype.base_dtype.size
            if var.op.name in gathered:
                rows, dim = var.shape.as_list()
                embeddings.append({"name": var.op.name, "rows": rows, "dim": dim,
                                   "row_bytes": dim * var.dtype.base_dtype.size})
                embed += size
            else:
                dense += size
    lookup_bytes = sum(lookups * e["row_bytes"] for e in embeddings)
    sync_rows = sum(min(distinct, e["rows"]) * (e["row_bytes"] + 4) for e in embeddings)
    async_rows = sum(lookups * (e["row_bytes"] + 4) for e in embeddings)
    read = dense + lookup_bytes
    return {"app": app, "preset": preset, "note": note, "dense_bytes": dense, "embedding_bytes": embed,
            "embeddings": embeddings, "lookups_per_step": lookups if embeddings else 0,
            "distinct_rows_per_step": round(distinct, 1) if embeddings else 0,
            "read_bytes": read, "send_sync_bytes": round(dense + sync_rows), "send_async_bytes": dense + async_rows,
            "per_step_sync_bytes": round(read + dense + sync_rows), "per_step_async_bytes": read + dense + async_rows}


def _mb(n):
    return f"{n / 1e6:,.2f}"


def traffic(out):
    rows = [traffic_row(*item) for item in TRAFFIC]
    from legacy_lstm.compat import versions
    doc = {"command": "python scripts/distributed_bench.py --traffic", "what": "bytes per worker step, computed",
           "versions": versions(), "rows": rows}
    pathlib.Path(out).write_text(json.dumps(doc, indent=1) + "\n")
    print("| app, preset | dense variables (MB) | lookups / distinct rows per step | read (MB) | send, sync (MB) | "
          "send, async (MB) | per worker step, sync (MB) | per worker step, async (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        rows_text = f"{r['lookups_per_step']:,} / {r['distinct_rows_per_step']:,.0f}" if r["embeddings"] else "-"
        print(f"| {r['app']} {r['preset']} | {_mb(r['dense_bytes'])} | {rows_text} | {_mb(r['read_bytes'])} | "
              f"{_mb(r['send_sync_bytes'])} | {_mb(r['send_async_bytes'])} | {_mb(r['per_step_sync_bytes'])} | "
              f"{_mb(r['per_step_async_bytes'])} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,3", help="cluster sizes to measure (besides one process)")
    parser.add_argument("--records", type=int, default=7680, help="messages of the data used (default: 24 batches "
                        "of 256 per epoch)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=None, help="default: results/benchmark-distributed.json (--traffic: "
                        "results/benchmark-distributed-traffic.json)")
    parser.add_argument("--traffic", action="store_true", help="compute the bytes per worker step of every app's "
                        "published configuration instead of timing clusters")
    args = parser.parse_args(argv)
    if args.traffic:
        return traffic(args.out or str(REPO / "results" / "benchmark-distributed-traffic.json"))
    args.out = args.out or str(REPO / "results" / "benchmark-distributed.json")
    sizes = [0] + [int(w) for w in args.workers.split(",")]
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (epoch 1 is left out)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="distributed-bench-") as work:
        for workers in sizes:
            row = measure(workers, args.records, args.epochs, pathlib.Path(work))
            print(json.dumps(row), flush=True)
            rows.append(row)
    base = rows[0]["examples_per_second"]
    for row in rows:
        row["examples_per_second_vs_one_process"] = round(row["examples_per_second"] / base, 3)
    doc = {"command": "python scripts/distributed_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "app": "stocktwits", "preset": "hoffman", "records": args.records, "batch_size": BATCH,
           "machine": {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine()},
           "seed": SEED, "split_seed": SPLIT_SEED, "versions": dict(_VERSIONS),
           "measured": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    pathlib.Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print("| setup | global steps/s | examples/s | vs one process | median epoch s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['setup']} | {row['global_steps_per_second']} | {row['examples_per_second']} | "
              f"{row['examples_per_second_vs_one_process']}x | {row['median_epoch_seconds']} |")


if __name__ == "__main__":
    main()
