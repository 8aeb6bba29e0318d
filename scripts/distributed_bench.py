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
           f"--max_epochs={epochs}", "--seed=1", "--split_seed=1", "--noprogress"]
    command = app if workers == 0 else [sys.executable, "-m", "legacy_lstm.cluster", "--ps=1",
                                        f"--workers={workers}", f"--log_dir={work / f'logs-{workers}'}", "--", *app]
    wall = _run(command, work / f"{workers}.log")
    curve = json.loads((run_dir / "curve.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    seconds = [row["seconds"] for row in curve[1:]]
    epoch_seconds = statistics.median(seconds)
    n = max(workers, 1)
    batches = _batches_per_epoch(manifest)
    steps = batches // n
    return {"setup": name, "workers": workers, "epochs": len(curve), "wall_seconds": round(wall, 1),
            "epoch_seconds": [round(s, 2) for s in seconds], "median_epoch_seconds": round(epoch_seconds, 2),
            "batches_per_epoch": batches, "global_steps_per_epoch": steps,
            "global_steps_per_second": round(steps / epoch_seconds, 3),
            "examples_per_second": round(steps * n * BATCH / epoch_seconds, 1)}


def _batches_per_epoch(manifest):
    """Full batches of the training split: int(80%) of the records read (the app's split), in batches of 256."""
    return int(manifest["num_records"] * 0.8) // BATCH


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,3", help="cluster sizes to measure (besides one process)")
    parser.add_argument("--records", type=int, default=7680, help="messages of the data used (default: 24 batches "
                        "of 256 per epoch)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "results" / "benchmark-distributed.json"))
    args = parser.parse_args(argv)
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
           "measured": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    pathlib.Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print("| setup | global steps/s | examples/s | vs one process | median epoch s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['setup']} | {row['global_steps_per_second']} | {row['examples_per_second']} | "
              f"{row['examples_per_second_vs_one_process']}x | {row['median_epoch_seconds']} |")


if __name__ == "__main__":
    main()
