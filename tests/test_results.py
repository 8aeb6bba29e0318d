"""The committed reproduction results stay within the published bands (recomputed here from the curve)."""

import dataclasses
import json
import pathlib
import statistics

import pytest

from legacy_lstm import carry, fast_lstm, imdb, ptb_common, ptb_thomas, published, report, runs

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
FAITHFUL = {"seq_len": 244, "carry_state": True, "vocab_from": "all", "eval_off_by_one": True}


@pytest.fixture(scope="module")
def stocktwits():
    path = RESULTS / "stocktwits.json"
    assert path.exists(), f"{path} is missing: run scripts/reproduce.py stocktwits and commit its output"
    return json.loads(path.read_text())


def test_stocktwits_results_say_how_they_were_made(stocktwits):
    for key in ("command", "seed", "split_seed", "versions", "train_wall_seconds", "machine"):
        assert stocktwits.get(key) is not None, key
    assert stocktwits["versions"]["tensorflow"].startswith("2.21")
    assert {k: stocktwits["quirks"][k] for k in FAITHFUL} == FAITHFUL
    assert stocktwits["preset"] == "hoffman"
    assert stocktwits["epochs_done"] == len(stocktwits["curve"]) >= 1


def test_stocktwits_curve_within_band_of_published(stocktwits):
    cmp = published.compare(stocktwits["curve"], {}, published.load("stocktwits"))
    assert cmp.epochs_compared == len(stocktwits["curve"])
    assert cmp.curve_within["val_acc"], cmp.summary_lines()


def test_stocktwits_final_numbers_within_band(stocktwits):
    ref = published.load("stocktwits")
    assert stocktwits["epochs_total"] == len(ref["curve"]) == 50
    if stocktwits["epochs_done"] < stocktwits["epochs_total"]:
        pytest.skip(f"reproduction is partial ({stocktwits['epochs_done']}/50 epochs): final numbers pending")
    # all epochs trained: the test evaluation must have been run and recorded, not skipped
    assert stocktwits["complete"], "50 epochs but final numbers missing: rerun scripts/reproduce.py stocktwits"
    assert stocktwits["final"]["test_acc"] is not None and stocktwits["test_wall_seconds"] is not None
    cmp = published.compare(stocktwits["curve"], stocktwits["final"], ref)
    assert cmp.complete and cmp.passed, cmp.summary_lines()


# A documented miss: one seeded run (2017) of the 2-layer model reached 90.10% against 95.20% +- 5 (0.1 point
# short), and its "had a general" continuation degenerates. Strict: when a committed run passes, this must be
# removed. See docs/fables.md "Results".
IMPROVED_MISS = pytest.mark.xfail(strict=True, reason="fables improved, seed 2017: 90.10% vs 95.20% +- 5")


@pytest.mark.parametrize("preset", ["blog", pytest.param("improved", marks=IMPROVED_MISS)])
def test_fables_reproduction_within_published_band(preset):
    path = RESULTS / f"fables-{preset}.json"
    assert path.exists(), f"{path} is missing: run the commands in legacy_lstm/fables.py's docstring and commit"
    doc = json.loads(path.read_text())
    for key in ("command", "seed", "versions", "train_wall_seconds", "machine"):
        assert doc.get(key) is not None, key
    assert doc["versions"]["tensorflow"].startswith("2.21") and doc["preset"] == preset
    assert doc["complete"] and doc["iterations_done"] == 50000
    ref = published.load("fables")["presets"][preset]
    cmp = published.compare(doc["curve"], {"average_accuracy": doc["curve"][-1]["average_accuracy"]}, ref)
    assert cmp.final["average_accuracy"]["within"], cmp.summary_lines()


def test_stocktwits_fast_variant_results_are_complete_and_documented():
    """The time-to-result run (--seq_len=auto, block cell) is committed beside the faithful one."""
    path = RESULTS / "stocktwits-fast.json"
    assert path.exists(), f"{path} is missing: run scripts/reproduce.py stocktwits --variant=fast and commit"
    doc = json.loads(path.read_text())
    assert doc["variant"] == "fast" and doc["cell"] == "block" and doc["quirks"]["seq_len"] == 39
    for key in ("command", "seed", "split_seed", "versions", "train_wall_seconds", "test_wall_seconds"):
        assert doc.get(key) is not None, key
    assert doc["complete"] and len(doc["curve"]) == 50
    cmp = published.compare(doc["curve"], doc["final"], published.load("stocktwits"))
    assert cmp.complete and cmp.passed, cmp.summary_lines()  # the same bands as the faithful run


# --- IMDB (no published numbers; target test accuracy >= 0.85 for the tutorial's lstm) ----------------------
IMDB_PRESETS = {"lstm": 5, "stacked": 5, "bidirectional": 5, "attention": 5, "l2": 10}
IMDB_FAITHFUL = {"padding": "post", "truncating": "post", "mask": False, "source": "raw"}


def _imdb(preset, variant="faithful"):
    name = f"imdb-{preset}" + ("" if variant == "faithful" else f"-{variant}")
    path = RESULTS / f"{name}.json"
    assert path.exists(), f"{path} is missing: run scripts/reproduce.py imdb --preset={preset} --variant={variant}"
    doc = json.loads(path.read_text())
    for key in ("command", "seed", "versions", "train_wall_seconds", "test_wall_seconds", "machine"):
        assert doc.get(key) is not None, key
    assert doc["versions"]["tensorflow"].startswith("2.21") and doc["preset"] == preset
    assert doc["variant"] == variant and doc["complete"]
    # trained as the preset is today: its own head as the tutorial wrote it, not an earlier uniform one (a field
    # added to Config since the run counts at its default: lstm's runs predate `head`, whose default is theirs)
    today = json.loads(json.dumps(dataclasses.asdict(imdb.PRESETS[preset])))
    ran = dict(json.loads(json.dumps(dataclasses.asdict(imdb.Config()))), **doc["config"])
    assert ran == today, {k: (v, today[k]) for k, v in ran.items() if today[k] != v}
    return doc


@pytest.mark.parametrize("preset", sorted(IMDB_PRESETS))
def test_imdb_every_preset_ran_fully_with_the_tutorials_quirks(preset):
    doc = _imdb(preset)
    assert doc["quirks"] == IMDB_FAITHFUL and doc["cell"] == "basic"
    epochs = [r["epoch"] for r in doc["curve"]]
    assert epochs == list(range(1, len(epochs) + 1)) and doc["epochs_total"] == IMDB_PRESETS[preset]
    if preset == "l2":  # early stopping: the final weights are the best epoch's
        best = min(doc["curve"], key=lambda r: r["val_loss"])
        assert doc["final"]["best_epoch"] == best["epoch"] and doc["final"]["val_loss"] == best["val_loss"]
    else:
        assert len(epochs) == IMDB_PRESETS[preset]


# The tutorial sets no number for the other presets; a run that learned lands well above chance (0.5): the
# committed ones reached 0.816-0.857. 0.80 separates a learning run from the post-padding stall (0.50-0.69).
IMDB_LEARNED = 0.80


@pytest.mark.parametrize("preset, variant", [
    ("bidirectional", "faithful"), ("attention", "faithful"), ("l2", "faithful"),
    ("stacked", "faithful"),
    ("lstm", "mask"), ("stacked", "pre"), ("stacked", "mask")])
def test_imdb_run_learned(preset, variant):
    doc = _imdb(preset, variant)
    assert doc["final"]["test_acc"] >= IMDB_LEARNED, doc["final"]


# A documented miss: with the tutorial's unmasked post padding, seed 2017's lstm reached 0.690 (the stall the
# issue warns of); the non-default fixes are checked below. Strict: remove it when a committed faithful run passes.
IMDB_LSTM_STALL = pytest.mark.xfail(strict=True, reason="imdb lstm, seed 2017, post padding: test 0.690 < 0.85")


@IMDB_LSTM_STALL
def test_imdb_lstm_faithful_meets_the_target():
    doc = _imdb("lstm")
    target = published.load("imdb")["presets"]["lstm"]["targets"]["test_acc"]["min"]
    assert doc["final"]["test_acc"] >= target, (doc["final"], target)


def _seeds(name):
    """The test accuracies of a committed configuration's complete seeds (report.seed_groups: the same training)."""
    docs = {path.stem: json.loads(path.read_text()) for path in RESULTS.glob("*.json")}
    group = report.seed_groups(RESULTS, docs).get(name, [])
    return [d["final"]["test_acc"] for d in group if d.get("complete")]


def test_imdb_lstm_with_a_documented_fix_meets_the_target():
    """--padding=pre --truncating=pre (the `pre` variant), the fix offered for the faithful stall above: seed 2017
    meets the target (results/README.md's table); over the seeds it is at the target's edge (2 of 5 reach it)."""
    doc = _imdb("lstm", "pre")
    assert doc["quirks"] == dict(IMDB_FAITHFUL, padding="pre", truncating="pre")
    target = published.load("imdb")["presets"]["lstm"]["targets"]["test_acc"]["min"]
    assert doc["final"]["test_acc"] >= target, (doc["final"], target)


@pytest.mark.parametrize("variant", ["pre", "mask"])
def test_imdb_lstm_fixes_end_the_stall_for_every_seed(variant):
    """What the fixes do whatever the seed: the faithful post padding stalls near chance for some seeds (< 0.6),
    pre padding and masking let every seed learn (>= IMDB_LEARNED)."""
    faithful, fixed = _seeds("imdb-lstm"), _seeds(f"imdb-lstm-{variant}")
    assert len(faithful) >= 5 and len(fixed) >= 5, (faithful, fixed)
    assert min(faithful) < 0.6, faithful
    assert min(fixed) >= IMDB_LEARNED, fixed


# --- PTB -----------------------------------------------------------------------------------------------------
def _ptb(preset, variant="faithful"):
    """The committed PTB result of one preset and variant (``ptb-<preset>[-<variant>].json``, as reproduce.py
    names it), with the keys and curve every PTB result must have."""
    name = f"ptb-{preset}" if variant == "faithful" else f"ptb-{preset}-{variant}"
    path = RESULTS / f"{name}.json"
    assert path.exists(), (f"{path} is missing: run scripts/reproduce.py ptb --preset={preset} --variant={variant}"
                           " and commit")
    doc = json.loads(path.read_text())
    for key in ("command", "seed", "versions", "train_wall_seconds", "machine", "epochs_done", "epochs_total"):
        assert doc.get(key) is not None, key
    assert doc["versions"]["tensorflow"].startswith("2.21")
    assert doc["preset"] == preset and doc["variant"] == variant
    assert [r["epoch"] for r in doc["curve"]] == list(range(1, doc["epochs_done"] + 1))
    return doc


def test_ptb_small_reproduction_within_published_bands():
    doc = _ptb("small")
    assert doc["complete"] and doc["epochs_done"] == 13 and doc["cell"] == "block"
    ref = published.load("ptb")["presets"]["small"]
    final = {"valid_perplexity": doc["curve"][-1]["valid_perplexity"],
             "test_perplexity": doc["final"]["test_perplexity"]}
    cmp = published.compare(doc["curve"], final, ref)
    assert set(cmp.final) >= {"valid_perplexity", "test_perplexity"}
    assert all(f["within"] for f in cmp.final.values()), cmp.summary_lines()


# A documented miss: ptb_word_lm's --use_fp16 design (the whole graph and the SGD update in the narrow type, no
# float32 master weights, no loss scaling) in bfloat16 trains, but far from the band (docs/cells.md, "Half
# precision"). Strict: when a committed bfloat16 run lands in the band, this must be removed.
BF16_MISS = pytest.mark.xfail(strict=True, reason="ptb small in bfloat16, seed 2017: test 199.56 vs 115.91 +- 4")


def _ptb_small_bfloat16():
    doc = _ptb("small", "bfloat16")
    assert doc["complete"] and doc["epochs_done"] == 13
    assert doc["config"]["precision"] == "bfloat16" and doc["cell"] == "basic"
    return doc


def test_ptb_small_bfloat16_run_is_complete_and_its_verdict_is_todays():
    """The opt-in bfloat16 run (issue: does a bf16 run still land in the published band?) is recorded with its
    precision and cell, and its committed verdict is what the published bands give today."""
    doc = _ptb_small_bfloat16()
    ref = published.load("ptb")["presets"]["small"]
    final = {"valid_perplexity": doc["curve"][-1]["valid_perplexity"],
             "test_perplexity": doc["final"]["test_perplexity"]}
    cmp = published.compare(doc["curve"], final, ref)
    assert {k: v["within"] for k, v in cmp.final.items()} == {
        k: v["within"] for k, v in doc["comparison"]["final"].items()}
    assert "--precision=bfloat16" in doc["app_command"].split() and "--cell=basic" in doc["app_command"].split()


@BF16_MISS
def test_ptb_small_bfloat16_within_published_bands():
    doc = _ptb_small_bfloat16()
    assert all(f["within"] for f in doc["comparison"]["final"].values()), doc["comparison"]["final"]


def _paths_cover_every_epoch(doc):
    """The record of which LSTM path trained which epochs (a run may switch between paths proven equal): one
    range after another from epoch 1 to the last, each path one of ptb_common.SWITCHABLE or the fused path on the
    native ops."""
    ranges = doc["cells"]
    assert ranges and ranges[0]["first_epoch"] == 1 and ranges[-1]["last_epoch"] == doc["epochs_done"]
    assert all(a["last_epoch"] + 1 == b["first_epoch"] for a, b in zip(ranges, ranges[1:]))
    assert {r["cell"] for r in ranges} <= {*ptb_common.SWITCHABLE, fast_lstm.NATIVE_PATH}
    assert [r.get("cell", doc["cell"]) for r in doc["curve"]] == [
        r["cell"] for r in ranges for _ in range(r["first_epoch"], r["last_epoch"] + 1)]


def test_ptb_medium_reproduction_within_the_published_band():
    doc = _ptb("medium")
    assert doc["epochs_total"] == 39 and doc["variant"] == "faithful"
    _paths_cover_every_epoch(doc)
    # the learning rate of every epoch is the preset's schedule: 1.0 for 6 epochs, then x 0.8 per epoch
    assert [r["learning_rate"] for r in doc["curve"]] == pytest.approx(
        [0.8 ** max(e - 6, 0) for e in range(1, doc["epochs_done"] + 1)])
    if not doc["complete"]:
        pytest.skip(f"reproduction is partial ({doc['epochs_done']}/39 epochs): the test perplexity is pending")
    assert doc["epochs_done"] == 39 and doc["test_wall_seconds"] is not None
    cmp = published.compare(doc["curve"], {"test_perplexity": doc["final"]["test_perplexity"]},
                            published.load("ptb")["presets"]["medium"])
    assert cmp.final["test_perplexity"]["within"], cmp.summary_lines()


def test_ptb_thomas_reproduction_within_the_published_band():
    doc = _ptb("thomas")
    assert doc["epochs_total"] == 60 and doc["config"]["test_epoch"] == 39 and doc["config"]["tie_layers"]
    if "cells" in doc:  # recorded since runs may switch paths
        _paths_cover_every_epoch(doc)
    ref = published.load("ptb")["presets"]["thomas"]
    # his post's training figures stand beside our curve (its cost and accuracy at his checkpoint's epoch)
    assert doc["quoted"] == published.check_quoted(doc["curve"], ref) and len(doc["quoted"]) == 2
    if doc["final"].get("test_accuracy") is None:
        assert doc["epochs_done"] < 39, "epoch 39 trained but his test protocol not run: rerun reproduce.py"
        pytest.skip(f"reproduction is partial ({doc['epochs_done']}/39 epochs to his test checkpoint)")
    his = f"{ptb_thomas.THOMAS_NAME}-38"  # the checkpoint his test restores: his file name, epoch index 38
    assert doc["final"]["test_checkpoint"] == his
    assert len(doc["final"]["sample"]["true"].split()) == len(doc["final"]["sample"]["predicted"].split()) == 35
    assert all(q["ours"] is not None for q in doc["quoted"])
    cmp = published.compare(doc["curve"], {"test_accuracy": doc["final"]["test_accuracy"]}, ref)
    assert cmp.final["test_accuracy"]["within"], cmp.summary_lines()
    if doc["complete"]:  # all 60 epochs: his protocol on the last epoch's weights too
        last = doc["final"]["last_epoch"]
        assert doc["epochs_done"] == last["epoch"] == 60 and last["test_checkpoint"] != his
        assert 0 < last["test_accuracy"] < 1 and last["full_test_perplexity"] > 1


def test_essentials_fits_the_toy_data_as_claimed():
    """No published number: the claim is that the book's graph, trained for the 1,000 iterations its text
    declares, fits the four toy sequences (published/essentials.json's target)."""
    path = RESULTS / "essentials-book.json"
    assert path.exists(), f"{path} is missing: run scripts/reproduce.py essentials and commit"
    doc = json.loads(path.read_text())
    assert doc["complete"] and doc["iterations_done"] == doc["iterations_total"] == 1000
    assert doc["quirks"]["single_step"] is False and doc["versions"]["tensorflow"].startswith("2.21")
    assert doc["final"]["accuracy"] == 1.0 and doc["targets"]["accuracy"]["met"] is True


def test_results_table_is_what_the_results_files_say(reproduce_script):
    """results/README.md is generated (scripts/reproduce.py summary); a hand edit or a stale table fails here."""
    assert (RESULTS / "README.md").read_text() == reproduce_script.summary_text(RESULTS)
    table = (RESULTS / "README.md").read_text()
    for name in ("stocktwits", "stocktwits-fast", "ptb-small", "fables-blog", "essentials-book", "imdb-lstm-pre"):
        assert f"| {name} |" in table


def test_results_stocktwits_table_is_what_the_results_file_says(reproduce_script, tmp_path):
    """results/README.md's faithful StockTwits table is generated from results/stocktwits.json (``summary``)."""
    table = (RESULTS / "README.md").read_text()
    doc = json.loads((RESULTS / "stocktwits.json").read_text())
    block = report.stocktwits_block(doc)
    assert f"{report.STOCKTWITS_HEADING}\n" in table and f"\n{block}\n" in table
    assert table.index(report.STOCKTWITS_HEADING) < table.index("## Against the published numbers")
    assert f"split seed {doc['split_seed']}" in block and f"{doc['train_wall_seconds']:,.0f} s" in block
    val = next(row["val_acc"] for row in doc["curve"] if row["epoch"] == 10)
    assert "0.659 / " in block and f" / {val:.3f} / " in block  # published and ours at epoch 10
    # the table follows the JSON: another value there gives another table; without the file there is none
    changed = json.loads(json.dumps(doc))
    next(row for row in changed["curve"] if row["epoch"] == 10)["val_acc"] = 0.1234
    (tmp_path / "stocktwits.json").write_text(json.dumps(changed))
    assert " / 0.123 / " in reproduce_script.summary_text(tmp_path) and " / 0.123 / " not in table
    (tmp_path / "stocktwits.json").rename(tmp_path / "stocktwits-other.json")
    assert report.STOCKTWITS_HEADING not in reproduce_script.summary_text(tmp_path)


def test_summary_writes_only_the_results_readme(reproduce_script, tmp_path, monkeypatch):
    """``summary`` rewrites <repo>/results/README.md and nothing else: the project README is not generated."""
    monkeypatch.setattr(reproduce_script, "REPO", tmp_path)  # a repository of its own, with a README
    (tmp_path / "README.md").write_text("# a project README\n")
    results = tmp_path / "results"
    results.mkdir()
    (results / "stocktwits.json").write_text((RESULTS / "stocktwits.json").read_text())
    text = reproduce_script.write_summary(results)
    assert (results / "README.md").read_text() == text and report.STOCKTWITS_HEADING in text
    assert (tmp_path / "README.md").read_text() == "# a project README\n"
    assert sorted(p.name for p in results.iterdir()) == ["README.md", "stocktwits.json"]


@pytest.mark.parametrize("packed", sorted(p.parent for p in (RESULTS.parent / "checkpoints" / "carried").glob(
    f"*/{carry.CARRIED}")) or [None])
def test_a_carried_run_in_the_repo_is_complete(packed):
    """A run carried to the next machine in git (checkpoints/carried/<run dir name>) unpacks there: every file
    and part was committed (none fell to .gitignore) and matches its sha256; it is a run of a published config,
    and not one whose committed result is complete (a finished run's pack must be removed)."""
    if packed is None:
        pytest.skip("no run is being carried")
    result = RESULTS / f"{packed.name}.json"
    if result.exists():
        assert not json.loads(result.read_text())["complete"], f"{result.name} is complete: git rm -r {packed}"
    files = dict(carry.packed_files(packed))
    record = json.loads((packed / carry.CARRIED).read_text())
    assert f"{record['checkpoint']}.index" in files and runs.MANIFEST in files and runs.CURVE_JSON in files
    manifest = json.loads(files[runs.MANIFEST])
    # reproduce.py's run dir name, <app>-<preset>: Thomas's tutorial (app ptb_thomas) is its `ptb --preset=thomas`
    app = "ptb" if manifest["app"] == "ptb_thomas" else manifest["app"]
    assert packed.name.startswith(f"{app}-{manifest['preset']}")
    assert len(json.loads(files[runs.CURVE_JSON])) >= record["epoch"]
    test_epoch = manifest["config"].get("test_epoch")
    if manifest["app"] == "ptb_thomas" and record["epoch"] >= test_epoch:  # his test must stay possible there
        his = f"{ptb_thomas.THOMAS_NAME}-{test_epoch - 1}.index"
        assert his in files or ptb_thomas.HIS_TEST in files, "neither his test checkpoint nor its recorded test"


def test_results_table_of_a_run_with_no_epoch_yet(reproduce_script):
    """A report written before the first epoch ends (no curve) is listed as pending, not a KeyError."""
    doc = {"app": "stocktwits", "preset": "hoffman", "epochs_done": 0, "epochs_total": 50, "final": {},
           "comparison": {"curve_within_bands": {"val_acc": True}, "max_deviation": {}, "final": {
               "test_acc": {"ours": None, "published": 0.717, "band": 0.015, "within": False}}}}
    assert report.summary_rows("stocktwits", doc) == [
        "| stocktwits | 0/50 epochs | val_acc, every epoch | (curve) | ± 0.03 | pending | pending |",
        "|  |  | test_acc | 0.717 | ± 0.015 | pending | pending |"]


def test_every_results_app_command_carries_the_flags_its_reproduction_ran_with():
    """A results document's app equivalent runs what the reproduction ran (essentials: the 1,000 iterations, which
    the app runs only with --nosingle_step), for the main runs and every seed."""
    checked = 0
    for path in sorted(RESULTS.glob("*.json")) + sorted((RESULTS / report.SEEDS).glob("*.json")):
        doc = json.loads(path.read_text())
        if "app_command" not in doc:
            continue  # a benchmark
        flags = runs.app_module(doc["app"]).REPRODUCTION.app_flags.split()
        precision = doc["config"].get("precision", "float32")
        if precision != "float32":  # ptb's bfloat16 variant runs on basic, which is not small's default (block)
            flags += [f"--precision={precision}", f"--cell={doc['cell']}"]
        assert set(flags) <= set(doc["app_command"].split()), (path.name, doc["app_command"])
        checked += bool(flags)
    assert checked >= 6  # essentials-book and its five seeds


def test_ptb_large_is_a_partial_run_with_its_projection_and_no_claim():
    """Large (78.29 ± 3 after 55 epochs) takes about 30 hours of training here even on the fused path, more than
    the issue allows for a claim and too large (66 million weights) to carry: its partial curve is committed with
    the projection of the training left, from its own epochs, and its verdict stays pending (docs/ptb.md)."""
    doc = _ptb("large")
    assert doc["epochs_total"] == 55 and doc["variant"] == "faithful" and doc["config"]["hidden_size"] == 1500
    _paths_cover_every_epoch(doc)
    # the preset's schedule: 1.0 for 14 epochs, then / 1.15 per epoch
    assert [r["learning_rate"] for r in doc["curve"]] == pytest.approx(
        [1.15 ** -max(e - 14, 0) for e in range(1, doc["epochs_done"] + 1)])
    assert all(r["valid_perplexity"] < 10000 for r in doc["curve"])  # learning: below the uniform 10,000 words
    if doc["complete"]:
        assert doc["epochs_done"] == 55
        cmp = published.compare(doc["curve"], {"test_perplexity": doc["final"]["test_perplexity"]},
                                published.load("ptb")["presets"]["large"])
        assert cmp.final["test_perplexity"]["within"], cmp.summary_lines()
        return
    left = doc["projection"]
    assert doc["final"]["test_perplexity"] is None and left["rows_left"] == 55 - doc["epochs_done"]
    per_epoch = statistics.median(r["seconds"] for r in doc["curve"][-report.PROJECTION_ROWS:])  # its own epochs
    assert left["seconds_per_row"] == round(per_epoch, 1)
    assert left["seconds_left"] == round(per_epoch * left["rows_left"])
    row = report.summary_rows("ptb-large", doc)[0]
    assert f"| {doc['epochs_done']}/55 epochs, about {left['seconds_left'] / 3600:.1f} h of training left |" in row
    assert row.endswith("| pending |")
