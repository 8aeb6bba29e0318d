"""The Deep Learning Essentials toy: float64 graph, the shipped single step (the default) vs the 1,000 iterations,
word vectors, train files."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from legacy_lstm import essentials, runs, training
from legacy_lstm.compat import tf, tf1
from legacy_lstm.data import essentials as ess_data

REPO = pathlib.Path(__file__).resolve().parents[1]
TEST = essentials.PRESETS["test"]

POSITIVE = ["great", "wonderful", "superb", "moving"]
NEGATIVE = ["dull", "boring", "awful", "tedious"]
NEUTRAL = ["a", "film", "the", "plot", "acting", "was"]


def _quiet(*args, **kwargs):
    pass


def write_reviews(path, n=24, seed=0):
    """A labelled file whose label is given by one sentiment word among neutral ones (at most 4 tokens)."""
    rng = np.random.RandomState(seed)
    lines = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = list(rng.choice(NEUTRAL, 2)) + [rng.choice(POSITIVE if label == "pos" else NEGATIVE)]
        rng.shuffle(words)
        lines.append(f"{label}\t{' '.join(words).upper() if i % 5 == 0 else ' '.join(words)}")
    path.write_text("\n".join(lines[:n // 2]) + "\n\n" + "\n".join(lines[n // 2:]) + "\n", encoding="utf-8")
    return path


def write_vectors(path, words, dim, header=True, seed=0):
    rng = np.random.RandomState(seed)
    rows = rng.uniform(-1, 1, [len(words), dim])
    lines = [f"{len(words)} {dim}"] if header else []
    lines += [w + " " + " ".join(f"{v:.6f}" for v in row) for w, row in zip(words, rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return np.round(rows, 6)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("toy")
    return run_dir, essentials.train(run_dir, "test", essentials.LOOP, seed=1, log=_quiet)


# --- graph ---------------------------------------------------------------------------------------------------
def test_graph_dtypes_are_consistent_float64():
    with tf.Graph().as_default() as graph:
        model = essentials.build_graph(np.random.RandomState(0).random_sample([1024, 64]), essentials.Config())
        variables = {v.op.name: (v.dtype.base_dtype, v.shape.as_list()) for v in tf1.trainable_variables()}
        assert variables == {"Variable": (tf.float32, [4, 4, 64]), "Variable_1": (tf.float32, [16, 2]),
                             "Variable_2": (tf.float32, [2]),
                             "rnn/basic_lstm_cell/kernel": (tf.float64, [80, 64]),
                             "rnn/basic_lstm_cell/bias": (tf.float64, [64])}
        assert model.labels.dtype == tf.float64 and model.labels.shape.as_list() == [4, 2]
        assert model.raw_data.dtype == tf.int32 and model.raw_data.shape.as_list() == [4, 4]
        lookup = [op for op in graph.get_operations() if op.type in ("GatherV2", "ResourceGather")
                  and op.name.startswith("embedding_lookup")]
        assert lookup and lookup[0].outputs[0].dtype == tf.float64
        assert model.prediction.dtype == tf.float64 and model.loss.dtype == tf.float64
        # weight and bias stay float32 variables, cast to float64 before the matmul (as the repository's file)
        casts = [op for op in graph.get_operations() if op.type == "Cast" and op.inputs[0].dtype == tf.float32
                 and op.outputs[0].dtype == tf.float64]
        assert len(casts) >= 2
        # the dead data variable gets no gradient, so no Adam slot
        slots = {v.op.name for v in tf1.global_variables()} - set(variables)
        assert "Variable/Adam" not in slots and "Variable_1/Adam" in slots
        assert "rnn/basic_lstm_cell/kernel/Adam" in slots


# --- training on the toy data --------------------------------------------------------------------------------
def _beta1_power(run_dir):
    return float(tf1.train.load_variable(tf1.train.latest_checkpoint(str(run_dir)), "beta1_power"))


def test_fits_the_toy_data_to_100_percent(toy_run):
    run_dir, result = toy_run
    curve = result["curve"]
    assert [r["iteration"] for r in curve] == [50, 100, 150, 200]
    assert curve[-1]["accuracy"] == 1.0 and result["accuracy"] == 1.0
    assert curve[-1]["loss"] < 0.05 < curve[0]["loss"]
    assert _beta1_power(run_dir) == pytest.approx(0.9 ** 201, rel=1e-4)  # 200 Adam steps
    assert essentials.test(run_dir, log=_quiet) == 1.0


def test_the_default_is_the_shipped_single_optimiser_step(tmp_path):
    lines = []
    result = essentials.train(tmp_path, "book", seed=1, log=lines.append)  # the faithful default
    assert [r["iteration"] for r in result["curve"]] == [1] and result["finished"]
    assert lines[0].startswith("Iteration 1/1... Loss: ")
    assert _beta1_power(tmp_path) == pytest.approx(0.81)  # Adam's beta1 power after exactly one step
    assert runs.read_manifest(tmp_path)["quirks"] == {"single_step": True}
    assert essentials.FAITHFUL == essentials.Quirks() and essentials.FAITHFUL.single_step
    assert not essentials.LOOP.single_step


@pytest.mark.parametrize("given,steps", [({}, 1), ({"single_step": False}, 200)])
def test_command_line_runs_one_step_unless_nosingle_step(tmp_path, parsed_flags, given, steps):
    parsed_flags.run_dir, parsed_flags.preset, parsed_flags.seed = str(tmp_path), "test", 1
    for name, value in given.items():
        setattr(parsed_flags, name, value)
    assert essentials.main(["prog"]) == 0
    assert _beta1_power(tmp_path) == pytest.approx(0.9 ** (steps + 1), rel=1e-4)
    assert runs.read_manifest(tmp_path)["quirks"] == {"single_step": steps == 1}


def test_seeded_runs_repeat_and_seeds_differ(tmp_path, toy_run):
    _, first = toy_run
    again = essentials.train(tmp_path / "a", "test", essentials.LOOP, seed=1, log=_quiet)
    other = essentials.train(tmp_path / "b", "test", essentials.LOOP, seed=2, log=_quiet)
    assert [r["loss"] for r in again["curve"]] == pytest.approx([r["loss"] for r in first["curve"]], rel=1e-7)
    assert other["curve"][0]["loss"] != pytest.approx(first["curve"][0]["loss"], rel=1e-3)
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "word_vectors.npy"),
                                  ess_data.random_word_vectors(1024, 64, 1))


def test_resume_continues_the_same_run(tmp_path, toy_run):
    _, straight = toy_run
    essentials.train(tmp_path, "test", essentials.LOOP, seed=1, max_epochs=2, log=_quiet)
    lines = []
    resumed = essentials.train(tmp_path, "test", essentials.LOOP, log=lines.append)  # seed from the manifest
    assert lines[0] == f"Resuming {tmp_path} after iteration 100."
    assert [r["iteration"] for r in resumed["curve"]] == [50, 100, 150, 200]
    assert [r["loss"] for r in resumed["curve"][:2]] == pytest.approx([r["loss"] for r in straight["curve"][:2]],
                                                                      rel=1e-7)
    # The dropout op's random sequence restarts in a new session, so the resumed blocks are not bitwise those
    # of the uninterrupted run; they continue its training (a fresh start would be back at the first loss).
    assert resumed["curve"][2]["loss"] < straight["curve"][0]["loss"] / 5
    assert resumed["accuracy"] == 1.0


def test_other_word_vectors_are_refused_on_resume(tmp_path):
    essentials.train(tmp_path, "test", essentials.LOOP, seed=1, max_epochs=1, log=_quiet)
    vec = tmp_path / "v.txt"
    write_vectors(vec, [f"w{i}" for i in range(40)], 64)
    with pytest.raises(runs.ManifestMismatchError, match="word vectors differ"):
        essentials.train(tmp_path, "test", essentials.LOOP, seed=1, word_vectors=vec, log=_quiet)


# --- word vectors --------------------------------------------------------------------------------------------
def test_word_vector_files_word2vec_and_glove(tmp_path):
    rows = write_vectors(tmp_path / "w2v.txt", ["the", "cat", "sat"], 3, header=True)
    words, vectors = ess_data.load_word_vectors(tmp_path / "w2v.txt", 3)
    assert words == ["the", "cat", "sat"] and vectors.dtype == np.float64
    np.testing.assert_allclose(vectors, rows)
    write_vectors(tmp_path / "glove.txt", ["the", "cat", "sat"], 3, header=False)
    assert ess_data.load_word_vectors(tmp_path / "glove.txt", 3)[0] == words


@pytest.mark.parametrize("content, message", [
    ("", "holds no word vectors"),
    ("the 0.1 0.2 0.3\ncat 0.1 0.2\n", "line 2: 2 values where the first vector has 3"),
    ("the 0.1 0.2 0.3\ncat 0.1 x 0.3\n", "line 2: 'x' is not a number"),
    ("2 4\nthe 0.1 0.2 0.3\ncat 0.1 0.2 0.3\n", "the header says 4 dimensions but line 2 has 3"),
    ("5 3\nthe 0.1 0.2 0.3\ncat 0.1 0.2 0.3\n", "the header says 5 words but the file has 2"),
    ("the 0.1 0.2 0.3 0.4\n", "holds 4-dimensional vectors, but the model's embedding dimension is 3"),
    ("the nan 0.2 0.3\n", "is not finite"),
    ("justaword\n", "expected a word followed by numbers"),
])
def test_malformed_word_vector_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "v.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ess_data.DataFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ess_data.load_word_vectors(path, 3)


def test_binary_word_vector_file_is_refused(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"3 2\nthe \xff\xfe\x00\x01\x02\x03\x04\x05\x06\x07\n")
    with pytest.raises(ess_data.DataFormatError, match="not UTF-8 text"):
        ess_data.load_word_vectors(path, 2)


def test_toy_run_with_a_word_vector_file(tmp_path):
    vec = tmp_path / "v.txt"
    rows = write_vectors(vec, [f"w{i}" for i in range(40)], 64)
    result = essentials.train(tmp_path / "run", "test", essentials.LOOP, seed=1, word_vectors=vec, max_epochs=1,
                              log=_quiet)
    np.testing.assert_allclose(np.load(tmp_path / "run" / "word_vectors.npy"), rows)
    assert result["curve"][0]["iteration"] == 50
    write_vectors(vec, [f"w{i}" for i in range(20)], 64)
    with pytest.raises(ess_data.DataFormatError, match="uses ids up to 33"):
        essentials.train(tmp_path / "run2", "test", essentials.LOOP, seed=1, word_vectors=vec, log=_quiet)
    write_vectors(vec, [f"w{i}" for i in range(40)], 50)
    with pytest.raises(ess_data.DataFormatError, match="50-dimensional vectors.*dimension is 64"):
        essentials.train(tmp_path / "run3", "test", essentials.LOOP, seed=1, word_vectors=vec, log=_quiet)


# --- labelled text files ----------------------------------------------------------------------------------------
def test_train_file_parsing_and_encoding_by_hand(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("neg\tDull film\n\npos\ta great great film , really\n", encoding="utf-8")
    texts, labels, names = ess_data.read_train_file(path)
    assert texts == [["dull", "film"], ["a", "great", "great", "film", ",", "really"]]
    assert labels.tolist() == [0, 1] and names == ["neg", "pos"]
    vocab, vectors = ess_data.vocab_and_vectors(texts, 5, seed=0)
    assert vocab == {"dull": 0, "film": 1, "a": 2, "great": 3, ",": 4, "really": 5, "<pad>": 6}
    assert vectors.shape == (7, 5) and not vectors[6].any() and vectors[:6].all()
    x = ess_data.encode(texts, vocab, 4, 6)
    assert x.tolist() == [[0, 1, 6, 6], [2, 3, 3, 1]]
    # with loaded vectors: the texts' words the file has, in the texts' order, each with its file row; words
    # without one -> the zero row
    file_words = ["great", "zebra", "film", "dull"]
    file_vectors = np.arange(12, dtype=np.float64).reshape(4, 3) + 1
    vocab, vectors = ess_data.vocab_and_vectors(texts, 3, 0, file_words, file_vectors)
    assert vocab == {"dull": 0, "film": 1, "great": 2, "<pad>": 3}
    assert vectors.tolist() == [[10, 11, 12], [7, 8, 9], [1, 2, 3], [0, 0, 0]]
    assert ess_data.encode(texts, vocab, 4, 3).tolist() == [[0, 1, 3, 3], [3, 2, 2, 1]]
    assert ess_data.batch_indices(0, 6, 4).tolist() == [0, 1, 2, 3]
    assert ess_data.batch_indices(1, 6, 4).tolist() == [4, 5, 0, 1]


@pytest.mark.parametrize("content, message", [
    ("pos a good film\n", "line 1: expected 'label<TAB>text'"),
    ("pos\t   \n", "line 1: the text after the label is empty"),
    ("pos\tgood\nneg\tbad\nmeh\tso so\n", "has 3 distinct labels"),
    ("pos\tgood\npos\tfine\n", "has 1 distinct labels"),
])
def test_malformed_train_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "t.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ess_data.DataFormatError, match=message):
        ess_data.read_train_file(path)


def test_train_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("pos\tsuperbe qualit\u00e9\nneg\tmauvais\n".encode("latin-1"))
    with pytest.raises(ess_data.DataFormatError, match=r"latin1\.tsv is not UTF-8 text"):
        ess_data.read_train_file(path)
    path.write_text("pos\tgood\r\nneg\tbad\rpos\tfine\u2028film\n", encoding="utf-8")  # every newline style
    texts, labels, names = ess_data.read_train_file(path)
    assert texts == [["good"], ["bad"], ["fine", "film"]] and labels.tolist() == [1, 0, 1] and names == ["neg", "pos"]


def test_train_file_learns_and_predicts(tmp_path):
    reviews = write_reviews(tmp_path / "reviews.tsv")
    run_dir = tmp_path / "run"
    result = essentials.train(run_dir, "test", essentials.LOOP, seed=3, train_file=reviews, log=_quiet)
    assert result["accuracy"] == 1.0
    manifest = runs.read_manifest(run_dir)
    assert manifest["labels"] == ["neg", "pos"] and manifest["data"]["examples"] == 24
    assert json.loads((run_dir / "vocab.json").read_text())["<pad>"] == len(np.load(run_dir / "word_vectors.npy")) - 1
    got = essentials.predict(run_dir, ["a superb film", "the plot was tedious", "WONDERFUL", "xyzzy"])
    assert [label for label, _, _ in got[:3]] == ["pos", "neg", "pos"]
    assert got[3][2] == 0 and all(0.5 <= p <= 1.0 for _, p, _ in got)
    assert essentials.predict(run_dir, []) == []  # e.g. empty stdin
    assert essentials.test(run_dir, log=_quiet) == 1.0


# --- command line --------------------------------------------------------------------------------------------
def test_cli_reports_bad_files_in_one_line(tmp_path):
    vec = tmp_path / "v.txt"
    vec.write_text("the 0.1 0.2\ncat oops 0.2\n", encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-m", "legacy_lstm.essentials", f"--word_vectors={vec}", "--seed=1",
                          f"--run_dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"error: {vec}, line 2: 'oops' is not a number" in out.stderr
    assert not (tmp_path / "run").exists()


def test_cli_refuses_a_cell_without_float64(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-m", "legacy_lstm.essentials", "--cell=block", "--seed=1",
                          f"--run_dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: --cell=block is not available here" in out.stderr and not (tmp_path / "run").exists()


def test_reproduce_script_runs_the_declared_iterations_and_checks_the_target(tmp_path, monkeypatch,
                                                                              reproduce_script):
    run_dir, results = tmp_path / "run", tmp_path / "results"
    argv = ["reproduce.py", "essentials", "--preset=test", f"--run_dir={run_dir}", f"--results_dir={results}"]
    monkeypatch.setattr(sys, "argv", argv + ["--seed=2017", "--max_epochs=2"])
    reproduce_script.main()
    partial = json.loads((results / "essentials-test.json").read_text())
    assert partial["iterations_done"] == 100 and not partial["complete"] and partial["final"]["accuracy"] is None
    monkeypatch.setattr(sys, "argv", argv + ["--seed=9"])  # resumes with the run's seed, not this one
    reproduce_script.main()
    doc = json.loads((results / "essentials-test.json").read_text())
    assert doc["seed"] == 2017 and doc["complete"] and doc["iterations_done"] == doc["iterations_total"] == 200
    assert doc["quirks"] == {"single_step": False}  # the reproduction runs the loop, not the app's default step
    assert doc["app_command"] == "python -m legacy_lstm.essentials --preset=test --nosingle_step --seed=2017"
    assert doc["final"]["accuracy"] == essentials.test(run_dir, log=_quiet)
    assert doc["curve"][:2] == partial["curve"] and [s["after_epoch"] for s in doc["sittings"]] == [0, 2]


def test_reproduce_script_hours_stops_at_the_deadline_and_the_same_command_resumes(tmp_path, monkeypatch, capsys,
                                                                                   reproduce_script):
    run_dir, results = tmp_path / "run", tmp_path / "results"
    argv = ["reproduce.py", "essentials", "--preset=test", f"--run_dir={run_dir}", f"--results_dir={results}"]
    monkeypatch.setattr(sys, "argv", argv + ["--max_epochs=2"])
    reproduce_script.main()
    monkeypatch.setattr(sys, "argv", argv + ["--hours=0"])  # the deadline is now: not one more block
    reproduce_script.main()
    out = capsys.readouterr().out
    assert f"in {run_dir / runs.STOP}: the training stops at the epoch boundary before it" in out
    assert "passed): stopped before epoch 3; the same command resumes the run after epoch 2." in out
    doc = json.loads((results / "essentials-test.json").read_text())
    assert doc["iterations_done"] == 100 and not doc["complete"] and not (run_dir / runs.STOP).exists()
    monkeypatch.setattr(sys, "argv", argv + ["--hours=1", "--split_seed=3"])  # refused (no split) ...
    with pytest.raises(SystemExit, match="essentials has no --split_seed"):
        reproduce_script.main()
    assert not (run_dir / runs.STOP).exists()  # ... and the deadline it wrote is not left for the next command
    import fcntl
    with open(run_dir / runs.LOCK, "a+") as held:  # another process trains there: its STOP file is its own
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.seek(0)
        held.truncate()
        held.write("4242\n")
        held.flush()
        assert runs.writer(run_dir) == "4242"
        monkeypatch.setattr(sys, "argv", argv + ["--hours=1"])
        with pytest.raises(SystemExit, match=r"being trained by another process \(pid 4242\)"):
            reproduce_script.main()
        assert not (run_dir / runs.STOP).exists()
    assert runs.writer(run_dir) is None
    monkeypatch.setattr(sys, "argv", argv + ["--hours=1"])  # plenty: the run finishes, the file goes with it
    reproduce_script.main()
    doc = json.loads((results / "essentials-test.json").read_text())
    assert doc["complete"] and doc["iterations_done"] == 200 and not (run_dir / runs.STOP).exists()


def test_reproduce_script_deadline_is_never_later_than_asked(tmp_path, reproduce_script):
    """The STOP file holds whole seconds rounded down: rounding to the nearest second once wrote a deadline up to
    half a second later than --hours=0's "now", and a test-sized epoch then still fit before it (a CI failure)."""
    for asked in (1800000000.0, 1800000000.4, 1800000000.5, 1800000000.999):
        text = reproduce_script._set_deadline(tmp_path, asked)
        assert (tmp_path / runs.STOP).read_text() == text
        assert training.read_deadline(text) == 1800000000.0 <= asked
        reproduce_script._clear_deadline(tmp_path, text)
        assert not (tmp_path / runs.STOP).exists()


def test_a_cluster_worker_trains_its_round_robin_share_of_a_block(monkeypatch):
    """A block on a cluster worker (worker 1 of 2, as legacy_lstm/distributed.py deals them): it runs
    iterations 1, 3, 5, ... of the block (each iteration's rows are those one process would use) and the row
    averages its own steps."""
    from cluster_fixtures import RoundRobinWorker
    config = essentials.PRESETS["test"]
    data = essentials.load_data(config, 3)
    ran = []

    with tf.Graph().as_default():
        tf1.set_random_seed(3)
        model = essentials.build_graph(data.word_vectors, config, parallel_iterations=1)
        real_batch = ess_data.batch_indices
        monkeypatch.setattr(ess_data, "batch_indices",
                            lambda step, n, size: ran.append(step) or real_batch(step, n, size))
        loop = essentials._Loop(config, data, config.num_iterations, config.log_every)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            worker = RoundRobinWorker(1, 2)
            worker.sess, worker.model = sess, model
            row = loop.epoch(worker, 2)
    block = config.log_every
    assert ran == list(range(block, 2 * block))[1::2]
    assert row["epoch"] == 2 and row["iteration"] == 2 * block and np.isfinite(row["loss"])
