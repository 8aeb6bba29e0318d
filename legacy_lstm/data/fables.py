"""Aesop's "Belling the cat" for Atienza's next-word LSTM: tokens, dictionary, training windows.

Pure Python/NumPy, as Atienza's ``rnn_words.py`` does it (roatienza/Deep-Learning-Experiments)::

    words = read_words(path)                  # 204 tokens, str (the original kept np.str_)
    dictionary, reverse = build_dataset(words) # 112 symbols, ids in Counter.most_common() order: ',' 0, 'the' 1
    ids = encode(words, dictionary)           # int64 [204]
    offsets = Offsets(len(ids), 3, rng)       # the original's random start and stride-4 stepping
    x, y = window(ids, offset, 3)             # float32 [1, 3, 1] (raw ids as numbers), int label
    x, y = all_windows(ids, 3)                # float32 [201, 3, 1], int64 [201]: every window, stride 1

Ties in the frequency order keep first-appearance order (Counter on Python 3.7+), so "council" is 39 and
"spoke" 106; the blog, on Python 3.5, had hash-order ties ("council" 37, "spoke" 111). The model is fed
raw ids, so the order matters a little; it is stored with every run (manifest and vocab.json).
"""

import collections
import random

import numpy as np


def read_words(path):
    """All whitespace-separated tokens of the file, line after line.

    The original split each line and reshaped the np.array of lines to [-1]: that works for the shipped
    one-line file only (a multi-line file raised "unhashable type: 'list'", roatienza/Deep-Learning-Experiments#6);
    flattening all lines as here is the 2018 fix and gives identical tokens for the one-line file.
    """
    with open(path, encoding="utf-8") as f:
        return [word for line in f for word in line.strip().split()]


def build_dataset(words, tie_seed=None):
    """(dictionary {word: id}, reverse_dictionary {id: word}), ids in ``Counter(words).most_common()`` order:
    by count, ties in first-appearance order (Python >= 3.7). ``tie_seed``: ties in an order drawn from
    ``random.Random(tie_seed)`` instead, as the original's Python < 3.6 gave them (dict order followed the
    per-process string hashes, so every run had its own dictionary)."""
    counted = list(collections.Counter(words).items())
    if tie_seed is not None:
        random.Random(tie_seed).shuffle(counted)
    counted.sort(key=lambda item: -item[1])  # stable: ties keep their order
    dictionary = {word: i for i, (word, _) in enumerate(counted)}
    reverse_dictionary = {i: word for word, i in dictionary.items()}
    return dictionary, reverse_dictionary


def encode(words, dictionary):
    """Ids of ``words`` as int64 [len(words)]; KeyError names the first unknown word."""
    return np.array([dictionary[w] for w in words], dtype=np.int64)


def load_raw(path, tie_seed=None):
    """(words, ids, dictionary, reverse_dictionary) of a text file (``tie_seed``: see ``build_dataset``)."""
    words = read_words(path)
    if not words:
        raise ValueError(f"{path} holds no words")
    dictionary, reverse = build_dataset(words, tie_seed)
    return words, encode(words, dictionary), dictionary, reverse


class Offsets:
    """The start of each training window, exactly as the original's loop moves it.

    The first offset is ``rng.randint(0, n_input + 1)``, i.e. uniform on 0..n_input+1. Before each step, an
    offset beyond ``num_tokens - (n_input + 1)`` (no room for n_input inputs and a label) is redrawn the same
    way; after each step it advances by ``n_input + 1``, so the windows do not overlap and one pass covers
    every (n_input+1)-th window. ``stride`` replaces that step (1: every window, overlapping; not original).
    ``rng`` is a ``random.Random`` (the original used the unseeded global one).

    ``next(offsets)`` gives the offset of the next step. ``skip(n)`` replays ``n`` steps (used on resume, so
    that a resumed run sees the windows an uninterrupted run would have seen).
    """

    def __init__(self, num_tokens, n_input, rng, stride=None):
        if num_tokens < n_input + 1:
            raise ValueError(f"the text has {num_tokens} tokens; a window needs {n_input + 1}")
        if stride is not None and stride < 1:
            raise ValueError(f"the window stride must be >= 1, got {stride}")
        self.num_tokens = num_tokens
        self.n_input = n_input
        self.stride = n_input + 1 if stride is None else stride  # the original's: n_input + 1
        self.rng = rng
        self.offset = rng.randint(0, n_input + 1)
        self.steps = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.offset > self.num_tokens - (self.n_input + 1):
            self.offset = self.rng.randint(0, self.n_input + 1)
        current = self.offset
        self.offset += self.stride
        self.steps += 1
        return current

    def skip(self, n):
        for _ in range(n):
            next(self)
        return self


def make_offsets(num_tokens, n_input, seed, stride=None):
    """``Offsets`` driven by its own ``random.Random(seed)`` (independent of every other random stream);
    ``stride`` None is the original's n_input + 1."""
    return Offsets(num_tokens, n_input, random.Random(seed), stride)


def window(ids, offset, n_input):
    """(x float32 [1, n_input, 1], label id) of the window starting at ``offset``: the original's
    ``symbols_in_keys`` (ids fed as numbers) and the id behind it (the one-hot is built in the graph feed)."""
    x = np.asarray(ids[offset:offset + n_input], dtype=np.float32).reshape(1, n_input, 1)
    return x, int(ids[offset + n_input])


def one_hot(label, vocab_size):
    """The original's ``symbols_out_onehot``: float32 [1, vocab_size]."""
    y = np.zeros([1, vocab_size], dtype=np.float32)
    y[0, label] = 1.0
    return y


def all_windows(ids, n_input):
    """Every window of the text with stride 1: (x float32 [N, n_input, 1], y int64 [N]), N = len(ids) - n_input."""
    ids = np.asarray(ids)
    n = len(ids) - n_input
    if n < 1:
        raise ValueError(f"the text has {len(ids)} tokens; a window needs {n_input + 1}")
    x = np.stack([ids[i:i + n_input] for i in range(n)]).astype(np.float32)[:, :, None]
    return x, ids[n_input:].astype(np.int64)
