"""python -m legacy_lstm.compare: committed results, the originals' published logs, every log format (also cut
off and garbled), a log our app prints, and the exit statuses."""

import json
import pathlib
import subprocess
import sys

import pytest

from legacy_lstm import compare, published

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
GOLDEN = REPO / "tests" / "golden" / "stocktwits_test_preset.json"


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "legacy_lstm.compare", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, input=stdin, timeout=120)


# --- every committed result against the published numbers ------------------------------------------------
# the verdicts results/README.md states: within its bands, outside them, a target missed, or nothing to judge
EXPECTED = {
    "stocktwits": "within", "stocktwits-fast": "within", "ptb-small": "within",
    "ptb-small-bfloat16": "outside",  # the opt-in bfloat16 variant (docs/cells.md, "The band check")
    "ptb-large": "nothing compared",  # partial (2/55 epochs): its test perplexity is not measured, no claim
    "ptb-medium": "within", "ptb-thomas": "within",  # thomas: his test at his epoch-index-38 checkpoint
    "fables-blog": "within", "fables-blog-hashed": "within", "fables-improved": "outside", "essentials-book": "within",
    "imdb-lstm": "outside", "imdb-lstm-mask": "outside", "imdb-lstm-pre": "within",  # test_acc >= 0.85 target
    "imdb-stacked": "nothing compared", "imdb-stacked-pre": "nothing compared", "imdb-stacked-mask": "nothing compared",
    "imdb-bidirectional": "nothing compared", "imdb-attention": "nothing compared", "imdb-l2": "nothing compared",
}


def test_every_committed_result_is_listed():
    names = {p.stem for p in RESULTS.glob("*.json") if not p.stem.startswith("benchmark")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_result_against_published(name):
    result = compare.check(RESULTS / f"{name}.json")
    assert result.verdict == EXPECTED[name], result.report()
    assert result.exit_status == (0 if EXPECTED[name] == "within" else 1)
    doc = json.loads((RESULTS / f"{name}.json").read_text())
    # the same judgement as the comparison scripts/reproduce.py stored in the document
    stored = doc["comparison"]
    assert result.comparison.epochs_compared == stored["epochs_compared"]
    for col, within in stored["curve_within_bands"].items():
        if col in result.comparison.max_deviation:
            assert result.comparison.curve_within[col] == within


@pytest.mark.parametrize("name,status", [("stocktwits", 0), ("fables-improved", 1), ("ptb-small", 0)])
def test_cli_exit_status_on_committed_results(name, status):
    out = _cli(RESULTS / f"{name}.json")
    assert out.returncode == status, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("verdict: ")


def test_cli_json_format():
    out = _cli(RESULTS / "stocktwits.json", "--format=json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "within" and doc["exit_status"] == 0 and doc["rows_compared"] == 50
    val = doc["columns"]["val_acc"]
    assert val["band"] == 0.03 and val["within"] is True and len(val["rows"]) == 50
    assert val["rows"][0]["reference"] == 0.578 and doc["final"]["test_acc"]["within"]
    assert doc["columns"]["train_loss"]["band"] is None  # shown, not judged


# --- the originals' own logs, shipped in legacy_lstm/published/ ------------------------------------------
def test_stocktwits_notebook_log_is_its_published_curve():
    lines = published.log_lines(published.reference("stocktwits"))
    assert len(lines) == 51 and lines[-1] == "Test Accuracy: 0.717"
    assert lines[0] == ("Epoch: 1/50... Batch: 303/303... Train Loss: 0.247... Train Accruacy: 0.562... "
                        "Val Accuracy: 0.578")
    out = _cli("published:stocktwits")
    assert out.returncode == 0, out.stderr
    assert "Train Accruacy: 0.745" in out.stdout and out.stdout.strip().endswith(
        "verdict: within (50 of 50 reference rows, 2 of 2 final numbers compared)")


@pytest.mark.parametrize("spec,rows,final", [("published:fables/blog", 2, {"average_accuracy": 0.912}),
                                             ("published:ptb_thomas", 2, {"test_accuracy": 0.283})])
def test_other_published_logs(spec, rows, final):
    result = compare.check(spec)
    assert result.verdict == "within" and len(result.ours.curve) == rows
    assert {k: result.ours.final[k] for k in final} == final


def test_a_preset_without_a_published_log_is_unreadable():
    out = _cli("published:imdb")
    assert out.returncode == 2 and "holds no printed log of imdb" in out.stderr


# --- the log formats ------------------------------------------------------------------------------------
HOFFMAN = """\
Epoch: 1/50... Batch: 303/303... Train Loss: 0.246... Train Accruacy: 0.554... Val Accuracy: 0.591
Epoch: 2/50... Batch: 303/303... Train Loss: 0.245... Train Accuracy: 0.580... Val Accuracy: 0.608
"""
PTB = """\
Epoch: 1 Learning rate: 1.000
0.004 perplexity: 5628.066 speed: 1234 wps
Epoch: 1 Train Perplexity: 267.053
Epoch: 1 Valid Perplexity: 178.075
Epoch: 2 Learning rate: 1.000
Epoch: 2 Train Perplexity: 132.189
Epoch: 2 Valid Perplexity: 140.966
"""
THOMAS = """\
Epoch 0, Step 0, cost: 322.540, accuracy: 0.000, Seconds per step: 0.000
Epoch 0, Step 50, cost: 242.125, accuracy: 0.057, Seconds per step: 0.860
True values (1st line) vs predicted values (2nd line):
Average accuracy: 0.281
"""
ATIENZA = """\
Iter= 1000, Average Loss= 5.807512, Average Accuracy= 3.70%
['the', 'mice', 'looked'] - [at] vs [is]
Iter= 2000, Average Loss= 3.613703, Average Accuracy= 14.30%
['but', 'who', 'is'] - [to] vs [signal]
"""
# Keras fit as a captured log: progress bars redrawn with \r (and \b), then evaluate and the tutorial's print
KERAS = ("Epoch 1/5\n"
         "  1/313 [..............................] - ETA: 10:12 - loss: 0.6932 - accuracy: 0.4844\r"
         "313/313 [==============================] - 95s 300ms/step - loss: 0.6930 - accuracy: 0.5040 - "
         "val_loss: 0.6920 - val_accuracy: 0.5100\n"
         "Epoch 2/5\n"
         "313/313 [==============================] - 90s 290ms/step - loss: 0.5000 - acc: 0.7600 - "
         "val_loss: 0.4000 - val_acc: 0.8200\n"
         "782/782 [==============================] - 20s 25ms/step - loss: 0.4100 - accuracy: 0.8150\n"
         "Test accuracy: 0.815\n")
OURS_IMDB = ("Epoch 1/5 - 100/313 - loss: 0.6931 - accuracy: 0.5000\n"
             "Epoch 1/5 - 313/313 - 95s - loss: 0.6930 - accuracy: 0.5040 - val_loss: 0.6920 - val_accuracy: 0.5100\n"
             "final test loss: 0.6259\nfinal test accuracy: 0.6903\n")
ESSENTIALS = """\
Iteration 100/1000... Loss: 0.2285... Train Accuracy: 0.930... Accuracy: 1.000
Iteration 200/1000... Loss: 0.0063... Train Accuracy: 1.000... Accuracy: 1.000
Accuracy on the 4 toy sequences: 1.000
"""


@pytest.mark.parametrize("text,app,preset,key,first,final", [
    (HOFFMAN, "stocktwits", "hoffman", "epoch", {"epoch": 1, "train_loss": 0.246, "train_acc": 0.554,
                                                  "val_acc": 0.591}, {}),
    (HOFFMAN + "Test Accuracy: 0.717\n", "stocktwits", "hoffman", "epoch", None, {"test_acc": 0.717}),
    (PTB, "ptb", "small", "epoch", {"epoch": 1, "learning_rate": 1.0, "train_perplexity": 267.053,
                                    "valid_perplexity": 178.075}, {}),
    (THOMAS, "ptb_thomas", "thomas", "display", {"display": "0:0", "cost": 322.54, "accuracy": 0.0},
     {"test_accuracy": 0.281}),
    (ATIENZA, "fables", "blog", "iteration", {"iteration": 1000, "average_loss": 5.807512, "average_accuracy": 0.037},
     {}),
    (KERAS, "imdb", "lstm", "epoch", {"epoch": 1, "loss": 0.693, "accuracy": 0.504, "val_loss": 0.692,
                                      "val_accuracy": 0.51}, {"test_acc": 0.815}),
    (OURS_IMDB, "imdb", "lstm", "epoch", {"epoch": 1, "loss": 0.693, "accuracy": 0.504, "val_loss": 0.692,
                                          "val_accuracy": 0.51}, {"test_acc": 0.6903, "test_loss": 0.6259}),
    (ESSENTIALS, "essentials", "book", "iteration", {"iteration": 100, "loss": 0.2285, "train_accuracy": 0.93,
                                                     "accuracy": 1.0}, {"accuracy": 1.0}),
])
def test_log_formats(tmp_path, text, app, preset, key, first, final):
    path = tmp_path / "train.log"
    path.write_text(text)
    src = compare.load(path)
    assert (src.app, src.preset, src.key) == (app, preset, key)
    if first is not None:
        assert src.curve[0] == pytest.approx(first) if key != "display" else src.curve[0] == first
    for name, value in final.items():
        assert src.final[name] == pytest.approx(value)
    assert not src.warnings


def test_keras_rows_are_the_epochs_last_lines_not_evaluate():
    rows = compare.source_from_log(KERAS, "k").curve
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1] == pytest.approx({"epoch": 2, "loss": 0.5, "accuracy": 0.76, "val_loss": 0.4, "val_accuracy": 0.82})


@pytest.mark.parametrize("text,preset,how", [
    ("Epoch: 1/2... Batch: 50/50... Train Loss: 0.26... Train Accuracy: 0.47... Val Accuracy: 0.54\n", "test",
     "count of 2"),
    ("".join(f"Epoch: {e} Learning rate: {lr:.3f}\n" for e, lr in enumerate([1, 1, 1, 1, 1, 1, 0.8], 1)), "medium",
     "learning rate"),
    ("".join(f"Epoch: {e} Learning rate: {lr:.3f}\n" for e, lr in enumerate([1, 1, 1, 1, 0.5], 1)), "small",
     "learning rate"),
    ("Epoch 1/10 - 313/313 - 9s - loss: 0.9 - accuracy: 0.5 - val_loss: 0.69 - val_accuracy: 0.5\n", "l2",
     "count of 10"),
    ("Iter= 200, Average Loss= 5.1, Average Accuracy= 3.00%\nIter= 400, Average Loss= 4.1, Average Accuracy= 9.00%\n",
     "test", "every 200"),
    (ESSENTIALS.replace("/1000", "/200"), "test", "count of 200"),
    (PTB, "small", "assumed"),
])
def test_preset_recognised_from_the_log(text, preset, how):
    src = compare.source_from_log(text, "log")
    assert src.preset == preset and how in src.preset_from


def test_preset_tables_match_the_apps():
    """TOTALS and PTB_DECAY name each preset by the count it runs to: the apps' own PRESETS."""
    from legacy_lstm import essentials, fables, imdb, ptb, ptb_thomas, stocktwits
    for app, module in (("stocktwits", stocktwits), ("imdb", imdb), ("ptb", ptb), ("ptb_thomas", ptb_thomas)):
        for total, preset in compare.TOTALS[app].items():
            assert module.PRESETS[preset].epochs == total, (app, preset)
    for total, preset in compare.TOTALS["fables"].items():
        assert fables.PRESETS[preset].training_iters == total
    for total, preset in compare.TOTALS["essentials"].items():
        assert essentials.PRESETS[preset].num_iterations == total
    for preset, (epoch, lr) in compare.PTB_DECAY.items():
        config = ptb.PRESETS[preset]
        assert epoch == config.epochs_at_initial_lr + 1 and lr == pytest.approx(config.lr_decay)
    for app, preset in compare.DEFAULT_PRESET.items():
        assert preset in {"ptb_thomas": ptb_thomas, "ptb": ptb, "stocktwits": stocktwits, "imdb": imdb,
                          "fables": fables, "essentials": essentials}[app].PRESETS


# --- cut off and garbled logs ---------------------------------------------------------------------------
def test_a_log_cut_off_mid_line_keeps_the_lines_before(tmp_path):
    text = "\n".join(published.log_lines(published.reference("stocktwits"))[:3]) + "\nEpoch: 4/50... Batch: 303/3"
    path = tmp_path / "cut.log"
    path.write_text(text)
    result = compare.check(path)
    assert [r["epoch"] for r in result.ours.curve] == [1, 2, 3]
    assert result.verdict == "within so far" and result.exit_status == 0
    assert len(result.ours.warnings) == 1 and "line 4" in result.ours.warnings[0]
    out = _cli(path)
    assert out.returncode == 0 and "warning: line 4: starts like a Hoffman (StockTwits) line" in out.stdout


def test_garbled_lines_inside_a_log_are_skipped_with_a_warning():
    text = HOFFMAN.replace("Train Loss: 0.245", "Train Loss: 0.2#5") + "Test Accuracy: 0.7x\n"
    src = compare.source_from_log(text, "log")
    assert [r["epoch"] for r in src.curve] == [1] and "test_acc" not in src.final
    assert len(src.warnings) == 1 and "line 2" in src.warnings[0]


@pytest.mark.parametrize("content", ["hello\nthis is not a training log\n", "", "Epoch: x/50... garbage\n",
                                     "\x00\x01\x02binary"])
def test_a_log_that_matches_no_format_is_exit_2(tmp_path, content):
    path = tmp_path / "bad.log"
    path.write_text(content)
    with pytest.raises(compare.UnreadableError):
        compare.load(path)
    out = _cli(path)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr


@pytest.mark.parametrize("args,message", [
    (["/nonexistent/run"], "no such file"),
    ([RESULTS / "stocktwits.json", "--against=/nonexistent.json"], "no such file"),
    ([RESULTS / "stocktwits.json", "--tolerance=val_acc"], "is not column=value"),
    ([RESULTS / "stocktwits.json", f"--against={RESULTS / 'ptb-small.json'}"], "not of stocktwits"),
    ([RESULTS / "stocktwits.json", "--app=ptb"], "not of ptb"),
])
def test_unreadable_input_or_reference_is_exit_2(args, message):
    out = _cli(*args)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_a_diverged_log_is_outside():
    text = HOFFMAN.replace("Val Accuracy: 0.608", "Val Accuracy: nan")
    result = compare.compare_sources(compare.source_from_log(text, "log"))
    assert result.verdict == "outside"


# --- against another run, with tolerances ----------------------------------------------------------------
def test_against_another_result_with_the_band_or_a_tolerance():
    ours, other = RESULTS / "stocktwits-fast.json", RESULTS / "stocktwits.json"
    assert compare.check(ours, against=other).verdict == "within"  # the published bands: val_acc ± 0.03 ...
    tight = compare.check(ours, against=other, tolerance="val_acc=0.001")
    assert tight.verdict == "outside" and tight.exit_status == 1
    assert "val_acc" in tight.report() and "OUTSIDE" in tight.report()
    with pytest.raises(AssertionError, match="outside"):
        compare.assert_within(ours, against=other, tolerance={"*": 0.001})


def test_against_a_run_without_bands_compares_nothing():
    result = compare.check(RESULTS / "imdb-lstm-pre.json", against=RESULTS / "imdb-lstm.json")
    assert result.verdict == "nothing compared" and any("--tolerance" in n for n in result.notes)
    assert compare.check(RESULTS / "imdb-lstm-pre.json", against=RESULTS / "imdb-lstm.json",
                         tolerance="*=1").verdict == "within"


def test_assert_within_passes_and_returns_the_result():
    result = compare.assert_within(RESULTS / "ptb-small.json")
    assert result.comparison.final["test_perplexity"]["within"]


# --- a log our app prints, against the golden curve -----------------------------------------------------
def test_a_log_of_our_app_against_the_golden_curve(curve_runs, tmp_path):
    """legacy_lstm.stocktwits' own lines (the golden run of tests/curves.py: the test preset with the golden seeds)
    compare within the golden curve of the same run (the log rounds to 3 decimals: tolerance 0.0006) and outside a
    shifted one."""
    golden = json.loads(GOLDEN.read_text())
    run = curve_runs("stocktwits_test_preset")
    log = tmp_path / "train.log"
    log.write_text("\n".join(run["log"]) + "\n")
    result = compare.assert_within(log, against=GOLDEN, tolerance="*=0.0006")
    assert result.verdict == "within" and result.comparison.epochs_compared == 2
    assert compare.check(run["run_dir"], against=log, tolerance="*=0.0006").verdict == "within"
    out = _cli(log, f"--against={GOLDEN}", "--tolerance=*=0.0006")
    assert out.returncode == 0, out.stdout + out.stderr
    shifted = dict(golden, curve=[dict(r, val_acc=r["val_acc"] + 0.01) for r in golden["curve"]])
    (tmp_path / "shifted.json").write_text(json.dumps(shifted))
    out = _cli(log, f"--against={tmp_path / 'shifted.json'}", "--tolerance=*=0.0006")
    assert out.returncode == 1 and "verdict: outside" in out.stdout
    # the test preset has nothing published: not a pass
    assert _cli(log).returncode == 1
