"""Reverse check, TF 2 side: a checkpoint OUR StockTwits app writes, for TF 1.15 to load (check_ours.py).

Run with the package's Python (TF 2)::

    python scripts/tf1_oracle/write_ours.py OUT_DIR

For each cell (basic, block, cudnn_compatible) it trains the app (``legacy_lstm.stocktwits.train``, the code
``--mode=train`` runs) at a tiny config on a small synthetic StockTwits-format file, so the final checkpoint
``sentiment.ckpt`` is written by the app's own Saver (optimiser slots included). Then it asks the app for its
predictions on a few messages (``legacy_lstm.stocktwits.predict``, the code ``--mode=predict`` runs) and writes
``OUT_DIR/<cell>/ours.npz``: the encoded messages padded to whole batches and our predictions for them.
check_ours.py, under TF 1.15, builds the original's graph, restores that checkpoint by name and must predict
the same.
"""

import csv
import gzip
import json
import pathlib
import sys

import numpy as np

from legacy_lstm import cells, stocktwits

# The tiny config (the same sizes as the oracle's fixtures, scripts/tf1_oracle/stocktwits.py).
# Adadelta needs a large rate to move far from the initial weights in 3 short epochs, so that the predictions
# compared are spread out, not all near 0.5.
CONFIG = stocktwits.Config(lstm_sizes=(8, 4), embed_size=8, batch_size=4, learning_rate=10.0, keep_prob=0.5,
                           epochs=3)
QUIRKS = stocktwits.Quirks(seq_len=8)
BULL = ["moon", "calls", "buy", "rally", "long", "green"]
BEAR = ["puts", "crash", "sell", "dump", "short", "red"]
NEUTRAL = ["the", "market", "today", "is", "spy", "we"]
MESSAGES = ["spy to the moon buy calls", "puts on $SPY crash today", "the market is red", "green rally long",
            "sell the rip", "we go long spy calls", "dump it", "today"]


def write_data(path, n=80, seed=0):
    """A gzip'd CSV in the original's format (``,message,sentiment``) with ``n`` separable messages."""
    rng = np.random.RandomState(seed)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["", "message", "sentiment"])
        for i in range(n):
            bullish = rng.rand() < 0.55
            words = list(rng.choice(NEUTRAL, rng.randint(1, 4))) + list(rng.choice(BULL if bullish else BEAR, 2))
            rng.shuffle(words)
            writer.writerow([i, " ".join(words), "bullish" if bullish else "bearish"])
    return path


def write_case(out, cell, data_path):
    run_dir = out / cell
    result = stocktwits.train(data_path, run_dir, preset=CONFIG, quirks=QUIRKS, split_seed=1, seed=7, cell=cell,
                              log=lambda *a, **k: None)
    assert result["finished"], result
    manifest = json.loads((run_dir / "manifest.json").read_text())
    vocab = json.loads((run_dir / manifest.get("vocab_file", "vocab.json")).read_text())
    predictions = stocktwits.predict(run_dir, MESSAGES)
    assert all(p["probability"] is not None for p in predictions), predictions
    x, _ = stocktwits.encode_for_prediction(MESSAGES, vocab, manifest["quirks"]["seq_len"])
    np.savez(run_dir / "ours.npz", inputs=x.astype(np.int32),
             predictions=np.array([p["probability"] for p in predictions], np.float32))
    (run_dir / "ours.json").write_text(json.dumps({
        "cell": cell, "checkpoint": "sentiment.ckpt", "vocab_size": manifest["vocab_size"],
        "lstm_sizes": list(CONFIG.lstm_sizes), "embed_size": CONFIG.embed_size, "batch_size": CONFIG.batch_size,
        "learning_rate": CONFIG.learning_rate, "seq_len": manifest["quirks"]["seq_len"]}, indent=2))
    return run_dir


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: python scripts/tf1_oracle/write_ours.py OUT_DIR")
    out = pathlib.Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    data_path = write_data(out / "StockTwits_tiny.gz")
    for cell in cells.KINDS:
        print("wrote", write_case(out, cell, data_path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
