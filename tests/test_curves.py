"""Curve regression tests: a short seeded run of every app on the real data follows its committed golden curve.

Each run is a spec of tests/curves.py (which configuration, which slice of the data, how many epochs, and why it is
reduced where it is); its golden curve in tests/golden/<name>.json was written by ``python scripts/make_golden.py
<name>`` from the same function, so the run and the golden file cannot drift apart.

Tolerance. A seeded run repeats bit for bit on one machine only up to the arithmetic of its kernels. make_golden.py
measures, per column, the largest difference from the golden curve over three perturbed reruns that change only that
arithmetic (the same run again, oneDNN off, one thread) and records it as the golden file's ``spread``. A column
passes when ``|ours - golden| <= SAFETY * spread + FLOOR``: SAFETY = 4 leaves room for another machine of the same
kind, and the floor (1e-6 relative to the value, plus one example's worth for accuracies) keeps a zero spread from
making the test demand bit-equality. Measured on the 2-core AMD EPYC this project runs on (the figures are in each
golden file): stocktwits ~1e-8 on losses and 0 on accuracies; the other apps' figures are recorded likewise. A golden
curve made on another CPU model may need that machine's spread: re-measure with ``--spread_only``, do not guess.

What a failure means: the training of that app no longer computes what it computed when the golden curve was made
(a hyperparameter, the graph, the data pipeline or the optimiser changed). scripts/mutation_check.py shows which
changes these tests catch (results/mutation.md).
"""

import json
import math
import os

import pytest

import curves

SAFETY = 4.0
REL_FLOOR = 1e-6
ACCURACY_COLUMNS = {"train_acc", "val_acc", "accuracy", "val_accuracy", "average_accuracy", "epoch_train_acc"}


def golden(name):
    return json.loads((curves.GOLDEN_DIR / f"{name}.json").read_text())


def tolerance(column, value, spread):
    floor = REL_FLOOR * abs(value)
    if column in ACCURACY_COLUMNS:
        floor += 1e-9  # accuracies are means of 0/1 counts: equal or at least one example apart
    return SAFETY * spread + floor


@pytest.mark.parametrize("name", list(curves.SPECS))
def test_golden_file_is_complete(name):
    doc = golden(name)
    spec = curves.SPECS[name]
    assert doc["app"] == spec.app and doc["seed"] == curves.SEED
    assert doc["curve"], "empty golden curve"
    assert set(doc["spread"]["per_perturbation"]) == set(curves.PERTURBATIONS)
    assert set(doc["spread"]["max"]) == set(spec.columns)
    for row in doc["curve"]:
        assert set(spec.columns) <= set(row), f"golden row lacks a compared column: {row}"
        assert all(math.isfinite(row[c]) for c in spec.columns)


@pytest.mark.parametrize("name", list(curves.SPECS))
def test_short_seeded_run_follows_the_golden_curve(name, curve_runs):
    doc = golden(name)
    ours = curve_runs(name)["curve"]
    assert [r["epoch"] for r in ours] == [r["epoch"] for r in doc["curve"]]
    off = []
    for mine, ref in zip(ours, doc["curve"]):
        for column, spread in doc["spread"]["max"].items():
            tol = tolerance(column, ref[column], spread)
            if not abs(mine[column] - ref[column]) <= tol:
                off.append(f"epoch {ref['epoch']} {column}: ours {mine[column]!r}, golden {ref[column]!r} "
                           f"(difference {abs(mine[column] - ref[column]):.3g} > tolerance {tol:.3g})")
    assert not off, f"{name} left its golden curve:\n" + "\n".join(off)


def test_the_tolerance_is_far_tighter_than_a_changed_hyperparameter():
    """The tolerance must not hide a real change: one epoch of a different learning rate moves StockTwits' first
    epoch loss by ~1e-3 (tests/test_compare.py shifts it by 1e-2 and fails); the tolerance stays below 1e-6."""
    doc = golden("stocktwits_test_preset")
    for column, spread in doc["spread"]["max"].items():
        assert tolerance(column, doc["curve"][0][column], spread) < 1e-6, column


LONG = os.environ.get("LEGACY_LSTM_LONG_TESTS") == "1"


@pytest.mark.skipif(not LONG, reason="~15 min on 2 cores: set LEGACY_LSTM_LONG_TESTS=1")
def test_stocktwits_published_configuration_follows_the_notebook_for_two_epochs(stocktwits_path, tmp_path):
    """The published configuration itself (T=244, 303 batches of 256, Adadelta 0.1, keep 0.5), epochs 1-2, against
    the notebook's own logged epochs 1-2 and their bands (``legacy_lstm/published/stocktwits.json``). Not in the
    default run: one epoch takes ~400 s here, beyond the suite's budget; the committed 50-epoch run
    (results/stocktwits.json, checked by tests/test_results.py) covers the same lines for the seed it used."""
    from legacy_lstm import compare, stocktwits
    stocktwits.train(stocktwits_path, tmp_path / "run", "hoffman", seed=2017, split_seed=2017, max_epochs=2,
                     log=lambda *a: None)
    result = compare.check(tmp_path / "run")
    assert result.comparison.epochs_compared == 2
    assert result.within, result.report()
