"""Tests of legacy_lstm.data.stocktwits (pure Python/NumPy: this file must not import tensorflow).

The expected outputs of ``preprocess`` were worked out by hand from the rules of Hoffman's
``preprocess_ST_message`` (utils.py of GarrettHoffman/lstm-oreilly@907bc5a), step by step, never by running it.
"""

import gzip
import pathlib

import numpy as np
import pytest

from legacy_lstm.data import stocktwits as st


# ---------------------------------------------------------------------------------------------------------
# preprocess: one case per rule. Each comment traces the steps of ``preprocess`` that matter for the case.
# ---------------------------------------------------------------------------------------------------------

PREPROCESS_CASES = [
    # step 1: lowercasing
    pytest.param("BUY The DIP", "buy the dip", id="lowercase"),
    # step 11: split() on any whitespace, joined with single spaces
    pytest.param("  buy\n\tthe   dip  ", "buy the dip", id="whitespace-normalised"),
    pytest.param("", "", id="empty-input"),
    # step 2: cashtags (after lowercasing, so $SPY -> $spy -> <TICKER>, still upper case)
    pytest.param("$SPY", "<TICKER>", id="cashtag-alone"),
    pytest.param("$SPY and $qqq up", "<TICKER> and <TICKER> up", id="cashtags-in-text"),
    # step 2 takes only the letters: "$spy500" -> " <TICKER> 500" -> step 6 -> "<TICKER> <NUMBER>"
    pytest.param("$SPY500", "<TICKER> <NUMBER>", id="cashtag-then-digits"),
    # step 3: users; \w+ takes letters, digits and underscores; the ':' is punctuation (step 10)
    pytest.param("@Bob_99: nice call", "<USER> nice call", id="user-with-digits-underscore"),
    pytest.param("ask @bob", "ask <USER>", id="user"),
    # step 4: links, http and https, the whole run of non-space characters (digits inside are not numbers)
    pytest.param("see https://t.co/AbC123 now", "see <LINK> now", id="link-https"),
    pytest.param("see http://stocktwits.com/x?a=1&b=2 now", "see <LINK> now", id="link-http"),
    # step 3 runs before step 4: "https://x.com/@bob" -> "https://x.com/ <USER> " -> "<LINK> <USER>"
    pytest.param("https://x.com/@bob", "<LINK> <USER>", id="user-replaced-before-link"),
    # step 5: prices with a dollar sign before ...
    pytest.param("buy at $245.50 today", "buy at <PRICE> today", id="price-dollar-before"),
    pytest.param("$5", "<PRICE>", id="price-dollar-before-integer"),
    pytest.param("$.50", "<PRICE>", id="price-dollar-before-no-leading-digit"),
    # ... or after
    pytest.param("sold at 12$", "sold at <PRICE>", id="price-dollar-after"),
    pytest.param("12.5$ target", "<PRICE> target", id="price-dollar-after-decimal"),
    # step 5's lookahead refuses "$5%": step 6 skips the percentage, step 7 turns "5" into <NUMBER>,
    # step 10 removes "$" and "%"
    pytest.param("$5%", "<NUMBER>", id="dollar-percentage-is-number"),
    # step 6: numbers without a sign
    pytest.param("spy 3.14 up", "spy <NUMBER> up", id="number-decimal"),
    pytest.param("245", "<NUMBER>", id="number-integer"),
    pytest.param("q3 earnings", "q <NUMBER> earnings", id="number-inside-word"),
    # "1,000": "1" and "000" are separate numbers; the "," is removed by step 10
    pytest.param("1,000", "<NUMBER> <NUMBER>", id="number-with-comma"),
    pytest.param("3:30pm", "<NUMBER> <NUMBER> pm", id="time"),
    # percentages: step 6 skips them, step 7 gives " <NUMBER> %", step 10 removes the "%"
    pytest.param("14%", "<NUMBER>", id="percent"),
    pytest.param("up 14% ytd", "up <NUMBER> ytd", id="percent-in-text"),
    # "1.5%": step 6 skips every position (1.5%, .5%, 5%), step 7 matches "1" and "5" separately
    pytest.param("down 1.5%", "down <NUMBER> <NUMBER>", id="percent-decimal"),
    # "k" amounts: step 6 skips them, step 7 replaces the digits only, the "k" stays a word of its own
    pytest.param("5k", "<NUMBER> k", id="k-amount"),
    pytest.param("100K shares", "<NUMBER> k shares", id="k-amount-uppercase"),
    pytest.param("2.5k", "<NUMBER> <NUMBER> k", id="k-amount-decimal"),
    # signed integers: the digits become <NUMBER>, the sign is punctuation and is removed
    pytest.param("-5", "<NUMBER>", id="negative-integer"),
    pytest.param("+3", "<NUMBER>", id="positive-integer"),
    pytest.param("pts -14% +5k", "pts <NUMBER> <NUMBER> k", id="signed-percent-and-k"),
    # step 8: HTML entities deleted (the ";" left over is punctuation)
    pytest.param("this &amp; that", "this that", id="html-amp"),
    pytest.param("a &gt; b", "a b", id="html-gt"),
    # "&#39;" is not \&\w+: step 6 turns "39" into <NUMBER>, step 10 removes "&", "#" and ";"
    pytest.param("it&#39;s", "it <NUMBER> s", id="html-numeric-entity"),
    # step 9: non-ASCII characters and emoji deleted
    pytest.param("moon \U0001F680\U0001F680", "moon", id="emoji"),
    pytest.param("caf\u00e9 na\u00efve", "caf nave", id="accented"),
    pytest.param("up\u2014down", "updown", id="em-dash"),
    # step 10: punctuation removed (inside words too)
    pytest.param("Wow!!! Really?", "wow really", id="punctuation"),
    pytest.param("don't (ever) sell...", "dont ever sell", id="punctuation-inside-words"),
    # step 11: a '<' or '>' inside a normal word is removed; special tokens stay upper case
    pytest.param("bull>bear <<wow>>", "bullbear wow", id="angle-brackets-in-words"),
    # the user typing "<TICKER>" is lowercased by step 1, so it is not a special token any more
    pytest.param("<TICKER> <User>", "ticker user", id="literal-special-token-lowercased"),
    # a token that is only '<' or '>' becomes "", and the single-space join then leaves two spaces
    pytest.param("a < b", "a  b", id="lone-angle-bracket-double-space"),
    pytest.param("go -> up", "go  up", id="arrow-double-space"),
    pytest.param("< >", " ", id="two-lone-brackets-single-space"),
    # "<3": step 6 gives "< <NUMBER> ": tokens "<" -> "" and "<NUMBER>"
    pytest.param("i <3 spy", "i  <NUMBER> spy", id="heart"),
    # row 88808 of the real data: the em dash goes (step 9), the '<' survives step 10, step 11 empties it
    pytest.param("<\u2014", "", id="row-88808-becomes-empty"),
    # everything together
    pytest.param("$SPY to $250 by Friday!!! @trader_joe https://t.co/xyz \U0001F680 up 14%",
                 "<TICKER> to <PRICE> by friday <USER> <LINK> up <NUMBER>", id="combined"),
]


@pytest.mark.parametrize("text, expected", PREPROCESS_CASES)
def test_preprocess(text, expected):
    out = st.preprocess(text)
    assert isinstance(out, str)
    assert out == expected


def test_preprocess_returns_space_joined_string_not_list():
    out = st.preprocess("$SPY to the moon")
    assert type(out) is str
    assert out.split(" ") == ["<TICKER>", "to", "the", "moon"]


def test_special_tokens_are_upper_case_and_complete():
    out = st.preprocess("$AAPL @ann http://a.b $9 7").split()
    assert out == ["<TICKER>", "<USER>", "<LINK>", "<PRICE>", "<NUMBER>"]
    assert set(out) == set(st.SPECIAL_TOKENS)
    assert all(tok == tok.upper() for tok in out)


# ---------------------------------------------------------------------------------------------------------
# vocabulary, empty messages, encoding, padding
# ---------------------------------------------------------------------------------------------------------

def test_build_vocab_ids_from_one_by_count_then_first_occurrence():
    # counts: b 2, a 3, c 2, d 1; first occurrence order b, a, c, d
    vocab = st.build_vocab(["b a c", "a b", "c d a"])
    assert vocab == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_build_vocab_ties_not_alphabetical():
    # y and x both occur twice; y occurs first, so it gets the smaller id
    assert st.build_vocab(["y", "x y x"]) == {"y": 1, "x": 2}
    # all counts 1: ids follow the order of first occurrence across messages
    assert st.build_vocab(["zeta alpha", "mid"]) == {"zeta": 1, "alpha": 2, "mid": 3}


def test_build_vocab_ignores_extra_spaces_and_empty_texts():
    vocab = st.build_vocab(["a  b", "", " ", "b"])
    assert vocab == {"b": 1, "a": 2}
    assert 0 not in vocab.values()


def test_drop_empty():
    texts, labels = st.drop_empty(["a", "", "b c", ""], np.array([1, 0, 1, 1], dtype=np.int32))
    assert texts == ["a", "b c"]
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, [1, 1])
    assert labels.dtype == np.int32


def test_drop_empty_checks_string_length_only():
    # the original drops only strings of length 0; a single space (what "< >" preprocesses to) is kept
    texts, labels = st.drop_empty([" ", ""], [0, 1])
    assert texts == [" "]
    np.testing.assert_array_equal(labels, [0])


def test_encode_drops_unknown_words():
    vocab = {"a": 1, "b": 2}
    assert st.encode(["a b", "b z a", "z", "", "a  a"], vocab) == [[1, 2], [2, 1], [], [], [1, 1]]


def test_left_pad():
    x = st.left_pad([[1, 2], [3, 4, 5, 6, 7], [], [9], [5, 6, 7, 8]], 4)
    assert x.dtype == np.int32
    assert x.shape == (5, 4)
    np.testing.assert_array_equal(x, [[0, 0, 1, 2],
                                      [3, 4, 5, 6],   # truncation keeps the FIRST seq_len tokens
                                      [0, 0, 0, 0],   # an empty row is all padding
                                      [0, 0, 0, 9],
                                      [5, 6, 7, 8]])


def test_left_pad_no_rows():
    x = st.left_pad([], 3)
    assert x.shape == (0, 3) and x.dtype == np.int32


# ---------------------------------------------------------------------------------------------------------
# split and batches
# ---------------------------------------------------------------------------------------------------------

def _xy(n):
    x = np.arange(n, dtype=np.int32).reshape(n, 1) * np.ones((1, 3), dtype=np.int32)
    y = np.arange(n) * 10
    return x, y


@pytest.mark.parametrize("n, sizes", [
    pytest.param(10, (8, 1, 1), id="n10"),
    pytest.param(13, (10, 1, 2), id="n13-odd-rest"),   # int(10.4) = 10; rest 3 -> int(1.5) = 1 and 2
    pytest.param(21, (16, 2, 3), id="n21"),            # int(16.8) = 16; rest 5 -> int(2.5) = 2 and 3
    pytest.param(96966, (77572, 9697, 9697), id="n96966-stocktwits"),
])
def test_split_sizes(n, sizes):
    x, y = _xy(n)
    (xtr, ytr), (xva, yva), (xte, yte) = st.split(x, y, 0.8, seed=0)
    assert (len(xtr), len(xva), len(xte)) == sizes
    assert (len(ytr), len(yva), len(yte)) == sizes


def test_split_is_a_partition_and_keeps_pairs():
    x, y = _xy(50)
    parts = st.split(x, y, 0.8, seed=3)
    xs = np.concatenate([p[0] for p in parts])
    ys = np.concatenate([p[1] for p in parts])
    np.testing.assert_array_equal(np.sort(xs[:, 0]), np.arange(50))
    np.testing.assert_array_equal(ys, xs[:, 0] * 10)   # every label stays with its example


def test_split_same_seed_same_split_other_seed_other_split():
    x, y = _xy(50)
    a = st.split(x, y, 0.8, seed=7)
    b = st.split(x, y, 0.8, seed=7)
    c = st.split(x, y, 0.8, seed=8)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])


def test_split_seed_1_is_randomstate_permutation_order():
    x, y = _xy(30)
    parts = st.split(x, y, 0.8, seed=1)
    order = np.random.RandomState(1).permutation(30)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x[order])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y[order])
    np.testing.assert_array_equal(parts[0][0][:, 0], order[:24])


@pytest.mark.parametrize("n, batch_size, expected", [
    pytest.param(10, 3, 3, id="remainder-dropped"),
    pytest.param(9, 3, 3, id="exact"),
    pytest.param(2, 3, 0, id="fewer-than-one-batch"),
    pytest.param(77572, 256, 303, id="stocktwits-train"),
    pytest.param(9697, 256, 37, id="stocktwits-val-test"),
])
def test_num_batches(n, batch_size, expected):
    assert st.num_batches(n, batch_size) == expected


def test_get_batches_consecutive_and_remainder_dropped():
    x, y = _xy(10)
    batches = list(st.get_batches(x, y, 3))
    assert len(batches) == 3
    for i, (bx, by) in enumerate(batches):
        assert bx.shape == (3, 3) and by.shape == (3,)
        np.testing.assert_array_equal(bx[:, 0], [3 * i, 3 * i + 1, 3 * i + 2])
        np.testing.assert_array_equal(by, bx[:, 0] * 10)
    # the same order every time (no shuffling)
    again = list(st.get_batches(x, y, 3))
    for (bx, _), (ax, _) in zip(batches, again):
        np.testing.assert_array_equal(bx, ax)


def test_get_batches_too_few_examples():
    x, y = _xy(2)
    assert list(st.get_batches(x, y, 3)) == []


# ---------------------------------------------------------------------------------------------------------
# read_records on small files written here
# ---------------------------------------------------------------------------------------------------------

def _write_gz(path, text):
    with gzip.open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return path


@pytest.mark.parametrize("eol", [pytest.param("\n", id="lf"), pytest.param("\r\n", id="crlf")])
def test_read_records(tmp_path, eol):
    text = eol.join([
        ",message,sentiment",
        '0,"$SPY up, then\ndown",bullish',
        "1,plain message,bearish",
        '2,"say ""hi"" \u2014 \U0001F680",bullish',
        "3,last one,bearish",
    ]) + eol
    messages, labels = st.read_records(_write_gz(tmp_path / "small.gz", text))
    assert messages == ["$SPY up, then\ndown", "plain message", 'say "hi" \u2014 \U0001F680', "last one"]
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, [1, 0, 1, 0])


@pytest.mark.parametrize("label", ["neutral", "Bullish", "positive", "", "bullish "])
def test_read_records_refuses_an_unknown_label_naming_the_record(tmp_path, label):
    """Only exactly ``bullish`` and ``bearish``: any other label was silently read as bearish."""
    text = f",message,sentiment\n0,fine,bullish\n1,also fine,bearish\n2,odd one,{label}\n"
    with pytest.raises(ValueError, match=rf"record 3 has the label {label!r}, expected one of bullish, bearish"):
        st.read_records(_write_gz(tmp_path / "bad.gz", text))


def test_read_records_header_only(tmp_path):
    messages, labels = st.read_records(_write_gz(tmp_path / "h.gz", ",message,sentiment\n"))
    assert messages == [] and len(labels) == 0


@pytest.mark.parametrize("text", [
    pytest.param("id,text,label\n0,a,bullish\n", id="wrong-names"),
    pytest.param(",sentiment,message\n0,bullish,a\n", id="swapped"),
    pytest.param("", id="empty-file"),
])
def test_read_records_bad_header(tmp_path, text):
    with pytest.raises(ValueError, match="header"):
        st.read_records(_write_gz(tmp_path / "bad.gz", text))


@pytest.mark.parametrize("row", [
    pytest.param("1,only two", id="too-few-fields"),
    pytest.param("1,a,b,bullish", id="too-many-fields"),
    pytest.param("1,hello, world,bullish", id="unquoted-comma-in-message"),
])
def test_read_records_wrong_field_count(tmp_path, row):
    text = ",message,sentiment\n0,fine,bullish\n" + row + "\n"
    with pytest.raises(ValueError, match="fields"):
        st.read_records(_write_gz(tmp_path / "bad.gz", text))


# ---------------------------------------------------------------------------------------------------------
# the real data (skipped when the file is absent)
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real(stocktwits_path):
    """The whole pipeline of the notebook, once per module (~3 s); stocktwits_path (conftest) skips without data."""
    messages, labels = st.read_records(stocktwits_path)
    texts = [st.preprocess(m) for m in messages]
    vocab = st.build_vocab(texts)
    kept, kept_labels = st.drop_empty(texts, labels)
    ids = st.encode(kept, vocab)
    x = st.left_pad(ids, 244)
    return dict(messages=messages, labels=labels, texts=texts, vocab=vocab, kept=kept,
                kept_labels=kept_labels, ids=ids, x=x)


def test_real_records(real):
    assert len(real["messages"]) == 96967
    assert len(real["labels"]) == 96967
    assert int(real["labels"].sum()) == 53704
    assert int((real["labels"] == 0).sum()) == 43263


def test_real_one_empty_message(real):
    empty = [i for i, t in enumerate(real["texts"]) if len(t) == 0]
    assert empty == [88808]
    assert real["messages"][88808] == "<\u2014"
    assert len(real["kept"]) == 96966
    assert len(real["kept_labels"]) == 96966
    assert real["kept"] == real["texts"][:88808] + real["texts"][88809:]


def test_real_vocab(real):
    vocab = real["vocab"]
    assert len(vocab) == 31980
    assert len(vocab) + 1 == 31981          # vocab_size with the padding id 0
    assert sorted(vocab.values()) == list(range(1, 31981))
    top = sorted(vocab, key=vocab.get)[:5]
    assert top == ["<TICKER>", "<NUMBER>", "the", "to", "<USER>"]
    tokens = " ".join(real["texts"]).split()
    assert tokens.count("<TICKER>") == 182726
    assert tokens.count("<NUMBER>") == 44362


def test_real_lengths(real):
    assert max(len(t.split()) for t in real["kept"]) == 39
    assert max(len(t) for t in real["kept"]) == 244
    assert max(len(r) for r in real["ids"]) == 39
    assert all(len(r) > 0 for r in real["ids"])      # the vocab covers every word, nothing is dropped


def test_real_padded_split_batches(real):
    x, y = real["x"], real["kept_labels"]
    assert x.shape == (96966, 244)
    assert x.dtype == np.int32
    assert (x[:, :205] == 0).all()                    # at least 205 leading zeros everywhere
    (xtr, ytr), (xva, yva), (xte, yte) = st.split(x, y, 0.8, seed=1)
    assert (len(xtr), len(xva), len(xte)) == (77572, 9697, 9697)
    assert (len(ytr), len(yva), len(yte)) == (77572, 9697, 9697)
    counts = [sum(1 for _ in st.get_batches(a, b, 256)) for a, b in ((xtr, ytr), (xva, yva), (xte, yte))]
    assert counts == [303, 37, 37]
    assert [st.num_batches(len(a), 256) for a in (xtr, xva, xte)] == [303, 37, 37]


def test_module_does_not_import_tensorflow():
    import subprocess
    import sys
    code = ("import sys, legacy_lstm.data.stocktwits; "
            "sys.exit(1 if any(m.split('.')[0] == 'tensorflow' for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=pathlib.Path(__file__).resolve().parents[1]).returncode == 0


def test_read_records_skips_blank_lines(tmp_path):
    path = tmp_path / "blank.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write(',message,sentiment\n0,up we go,bullish\n\n1,"down\nwe go",bearish\n\n')
    messages, labels = st.read_records(path)
    assert messages == ["up we go", "down\nwe go"] and list(labels) == [1, 0]
