"""Small StockTwits-format data the tests write themselves (hermetic), and a small config for it."""

import csv
import gzip
import io

import numpy as np

from legacy_lstm import stocktwits

BULL_WORDS = ["moon", "calls", "buy", "rally", "breakout", "long", "green", "rip"]
BEAR_WORDS = ["puts", "crash", "sell", "dump", "short", "red", "tank", "fade"]
NEUTRAL = ["the", "market", "today", "is", "going", "to", "spy", "we", "see", "a"]

# A config small enough for seconds-long tests but with the published graph's structure; Adadelta needs a
# large rate to fit the small data in 3 epochs.
SMALL = stocktwits.Config(lstm_sizes=(16, 8), embed_size=16, batch_size=16, learning_rate=10.0, keep_prob=0.8,
                          epochs=3)
QUICK = stocktwits.Quirks(seq_len=12)


def write_messages(path, n=480, seed=0, unique_words=False):
    """Write a gzip'd CSV in the original's format with ``n`` separable messages; return its path.

    ``unique_words``: every message also holds a word of its own (``only`` + ``i`` in letters, as digits would
    become <NUMBER>), so a vocabulary built from one split differs from one built from all messages."""
    rng = np.random.RandomState(seed)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["", "message", "sentiment"])
    for i in range(n):
        bullish = rng.rand() < 0.55
        words = list(rng.choice(NEUTRAL, rng.randint(2, 6)))
        words += list(rng.choice(BULL_WORDS if bullish else BEAR_WORDS, rng.randint(1, 3)))
        rng.shuffle(words)
        text = " ".join(words + (["only" + "".join(chr(97 + int(d)) for d in str(i))] if unique_words else []))
        if i % 7 == 0:
            text = f"$SPY {text} @trader https://x.co/{i} $245.50"
        if i % 11 == 0:
            text += "\nsecond line, with a comma"
        writer.writerow([i, text, "bullish" if bullish else "bearish"])
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    return path
