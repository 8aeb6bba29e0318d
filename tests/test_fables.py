"""The fable next-word app: dictionary, windows, graph, training, resume, generation, prompts, CLI."""

import collections
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from legacy_lstm import fables, published, runs

from cluster_fixtures import RoundRobinWorker
from conftest import real_file
from legacy_lstm.compat import tf, tf1
from legacy_lstm.data import fables as fable_data

REPO = pathlib.Path(__file__).resolve().parents[1]

# A short text the tests write themselves (hermetic): repeated words, punctuation tokens, a tie in the counts.
TEXT = ("the mice held a council , and the old mouse said that a bell round the neck of the cat would warn "
        "them when she came near . the cat , said the old mouse , is near .")
TINY = fables.Config(n_hidden=32, training_iters=800, display_step=200)


def _quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def text_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("fable") / "tiny.txt"
    path.write_text(TEXT + " \n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fable_path(data_dir):
    return real_file(data_dir, "belling_the_cat/belling_the_cat.txt")


@pytest.fixture(scope="module")
def trained(text_path, tmp_path_factory):
    """One seeded run on the tiny text, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("run")
    lines = []
    result = fables.train(text_path, run_dir, TINY, seed=11, log=lines.append)
    return run_dir, result, lines


# --- data --------------------------------------------------------------------------------------------------
def test_dictionary_order_and_ids_on_the_real_fable(fable_path):
    words, ids, dictionary, reverse = fable_data.load_raw(fable_path)
    assert len(words) == 204 and len(dictionary) == 112
    assert all(type(w) is str for w in words)
    counts = collections.Counter(words)
    order = sorted(dictionary, key=dictionary.get)
    assert sorted(dictionary.values()) == list(range(112))
    # most_common() order: counts never increase with the id, ties in order of first appearance
    for a, b in zip(order, order[1:]):
        assert counts[a] >= counts[b]
        if counts[a] == counts[b]:
            assert words.index(a) < words.index(b), (a, b)
    assert order[:5] == [",", "the", ".", "and", "to"]
    assert [counts[w] for w in order[:5]] == [14, 11, 8, 7, 6]
    assert dictionary["council"] == 39 and dictionary["spoke"] == 106  # the blog (Python 3.5) had 37 and 111
    assert reverse == {i: w for w, i in dictionary.items()}
    assert [reverse[int(i)] for i in ids] == words


def test_multi_line_file_gives_the_same_tokens(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("a b , c .\n")
    many = tmp_path / "many.txt"
    many.write_text("a b\n  , c\n\n.   \n")
    assert fable_data.read_words(many) == fable_data.read_words(one) == ["a", "b", ",", "c", "."]


class ScriptedRandom:
    """Stands in for random.Random: returns the scripted draws and records the ranges asked for."""

    def __init__(self, draws):
        self.draws = list(draws)
        self.calls = []

    def randint(self, a, b):
        self.calls.append((a, b))
        return self.draws.pop(0)


def test_offsets_follow_the_original_stepping():
    # 12 tokens, n_input 3: a window needs 4 tokens, so an offset > 8 is redrawn; steps of 4.
    rng = ScriptedRandom([2, 0, 3, 1])
    offsets = fable_data.Offsets(12, 3, rng)
    got = [next(offsets) for _ in range(8)]
    assert got == [2, 6, 0, 4, 8, 3, 7, 1]
    assert rng.calls == [(0, 4)] * 4
    assert offsets.steps == 8


def test_window_stride_quirk_switch():
    rng = ScriptedRandom([2, 1])
    offsets = fable_data.Offsets(12, 3, rng, stride=1)  # every window: 2, 3, ..., 8, then a redraw
    assert [next(offsets) for _ in range(9)] == [2, 3, 4, 5, 6, 7, 8, 1, 2]
    assert rng.calls == [(0, 4)] * 2
    with pytest.raises(ValueError, match="stride must be >= 1"):
        fable_data.Offsets(12, 3, ScriptedRandom([0]), stride=0)
    with pytest.raises(ValueError, match="inputs must be 'ids' or 'one_hot'"):
        fables.Quirks(inputs="embedding")


def test_windows_and_labels_by_hand():
    ids = np.array([5, 3, 9, 1, 0, 7, 2])
    x, label = fable_data.window(ids, 2, 3)
    assert x.dtype == np.float32 and x.shape == (1, 3, 1)
    assert x.ravel().tolist() == [9.0, 1.0, 0.0] and label == 7
    y = fable_data.one_hot(label, 10)
    assert y.shape == (1, 10) and y[0, 7] == 1 and y.sum() == 1
    xs, ys = fable_data.all_windows(ids, 3)
    assert xs.shape == (4, 3, 1) and ys.tolist() == [1, 0, 7, 2]
    assert xs[3].ravel().tolist() == [1.0, 0.0, 7.0]


def test_seeded_offsets_cover_every_residue_and_replay(fable_path):
    _, ids, _, _ = fable_data.load_raw(fable_path)
    offsets = fable_data.make_offsets(len(ids), 3, seed=4)
    seq = [next(offsets) for _ in range(5000)]
    assert min(seq) >= 0 and max(seq) <= 200
    assert all(b - a == 4 for a, b in zip(seq, seq[1:]) if b > a)  # only a redraw breaks the stride
    assert {s % 4 for s in seq} == {0, 1, 2, 3}
    replay = fable_data.make_offsets(len(ids), 3, seed=4).skip(3000)
    assert [next(replay) for _ in range(100)] == seq[3000:3100]


def test_published_continuation_is_the_fable_verbatim(fable_path):
    words = fable_data.read_words(fable_path)
    gen = published.load("fables")["generation"]
    story = gen["published"].split()
    assert len(story) == gen["num_words"] == 32
    assert fables.verbatim_words(words, gen["prompt"], story) == 32
    assert fables.verbatim_words(words, gen["prompt"], story[:5] + ["cat"] + story[6:]) == 5


# --- published numbers ---------------------------------------------------------------------------------------
def test_published_numbers_and_bands():
    blog, improved = fables.published_numbers("blog"), fables.published_numbers("improved")
    assert [(r["iteration"], r["average_accuracy"]) for r in blog["curve"]] == [(49000, 0.885), (50000, 0.912)]
    assert blog["final"] == {"average_accuracy": 0.912} and improved["final"] == {"average_accuracy": 0.952}
    for doc in (blog, improved):
        assert doc["bands"]["final"] == {"average_accuracy": 0.05}
    ours = [{"epoch": 49, "average_accuracy": 0.87}, {"epoch": 50, "average_accuracy": 0.87}]
    assert published.compare(ours, {"average_accuracy": 0.87}, blog).passed
    assert not published.compare(ours, {"average_accuracy": 0.86}, blog).passed
    assert not published.compare(ours, {"average_accuracy": 0.90}, improved).passed


def test_display_lines_match_the_published_log():
    head, sample = fables.display_lines(49000, 528.684, 885.0, 1000, [np.str_("could"), "easily", "retire"],
                                        np.str_("while"), "while")
    assert head == "Iter= 49000, Average Loss= 0.528684, Average Accuracy= 88.50%"
    assert sample == "['could', 'easily', 'retire'] - [while] vs [while]"


# --- graph ---------------------------------------------------------------------------------------------------
def _variables(config):
    with tf.Graph().as_default():
        fables.build_graph(112, config)
        return ([(v.op.name, v.shape.as_list()) for v in tf1.trainable_variables()],
                sorted(v.op.name for v in tf1.global_variables()))


def test_graph_variables_as_tf1_named_them():
    blog, blog_all = _variables(fables.PRESETS["blog"])
    assert blog == [("Variable", [512, 112]), ("Variable_1", [112]),
                    ("rnn/basic_lstm_cell/kernel", [513, 2048]), ("rnn/basic_lstm_cell/bias", [2048])]
    assert len(blog_all) == 3 * len(blog) and "Variable/RMSProp_1" in blog_all
    improved, _ = _variables(fables.PRESETS["improved"])
    assert improved == [("Variable", [512, 112]), ("Variable_1", [112]),
                        ("rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", [513, 2048]),
                        ("rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias", [2048]),
                        ("rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel", [1024, 2048]),
                        ("rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias", [2048])]


def test_graph_does_not_grow_during_training_and_generation(text_path):
    """Training steps, displays and generation run in a graph that is NOT finalized: the op count is the check."""
    words, ids, dictionary, reverse = fable_data.load_raw(text_path)
    with tf.Graph().as_default() as graph:
        tf1.set_random_seed(1)
        model = fables.build_graph(len(dictionary), TINY)
        init = tf1.global_variables_initializer()
        with tf1.Session() as sess:
            sess.run(init)
            before = len(graph.get_operations())
            step = lambda x, y: sess.run([model.accuracy, model.cost, model.pred], {model.x: x, model.y: y})
            fables.train_display(step, ids, reverse, fable_data.make_offsets(len(ids), 3, 0), TINY, 1, _quiet)
            predict = lambda x: sess.run(model.pred, {model.x: x})
            fables.generate_ids(predict, ids[:3], 32, 3)
            after = len(graph.get_operations())
    assert before == after


# --- training --------------------------------------------------------------------------------------------------
def test_short_seeded_training_lowers_the_loss(trained):
    _, result, lines = trained
    curve = result["curve"]
    assert [r["epoch"] for r in curve] == [1, 2, 3, 4] and [r["iteration"] for r in curve] == [200, 400, 600, 800]
    assert curve[-1]["average_loss"] < 0.7 * curve[0]["average_loss"]
    assert curve[-1]["average_accuracy"] > curve[0]["average_accuracy"]
    assert result["finished"] and lines[-5] == "Optimization Finished!" and lines[-4].startswith("Elapsed time: ")


def test_log_lines_have_the_original_format(trained):
    _, result, lines = trained
    assert re.fullmatch(r"Iter= 200, Average Loss= \d+\.\d{6}, Average Accuracy= \d+\.\d{2}%", lines[0])
    words = TEXT.split()
    match = re.fullmatch(r"\[('[^']+', ){2}'[^']+'\] - \[(\S+)\] vs \[(\S+)\]", lines[1])
    assert match and match.group(2) in words and match.group(3) in words
    window = re.findall(r"'([^']+)'", lines[1].split(" - ")[0])
    assert " ".join(window + [match.group(2)]) in " ".join(words)
    assert lines[1] == result["curve"][0]["sample"]


def test_seeded_training_is_repeatable(text_path, tmp_path, trained):
    _, first, _ = trained
    again = fables.train(text_path, tmp_path / "a", TINY, seed=11, log=_quiet)
    other = fables.train(text_path, tmp_path / "b", TINY, seed=12, log=_quiet)
    for a, b in zip(first["curve"], again["curve"]):
        assert a["average_loss"] == pytest.approx(b["average_loss"], abs=1e-5)
        assert a["sample"] == b["sample"]
    assert other["curve"][0]["average_loss"] != pytest.approx(first["curve"][0]["average_loss"], abs=1e-3)


def _graph_events(folder):
    """The GraphDefs in the TensorBoard event files of ``folder``."""
    from tensorflow.core.framework import graph_pb2
    graphs = []
    for path in sorted(pathlib.Path(folder).glob("events.out.tfevents.*")):
        for event in tf1.train.summary_iterator(str(path)):
            if event.graph_def:
                graph = graph_pb2.GraphDef()
                graph.ParseFromString(event.graph_def)
                graphs.append(graph)
    return graphs


def test_tensorboard_graph_and_the_originals_closing_lines(trained, text_path, tmp_path):
    """A new run adds its session graph to TensorBoard (the original's writer.add_graph) beside the scalars, once:
    the resumed sitting does not add another; --logs_path puts it where the original did; the log ends with the
    original's tensorboard hint."""
    run_dir, _, lines = trained
    graphs = _graph_events(run_dir / "train")
    assert len(graphs) == 1
    ops = {node.op for node in graphs[0].node}
    names = {node.name for node in graphs[0].node}
    assert {"RMSProp", "ApplyRMSProp"} & ops or any(n.startswith("RMSProp") for n in names)
    assert any("basic_lstm_cell" in n for n in names) and "x" in names and "y" in names
    assert lines[-3:] == ["Run on command line.", f"\ttensorboard --logdir={run_dir}",
                          "Point your web browser to: http://localhost:6006/"]
    elsewhere = tmp_path / "rnn_words"
    out = []
    fables.train(text_path, tmp_path / "run", TINY, seed=11, max_epochs=2, log=_quiet, logs_path=str(elsewhere))
    fables.train(text_path, tmp_path / "run", TINY, log=out.append, logs_path=str(elsewhere))  # resumes
    assert len(_graph_events(elsewhere)) == 1 and _graph_events(tmp_path / "run" / "train") == []
    assert out[-2] == f"\ttensorboard --logdir={elsewhere}"


def test_resume_continues_as_the_uninterrupted_run(text_path, tmp_path, trained):
    _, straight, _ = trained
    first = fables.train(text_path, tmp_path, TINY, seed=11, max_epochs=2, log=_quiet)
    assert len(first["curve"]) == 2 and not first["finished"]
    lines = []
    second = fables.train(text_path, tmp_path, TINY, log=lines.append)  # seed and offsets from the manifest
    assert lines[0].startswith(f"Resuming {tmp_path} after iteration 400")
    assert second["finished"] and second["offset_seed"] == 11
    for a, b in zip(second["curve"], straight["curve"]):
        assert a["average_loss"] == pytest.approx(b["average_loss"], abs=1e-4)
        assert a["sample"] == b["sample"]


def test_run_directory_holds_manifest_dictionary_and_curve(trained, text_path):
    run_dir, result, _ = trained
    run_dir = pathlib.Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    _, _, dictionary, _ = fable_data.load_raw(text_path)
    assert json.loads((run_dir / "vocab.json").read_text()) == dictionary
    assert manifest["vocab_sha256"] == runs.vocab_sha256(dictionary) and manifest["vocab_size"] == len(dictionary)
    assert manifest["seed"] == 11 and manifest["offset_seed"] == 11 and manifest["config"]["n_hidden"] == 32
    assert str(run_dir) not in (run_dir / "checkpoint").read_text()
    assert (run_dir / "model.ckpt-4.index").exists()
    assert json.loads((run_dir / "curve.json").read_text()) == result["curve"]
    assert list((run_dir / "train").glob("events.out.tfevents.*"))


def test_another_config_is_refused_in_the_same_run_dir(trained, text_path):
    run_dir, _, _ = trained
    with pytest.raises(runs.ManifestMismatchError, match="config.n_hidden"):
        fables.train(text_path, run_dir, fables.Config(n_hidden=16, training_iters=800, display_step=200),
                     log=_quiet)


def test_one_hot_inputs_and_stride_1_are_recorded_and_restored(text_path, tmp_path):
    """--inputs=one_hot feeds each id as a one-hot vector (kernel vocab + units rows); with --window_stride=1 the
    run sees every window. Both are in the manifest and the report; generation rebuilds the same graph."""
    words, ids, dictionary, _ = fable_data.load_raw(text_path)
    quirks = fables.Quirks(inputs="one_hot", window_stride=1)
    cfg = fables.Config(n_hidden=32, training_iters=400, display_step=200)
    fables.train(text_path, tmp_path, cfg, seed=1, quirks=quirks, log=_quiet)
    assert runs.read_manifest(tmp_path)["quirks"] == {"inputs": "one_hot", "window_stride": 1,
                                                       "tie_order": "first_seen"}
    shapes = dict(tf1.train.list_variables(tf1.train.latest_checkpoint(str(tmp_path))))
    assert shapes["rnn/basic_lstm_cell/kernel"] == [len(dictionary) + 32, 128]
    with tf.Graph().as_default():  # the cell's first-step input is the one-hot of the fed id
        model = fables.build_graph(len(dictionary), cfg, quirks=quirks)
        step0 = tf1.get_default_graph().get_tensor_by_name("unstack:0")
        with tf1.Session() as sess:
            got = sess.run(step0, {model.x: np.array([[[5.0], [0.0], [2.0]]], np.float32)})
    assert got.shape == (1, len(dictionary)) and got[0, 5] == 1.0 and got.sum() == 1.0
    with fables.Generator(tmp_path) as generator:
        assert generator.quirks == quirks and len(generator.continue_prompt("the old mouse", 3)) == 3
    with pytest.raises(runs.ManifestMismatchError, match="quirks.inputs"):  # not mixed with another run's
        fables.train(text_path, tmp_path, cfg, seed=1, log=_quiet)


def test_block_cell_run_is_restored_with_its_cell(text_path, tmp_path):
    """--cell=block is recorded in the manifest; generation rebuilds that cell (its variables have other names)."""
    cfg = fables.Config(n_hidden=32, training_iters=200, display_step=200)
    fables.train(text_path, tmp_path, cfg, seed=1, cell="block", log=_quiet)
    assert runs.read_manifest(tmp_path)["cell"] == "block"
    names = [name for name, _ in tf1.train.list_variables(tf1.train.latest_checkpoint(str(tmp_path)))]
    assert "rnn/lstm_cell/kernel" in names and "rnn/basic_lstm_cell/kernel" not in names
    with fables.Generator(tmp_path) as generator:
        assert len(generator.continue_prompt("the old mouse", 3)) == 3


# --- generation ------------------------------------------------------------------------------------------------
def test_generation_from_a_checkpoint_is_the_trained_model(text_path, tmp_path):
    """Words generated in the training session == words generated by a Generator restored from the run dir."""
    words, ids, dictionary, reverse = fable_data.load_raw(text_path)
    with tf.Graph().as_default():
        tf1.set_random_seed(3)
        model = fables.build_graph(len(dictionary), TINY)
        run = runs.Run(tmp_path, fables.make_manifest("custom", TINY, dictionary, 3, 3, len(words)))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            step = lambda x, y: sess.run([model.train_op, model.accuracy, model.cost, model.pred],
                                         {model.x: x, model.y: y})[1:]
            fables.train_display(step, ids, reverse, fable_data.make_offsets(len(ids), 3, 3), TINY, 1, _quiet)
            predict = lambda x: sess.run(model.pred, {model.x: x})
            expected = [reverse[i] for i in fables.generate_ids(predict, ids[:3], 20, 3)]
            trained_logits = predict(fable_data.all_windows(ids, 3)[0])
            run.write_manifest(vocab=dictionary)
            run.save_epoch(sess, 1)
    with fables.Generator(tmp_path) as generator:
        assert generator.graph.finalized
        assert generator.continue_prompt(" ".join(words[:3]), 20) == expected
        assert generator.story(" ".join(words[:3]), 20) == " ".join(words[:3] + expected)
        np.testing.assert_allclose(generator._predict(fable_data.all_windows(ids, 3)[0]), trained_logits,
                                   rtol=1e-5, atol=1e-5)
        ops = len(generator.graph.get_operations())
        generator.continue_prompt("the cat ,", 50)
        assert len(generator.graph.get_operations()) == ops


def test_bad_prompts_get_clear_messages(trained):
    run_dir, _, _ = trained
    with fables.Generator(run_dir) as generator:
        with pytest.raises(fables.PromptError, match=r"expected 3 words, got 2: 'the cat'"):
            generator.story("the cat")
        with pytest.raises(fables.PromptError, match=r"expected 3 words, got 4"):
            generator.story("the cat , said")
        with pytest.raises(fables.PromptError, match=r"word not in dictionary: 'dog'"):
            generator.story("the dog said")
        with pytest.raises(fables.PromptError, match=r"'The' \(did you mean 'the'\?\)"):
            generator.story("The cat said")
        assert len(generator.story("the  cat\t,", 4).split()) == 7  # any whitespace separates words
        lines = iter(["the old mouse", "", "cat", "the mice held", "zebra ate it"])
        out = []

        def read(prompt):
            out.append(prompt)
            try:
                return next(lines)
            except StopIteration:
                raise EOFError from None

        assert fables.interactive(generator, 5, read=read, write=out.append) == 2
    assert out[0] == "3 words: " and out[1].startswith("the old mouse ") and len(out[1].split()) == 8
    assert "expected 3 words, got 1" in out[4] and "word not in dictionary: 'zebra'" in out[-3]
    assert out[-1] == ""  # end of input: a newline, then a clean return


def test_test_mode_on_a_text_without_the_published_prompt(trained, text_path):
    run_dir, _, _ = trained
    lines = []
    report = fables.test(text_path, run_dir, log=lines.append)
    assert report["generation"]["words"] is None and report["generation"]["verbatim"] is None
    assert "'had a general' is not in this text's dictionary: no continuation check" in lines


def test_test_mode_reports_on_the_real_fable(fable_path, tmp_path):
    fables.train(fable_path, tmp_path, "test", seed=2, max_epochs=2, log=_quiet)
    lines = []
    report = fables.test(fable_path, tmp_path, log=lines.append)
    assert report["text_windows"] == 201
    words = fable_data.read_words(fable_path)
    dictionary = json.loads((tmp_path / "vocab.json").read_text())
    x = np.array([[dictionary[w] for w in words[i:i + 3]] for i in range(len(words) - 3)], np.float32)[:, :, None]
    with fables.Generator(tmp_path) as generator:  # teacher-forced next-word accuracy, scored here
        hits = np.argmax(generator._predict(x), 1) == np.array([dictionary[w] for w in words[3:]])
    assert report["text_accuracy"] == pytest.approx(float(hits.mean()))
    gen = report["generation"]
    generated = gen["words"].split()
    assert len(generated) == 32
    start = [i for i in range(len(words)) if words[i:i + 3] == ["had", "a", "general"]]
    assert len(start) == 1  # once in the fable: the verbatim count is the common prefix with what follows it
    follow = words[start[0] + 3:]
    assert gen["verbatim_words"] == next((k for k, (a, b) in enumerate(zip(generated, follow)) if a != b),
                                         min(len(generated), len(follow)))
    # teacher forced over the same 32 words: the windows that start at the prompt's first word onwards
    assert gen["passage_hits"] == int(hits[start[0]:start[0] + 32].sum())
    assert f"(teacher forced, {gen['passage_hits']}/32 of those words predicted" in "\n".join(lines)
    assert not report["complete"] and report["iterations_done"] == 400
    assert json.loads((tmp_path / "report.json").read_text())["text_accuracy"] == report["text_accuracy"]
    assert lines[-1].startswith("final train average_accuracy: ")


# --- command line --------------------------------------------------------------------------------------------
def _cli(args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "legacy_lstm.fables", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300, **kwargs)


def test_cli_generate_and_interactive(trained):
    run_dir, _, _ = trained
    bad = _cli(["--mode=generate", "--prompt", "the dog said", f"--run_dir={run_dir}"])
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "error: word not in dictionary: 'dog'" in bad.stderr
    good = _cli(["--mode=interactive", "--num_words=6", f"--run_dir={run_dir}"],
                input="the old mouse\ncat .\n")  # then end of input, as Ctrl-D
    assert good.returncode == 0 and "Traceback" not in good.stderr, good.stderr
    out = good.stdout.split("3 words: ")
    assert len(out) == 4 and out[0] == "" and out[-1] == "\n"
    assert out[1].startswith("the old mouse ") and len(out[1].split()) == 9
    assert out[2].startswith("expected 3 words, got 2")


def test_reproduce_script_trains_resumes_tests_and_writes_results(tmp_path, monkeypatch, reproduce_script):
    """scripts/reproduce.py fables: resumable training, then test mode; results with iterations, final numbers
    and the run's own seed on resume."""
    from legacy_lstm.data import download
    text = tmp_path / "fable.txt"  # with the published prompt's words, so the continuation is checked too
    text.write_text(TEXT + " the mice had a general council . \n", encoding="utf-8")
    monkeypatch.setattr(download, "locate", lambda spec, data_dir=None: text)
    run_dir, results = tmp_path / "run", tmp_path / "results"
    argv = ["reproduce.py", "fables", "--preset=test", f"--run_dir={run_dir}", f"--results_dir={results}"]
    monkeypatch.setattr(sys, "argv", argv + ["--seed=2017", "--max_epochs=3"])
    reproduce_script.main()
    partial = json.loads((results / "fables-test.json").read_text())
    assert partial["iterations_done"] == 600 and not partial["complete"] and partial["final"]["text_accuracy"] is None
    monkeypatch.setattr(sys, "argv", argv + ["--seed=9"])  # resuming: the run's seed (2017) is kept
    reproduce_script.main()
    doc = json.loads((results / "fables-test.json").read_text())
    assert doc["seed"] == doc["offset_seed"] == 2017 and doc["complete"] and doc["iterations_done"] == 2000
    report = json.loads((run_dir / "report.json").read_text())  # written by the app's test mode
    assert doc["final"] == {"average_accuracy": doc["curve"][-1]["average_accuracy"],
                            "text_accuracy": report["text_accuracy"],
                            "verbatim_words": report["generation"]["verbatim_words"],
                            "passage_hits": report["generation"]["passage_hits"]}
    assert doc["curve"][:3] == partial["curve"] and [s["after_epoch"] for s in doc["sittings"]] == [0, 3]
    assert "| fables-test | 2,000/2,000 iterations |" in (results / "README.md").read_text()


def test_a_cluster_worker_trains_its_round_robin_share_and_the_next_display_starts_in_step(text_path):
    """train_display on a cluster worker (worker 1 of 2, as legacy_lstm/distributed.py deals them): it trains
    windows 1, 3, 5, ... of the display, averages over the steps it ran, and draws the display's windows in full,
    so the next display starts at the window one process would start it at."""
    words, ids, dictionary, reverse = fable_data.load_raw(text_path)
    config = fables.Config(n_hidden=8, training_iters=40, display_step=10)

    seen, losses = [], iter([1.0, 2.0, 3.0, 4.0, 5.0])

    def step(x, y):
        seen.append(x.reshape(-1).tolist())
        return 1.0, next(losses), np.zeros([1, len(dictionary)])

    offsets = fable_data.make_offsets(len(ids), 3, 5)
    row = fables.train_display(step, ids, reverse, offsets, config, 1, _quiet, sitting=RoundRobinWorker(1, 2))
    expected = fable_data.make_offsets(len(ids), 3, 5)
    drawn = [next(expected) for _ in range(10)]
    assert seen == [[float(i) for i in ids[o:o + 3]] for o in drawn[1::2]]
    assert row["average_loss"] == 3.0 and row["average_accuracy"] == 1.0  # over its 5 steps, not 10
    assert next(offsets) == next(expected)  # the next display starts where one process's would


def test_hashed_tie_order_draws_a_per_run_dictionary_that_test_mode_rebuilds(text_path, tmp_path):
    """--tie_order=hashed: words keep the count order, ties take a per-run order (from the offset seed); the run
    trains, resumes and tests on its own dictionary. A run made before the quirk existed still resumes."""
    words = fable_data.read_words(text_path)
    counts = collections.Counter(words)
    first_seen, _ = fable_data.build_dataset(words)
    assert list(first_seen) == [w for w, _ in counts.most_common()]
    shuffled, _ = fable_data.build_dataset(words, tie_seed=3)
    assert [counts[w] for w in shuffled] == sorted(counts.values(), reverse=True)
    assert list(shuffled) != list(first_seen) and shuffled == fable_data.build_dataset(words, tie_seed=3)[0]
    assert list(shuffled) != list(fable_data.build_dataset(words, tie_seed=4)[0])

    hashed = fables.Quirks(tie_order="hashed")
    fables.train(text_path, tmp_path / "hashed", TINY, seed=11, quirks=hashed, max_epochs=2, log=_quiet)
    saved = json.loads((tmp_path / "hashed" / "vocab.json").read_text())
    assert saved == fable_data.build_dataset(words, tie_seed=11)[0] != first_seen  # offset seed = seed 11
    fables.train(text_path, tmp_path / "hashed", TINY, quirks=hashed, log=_quiet)  # resumes on it
    assert fables.test(text_path, tmp_path / "hashed", log=_quiet)["complete"]

    fables.train(text_path, tmp_path / "old", TINY, seed=11, max_epochs=1, log=_quiet)
    manifest = runs.read_manifest(tmp_path / "old")
    del manifest["quirks"]["tie_order"]  # as written before --tie_order existed
    (tmp_path / "old" / runs.MANIFEST).write_text(json.dumps(manifest))
    assert fables.train(text_path, tmp_path / "old", TINY, log=_quiet)["finished"]
    with pytest.raises(runs.ManifestMismatchError, match="tie_order"):
        fables.train(text_path, tmp_path / "old", dataclasses.replace(TINY), quirks=hashed, log=_quiet)
