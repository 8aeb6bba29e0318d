"""Published numbers as package data, and the comparison routine."""

import pytest

from legacy_lstm import published


def test_stocktwits_published_curve_is_complete():
    doc = published.load("stocktwits")
    assert [row["epoch"] for row in doc["curve"]] == list(range(1, 51))
    assert doc["curve"][0] == {"epoch": 1, "train_loss": 0.247, "train_acc": 0.562, "val_acc": 0.578}
    assert doc["curve"][9]["val_acc"] == 0.659 and doc["curve"][49]["val_acc"] == 0.718
    assert doc["final"] == {"test_acc": 0.717, "val_acc": 0.718}
    assert doc["bands"] == {"final": {"test_acc": 0.015, "val_acc": 0.015}, "curve": {"val_acc": 0.03}}


def _ref():
    return {"curve": [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.6}, {"epoch": 3, "acc": 0.7}],
            "final": {"test": 0.7}, "bands": {"curve": {"acc": 0.05}, "final": {"test": 0.01}}}


def test_compare_within_bands():
    cmp = published.compare([{"epoch": 1, "acc": 0.52}, {"epoch": 2, "acc": 0.57}, {"epoch": 3, "acc": 0.7}],
                            {"test": 0.705}, _ref())
    assert cmp.passed and cmp.complete
    assert cmp.max_deviation["acc"][0] == 2 and cmp.max_deviation["acc"][1] == pytest.approx(-0.03)
    assert cmp.per_epoch[0]["acc_diff"] == pytest.approx(0.02)
    assert cmp.final["test"]["within"] and cmp.final["test"]["diff"] == pytest.approx(0.005)


def test_compare_outside_band_and_partial_run():
    cmp = published.compare([{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.7}], {}, _ref())
    assert not cmp.curve_within["acc"] and not cmp.passed
    assert cmp.epochs_compared == 2 and not cmp.complete
    assert cmp.final["test"] == {"ours": None, "published": 0.7, "diff": None, "band": 0.01, "within": False}
    assert any("NOT all within" in line for line in cmp.summary_lines())


def test_summary_of_a_column_without_band():
    ref = dict(_ref(), curve=[{"epoch": 1, "acc": 0.5, "loss": 0.3}])
    cmp = published.compare([{"epoch": 1, "acc": 0.5, "loss": 0.25}], {"test": 0.7}, ref)
    lines = cmp.summary_lines()
    assert "loss: largest deviation -0.0500 at epoch 1; no band" in lines
    assert "acc: largest deviation +0.0000 at epoch 1; all within the band" in lines


def test_unknown_app():
    with pytest.raises(FileNotFoundError, match="nope"):
        published.load("nope")


def test_thomas_quoted_training_figures_beside_our_curve():
    """His post's words ("cost on the order of 110-120", "accuracy about 30%" after ~38 epochs) are data, compared at
    his checkpoint's epoch: a range gets a verdict, an "about" value only stands beside ours; pending until then."""
    ref = published.load("ptb")["presets"]["thomas"]
    quoted = {q["column"]: q for q in ref["quoted"]}
    assert quoted["cost"]["min"] == 110 and quoted["cost"]["max"] == 120 and quoted["train_accuracy"]["about"] == 0.30
    assert {q["epoch"] for q in ref["quoted"]} == {39}  # epoch index 38, the checkpoint his test restores
    curve = [{"epoch": e, "cost": 200.0 - e, "train_accuracy": 0.2 + e / 1000} for e in range(1, 39)]
    assert [q["verdict"] for q in published.check_quoted(curve, ref)] == ["pending", "pending"]
    checked = published.check_quoted(curve + [{"epoch": 39, "cost": 115.5, "train_accuracy": 0.31}], ref)
    assert [(q["column"], q["ours"], q["verdict"]) for q in checked] == [
        ("cost", 115.5, "in the quoted range"), ("train_accuracy", 0.31, "beside it")]
    checked = published.check_quoted(curve + [{"epoch": 39, "cost": 140.0, "train_accuracy": 0.27}], ref)
    assert checked[0]["verdict"] == "outside the quoted range" and checked[0]["text"] == quoted["cost"]["text"]
    assert published.check_quoted(curve, {"curve": []}) == []  # a section without quoted figures


def test_quoted_figures_of_every_form_make_a_table_row():
    """A range, an "about" value and one-sided figures each give a row of the results table (report.summary_rows)."""
    from legacy_lstm import report
    ref = {"quoted": [{"column": "cost", "epoch": 2, "min": 1, "max": 3, "text": "a range"},
                      {"column": "cost", "epoch": 2, "min": 2.5, "text": "at least"},
                      {"column": "acc", "epoch": 2, "max": 0.5, "text": "at most"},
                      {"column": "acc", "epoch": 2, "about": 0.3, "text": "about"}]}
    curve = [{"epoch": 1, "cost": 9.0, "acc": 0.1}, {"epoch": 2, "cost": 2.0, "acc": 0.4}]
    quoted = published.check_quoted(curve, ref)
    assert [q["verdict"] for q in quoted] == ["in the quoted range", "outside the quoted range",
                                              "in the quoted range", "beside it"]
    doc = {"app": "ptb", "preset": "thomas", "epochs_done": 2, "epochs_total": 60, "quoted": quoted}
    rows = report.summary_rows("x", doc)
    assert any("cost, epoch 2 (quoted) | 1–3 |" in r for r in rows)
    assert any("cost, epoch 2 (quoted) | ≥ 2.5 |" in r and "outside the quoted range" in r for r in rows)
    assert any("acc, epoch 2 (quoted) | ≤ 0.5 |" in r for r in rows)
    assert any("acc, epoch 2 (quoted) | ≈ 0.3 |" in r and "beside it" in r for r in rows)


def test_a_partial_run_projects_the_training_time_left_from_its_recent_epochs():
    """report.projection: the median seconds of the last PROJECTION_ROWS rows times the rows left (a slow epoch
    that shared the machine does not move it); none for a complete or untimed run; the table's progress says it."""
    from legacy_lstm import report
    curve = [{"epoch": e, "seconds": s} for e, s in enumerate([900.0, 100.0, 1000.0, 120.0, 110.0, 130.0, 125.0], 1)]
    left = report.projection(curve, 10)
    assert left == {"rows_left": 3, "seconds_per_row": 125.0, "seconds_left": 375,
                    "basis": "median of the seconds of curve rows 3-7"}  # row 1's 900 s is not among the last 5
    assert report.projection(curve[:1], 2)["basis"] == "median of the seconds of curve row 1"
    assert report.projection(curve, 7) is None
    assert report.projection([{"epoch": 1}], 3) is None  # no row timed: nothing to project from
    doc = {"app": "ptb", "preset": "large", "epochs_done": 7, "epochs_total": 55,
           "projection": report.projection(curve, 55)}
    row = report.summary_rows("ptb-large", doc)[0]
    assert row.startswith("| ptb-large | 7/55 epochs, about 1.7 h of training left |")


def test_the_provenance_table_names_the_cpu_of_every_sitting():
    """report.cpu_label names a sitting's CPU by model and widest vector unit (the wall times are that CPU's), and
    the results table lists each distinct one of a run's sittings, in order; a run from before sittings were kept
    says so instead of guessing."""
    from legacy_lstm import report
    epyc = {"cpus": 2, "cpu_model": "AMD EPYC", "vector_features": ["avx2", "fma", "avx512f", "avx512_bf16"]}
    xeon = {"cpus": 2, "cpu_model": "Intel(R) Xeon(R) Processor @ 2.00GHz", "vector_features": ["avx2", "avx512f"]}
    amx = {"cpus": 2, "cpu_model": "Intel(R) Xeon(R) Processor",
           "vector_features": ["avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]}
    assert report.cpu_label(epyc) == "AMD EPYC (AVX-512, BF16)"
    assert report.cpu_label(xeon) == "Intel Xeon @ 2.00GHz (AVX-512)"
    assert report.cpu_label(amx) == "Intel Xeon (AMX)"
    assert report.cpu_label({"cpu_model": "AMD EPYC"}) == "AMD EPYC"  # a sitting recorded before its features
    assert report.cpu_label({"cpu_model": None, "vector_features": ["avx2"]}) == "unknown CPU (AVX2)"
    doc = {"command": "python scripts/reproduce.py ptb", "seed": 2017, "versions": {"tensorflow": "2.21.0"},
           "train_wall_seconds": 100.0, "test_wall_seconds": None, "git_commit": "abcdef012",
           "sittings": [{"git_commit": "abcdef012", "machine": xeon}, {"git_commit": "1234567aa", "machine": epyc},
                        {"git_commit": "1234567aa", "machine": xeon}]}
    row = report._provenance_row("ptb-x", doc)
    assert row.endswith("| abcdef0, 1234567 | Intel Xeon @ 2.00GHz (AVX-512); AMD EPYC (AVX-512, BF16) |")
    assert report._provenance_row("ptb-x", {**doc, "sittings": []}).endswith("| abcdef0 | not recorded |")
