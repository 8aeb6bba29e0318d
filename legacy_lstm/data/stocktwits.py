"""StockTwits $SPY 2017 messages: read, preprocess, vocabulary, encode, pad, split, batch.

Pure Python/NumPy, in the order of Hoffman's notebook and ``utils.py`` (GarrettHoffman/lstm-oreilly@907bc5a):

    records = read_records(path)                      # 96,967 (message, label) pairs, csv module
    texts = [preprocess(m) for m, _ in records]       # space-joined strings, special tokens upper case
    vocab = build_vocab(texts)                        # ids from 1; 0 is padding; 31,980 words
    texts, labels = drop_empty(texts, labels)         # drops the one empty message (row 88808)
    ids = encode(texts, vocab)
    x = left_pad(ids, 244)                            # (96,966, 244) int32
    split(x, y, 0.8, seed)                            # 77,572 / 9,697 / 9,697
    get_batches(x, y, 256)                            # 303 / 37 / 37 full batches, remainder dropped
"""

import collections
import csv
import gzip
import io
import re
import string

import numpy as np

LABELS = {"bullish": 1, "bearish": 0}
SPECIAL_TOKENS = ("<TICKER>", "<USER>", "<LINK>", "<PRICE>", "<NUMBER>")
UNKNOWN_WORDS = "drop"  # what encode() does with a word outside the vocabulary (the original had none)

# The regexes of utils.py, in the order it applies them, written as raw strings (the original's non-raw
# literals such as '\$' are invalid escapes on Python 3.12+; the patterns are the same).
_TICKER = re.compile(r"\$[a-zA-Z]+")
_USER = re.compile(r"\@\w+")
_LINK = re.compile(r"https?:\/\/[^\s]+")
_PRICE_SIGN = re.compile(r"\$(?!\d*\.?\d+%)\d*\.?\d+|(?!\d*\.?\d+%)\d*\.?\d+\$")
_NUMBER_NOSIGN = re.compile(r"(?!\d*\.?\d+%)(?!\d*\.?\d+k)\d*\.?\d+")
_INTEGER = re.compile(r"[-+]?[0-9]+")
_HTML_ENTITY = re.compile(r"\&\w+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# string.punctuation without '<' and '>': the angle brackets of the special tokens survive this step.
_PUNCTUATION = re.compile("[%s]" % re.escape(string.punctuation.replace("<", "").replace(">", "")))


def preprocess(text):
    """Hoffman's ``preprocess_ST_message``: returns a space-joined string (not a list)."""
    text = text.lower()
    text = _TICKER.sub(" <TICKER> ", text)
    text = _USER.sub(" <USER> ", text)
    text = _LINK.sub(" <LINK> ", text)
    text = _PRICE_SIGN.sub(" <PRICE> ", text)
    text = _NUMBER_NOSIGN.sub(" <NUMBER> ", text)
    text = _INTEGER.sub(" <NUMBER> ", text)
    text = _HTML_ENTITY.sub("", text)
    text = _NON_ASCII.sub("", text)
    text = _PUNCTUATION.sub("", text)
    # A token that is not a special token loses every '<' and '>' (it may become empty: the join then
    # leaves a double space, as the original does; split() ignores it later).
    return " ".join(tok if tok in SPECIAL_TOKENS else tok.replace("<", "").replace(">", "")
                    for tok in text.split())


def read_records(path):
    """Read the gzip'd CSV (header ``,message,sentiment``) with the csv module; quoted newlines are kept.

    Returns (messages, labels): a list of str and an int32 array, 1 for ``bullish``, 0 for ``bearish`` (the
    original mapped every other label to 0 as well; the file has only these two, so any other label -- ``Bullish``,
    ``positive``, empty -- is a ValueError naming the record instead of a silently wrong label).
    """
    messages, labels = [], []
    with gzip.open(path, "rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        header = next(reader, None)
        if header is None or [h.strip() for h in header[1:3]] != ["message", "sentiment"]:
            raise ValueError(f"{path}: expected the header ',message,sentiment', got {header!r}")
        for lineno, row in enumerate(reader, 2):
            if not row:  # a blank line (pandas skips them too)
                continue
            if len(row) != 3:
                raise ValueError(f"{path}: record {lineno - 1} has {len(row)} fields, expected 3: {row!r:.200}")
            if row[2] not in LABELS:
                raise ValueError(f"{path}: record {lineno - 1} has the label {row[2]!r}, expected one of "
                                 f"{', '.join(LABELS)}: {row!r:.200}")
            messages.append(row[1])
            labels.append(LABELS[row[2]])
    return messages, np.asarray(labels, dtype=np.int32)


def build_vocab(texts):
    """Word -> id, ids from 1 by count descending, ties in order of first occurrence (0 is padding)."""
    counts = collections.Counter(" ".join(texts).split())
    ordered = sorted(counts, key=counts.get, reverse=True)  # stable: ties keep first-occurrence order
    return {word: i for i, word in enumerate(ordered, 1)}


def drop_empty(texts, labels):
    """Drop messages whose preprocessed string is empty (string length 0, as the original checks)."""
    keep = [i for i, t in enumerate(texts) if len(t) != 0]
    return [texts[i] for i in keep], np.asarray(labels)[keep]


def encode(texts, vocab):
    """Lists of ids; words missing from ``vocab`` are dropped (only possible with a train-only vocab)."""
    return [[vocab[w] for w in t.split() if w in vocab] for t in texts]


def left_pad(ids, seq_len):
    """(N, seq_len) int32, each row left-padded with 0; rows longer than seq_len keep their first tokens."""
    out = np.zeros((len(ids), seq_len), dtype=np.int32)
    for i, row in enumerate(ids):
        row = row[:seq_len]
        if row:
            out[i, seq_len - len(row):] = row
    return out


def split(x, y, split_frac, seed):
    """Permute with ``RandomState(seed)`` (the original: np.random.permutation, unseeded), then take the first
    ``int(N * split_frac)`` for train and halve the rest (``int(len(rest) * 0.5)``) into val and test."""
    order = np.random.RandomState(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(len(x) * split_frac)
    half = cut + int((len(x) - cut) * 0.5)
    return (x[:cut], y[:cut]), (x[cut:half], y[cut:half]), (x[half:], y[half:])


def num_batches(n, batch_size):
    return n // batch_size


def get_batches(x, y, batch_size):
    """Yield consecutive (x[batch_size, T], y[batch_size]) slices in order; the remainder is dropped."""
    for start in range(0, num_batches(len(x), batch_size) * batch_size, batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]
