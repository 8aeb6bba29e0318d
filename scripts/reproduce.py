"""Run a published configuration to the end (resumable) and compare it with the published numbers.

    python scripts/reproduce.py stocktwits                  # train 50 epochs (resumes), test, write results
    python scripts/reproduce.py stocktwits --report_only    # write results from the run dir as it is now
    python scripts/reproduce.py stocktwits --variant=fast   # --seq_len=auto (39) and the block cell
    python scripts/reproduce.py imdb --variant=pre          # imdb with --padding=pre --truncating=pre (or =mask)
    python scripts/reproduce.py imdb --preset=lstm          # lstm | stacked | bidirectional | attention | l2
    python scripts/reproduce.py ptb --preset=small          # small | medium | large | thomas
    python scripts/reproduce.py fables --preset=blog        # blog | improved (50,000 iterations, then test mode)
    python scripts/reproduce.py essentials                  # the book's graph, 1,000 iterations on the toy data
    python scripts/reproduce.py summary                     # only rewrite results/README.md

Safe under ``nohup``: every epoch is checkpointed in the run directory (default
``~/.cache/legacy_lstm/runs/<app>-<preset>``, outside the work tree so a fresh checkout keeps it), and a rerun
of the same command resumes from the last finished epoch with the same split seed. Writes
``results/<name>.json`` (curve, final metrics, comparison, command, seeds, versions, training sittings, wall
seconds) and ``results/<name>.png`` (our curve over the published one; needs matplotlib), where ``<name>`` is
``<app>-<preset>[-<variant>]`` (``stocktwits[-<variant>]`` for StockTwits' published preset), and rewrites the
table of every committed run, ``results/README.md``, with the faithful StockTwits run's own table at its top
(``python scripts/reproduce.py summary`` does only that). A run that must continue on another machine is carried
with ``scripts/carry_run.py`` (pack its run dir into ``checkpoints/carried/<run dir name>`` and commit): on the
next machine the same command finds it there, unpacks it into the (absent) run dir and resumes.
"""

import argparse
import json
import os
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from legacy_lstm import carry, published, runs  # noqa: E402
from legacy_lstm.compat import versions  # noqa: E402
from legacy_lstm.data import download  # noqa: E402

DEFAULT_SEED = 2017
# runs carried from another machine, one folder per run dir name (scripts/carry_run.py pack)
CARRIED_DIR = REPO / "checkpoints" / "carried"


# Named variants: quirk/cell changes beside the faithful run, each with its own run dir and results file.
VARIANTS = {
    "faithful": {"quirks": {}, "cell": "basic", "apps": ("stocktwits", "ptb", "imdb", "fables", "essentials")},
    "fast": {"quirks": {"seq_len": "auto"}, "cell": "block", "apps": ("stocktwits",)},
    # imdb: the two documented fixes of the tutorial's unmasked post padding (see legacy_lstm/imdb.py)
    "pre": {"quirks": {"padding": "pre", "truncating": "pre"}, "cell": "basic", "apps": ("imdb",)},
    "mask": {"quirks": {"mask": True}, "cell": "basic", "apps": ("imdb",)},
}


def _default_run_dir(app, preset, variant):
    suffix = "" if variant == "faithful" else f"-{variant}"
    return str(download.cache_dir() / "runs" / f"{app}-{preset}{suffix}")


def _sitting(args, train):
    """Run ``train()`` (one sitting; resumable) unless --report_only; return the run dir's (manifest, curve)."""
    if not args.report_only:
        start = time.time()
        result = train()
        print(f"sitting: {time.time() - start:.0f} s, {len(result['curve'])} epochs done", flush=True)
    manifest = runs.read_manifest(args.run_dir)
    if manifest is not None and manifest.get("app", _app_module(args)) != _app_module(args):
        sys.exit(f"{args.run_dir} holds a run of legacy_lstm.{manifest['app']}, not of "
                 f"legacy_lstm.{_app_module(args)}: use `reproduce.py {manifest['app'].replace('ptb_thomas', 'ptb')}` "
                 "or another --run_dir")
    return manifest, (runs.read_curve(args.run_dir) if manifest is not None else [])


def _app_module(args):
    """The legacy_lstm module of ``args.app``/``args.preset`` (Thomas's PTB tutorial is an app of its own)."""
    return "ptb_thomas" if (args.app, args.preset) == ("ptb", "thomas") else args.app


def reproduce_stocktwits(args):
    from legacy_lstm import stocktwits
    data_path = download.locate(download.STOCKTWITS, args.data_dir)
    test_acc = None
    variant = VARIANTS[args.variant]
    quirks = stocktwits.Quirks(**variant["quirks"])
    saved = runs.read_manifest(args.run_dir)
    seed = saved.get("seed") if saved is not None else args.seed  # resuming: the run's own seed
    manifest, curve = _sitting(args, lambda: stocktwits.train(
        data_path, args.run_dir, args.preset, quirks, split_seed=args.split_seed, seed=seed,
        max_epochs=args.max_epochs, deterministic=False, cell=variant["cell"]))
    epochs = manifest["config"]["epochs"] if manifest else None
    test_seconds = None
    if curve and len(curve) == epochs:
        t = time.time()
        test_acc = stocktwits.test(data_path, args.run_dir)
        test_seconds = time.time() - t
    final = {"val_acc": curve[-1]["val_acc"] if curve and len(curve) == epochs else None, "test_acc": test_acc}
    return manifest, curve, final, test_seconds


def reproduce_imdb(args):
    from legacy_lstm import imdb
    if args.split_seed is not None:
        sys.exit("imdb has no --split_seed: the split is Keras's fixed seed-113 shuffle and the last 20% of train")
    paths = imdb.locate_data(args.data_dir)
    cache = download.cache_dir() / "imdb"
    saved = runs.read_manifest(args.run_dir)
    seed = saved.get("seed") if saved is not None else args.seed  # resuming: the run's own seed
    manifest, curve = _sitting(args, lambda: imdb.train(
        paths, args.run_dir, args.preset, imdb.Quirks(**VARIANTS[args.variant]["quirks"]), seed=seed,
        max_epochs=args.max_epochs, cache_dir=cache))
    final, test_seconds = {"val_accuracy": None, "val_loss": None, "test_acc": None, "test_loss": None}, None
    config = manifest["config"] if manifest else None
    complete = bool(curve) and (len(curve) == config["epochs"] or (
        config["patience"] is not None and imdb.early_stopping(curve, config["patience"])[1] is not None))
    if complete:
        best = curve[-1]
        if config["patience"] is not None:  # the final weights are the best epoch's
            best_epoch = imdb.early_stopping(curve, config["patience"])[0]
            best = next(r for r in curve if r["epoch"] == best_epoch)
            final["best_epoch"] = best_epoch
        final.update(val_accuracy=best["val_accuracy"], val_loss=best["val_loss"])
        t = time.time()
        final.update(imdb.test(paths, args.run_dir, cache_dir=cache))
        test_seconds = time.time() - t
    return manifest, curve, final, test_seconds


def reproduce_ptb(args):
    """PTB: train the preset (resumable, the run dir's seed when resuming), then the test evaluation: the original
    batch-1/1-step Test model (official presets) or Thomas's protocol on
    the epoch-index-38 checkpoint, as soon as that epoch exists. ``--fast_test``: the equivalent fast pass."""
    from legacy_lstm import ptb, ptb_common, ptb_thomas
    from legacy_lstm.data import ptb as ptb_data
    paths = ptb_data.locate(args.data_dir)
    saved = runs.read_manifest(args.run_dir)
    seed = saved["seed"] if saved is not None and saved.get("seed") is not None else args.seed
    app = ptb_thomas if args.preset == "thomas" else ptb  # Thomas's tutorial is its own app
    manifest, curve = _sitting(args, lambda: app.train(paths, args.run_dir, args.preset, seed=seed,
                                                       max_epochs=args.max_epochs))
    config = ptb_common.Config(**manifest["config"]) if manifest else None
    test_seconds = None
    if config is not None and config.style == "thomas":
        final = {"test_accuracy": None}
        if len(curve) >= config.test_epoch:
            t = time.time()
            report = ptb_thomas.test(paths, args.run_dir)
            test_seconds = time.time() - t
            final = {"test_accuracy": report.get("thomas_accuracy"), "full_test_perplexity": report["test_perplexity"],
                     "full_test_accuracy": report["test_accuracy"],
                     # which checkpoint was tested (the original's is thomas-model-38)
                     "test_checkpoint": os.path.basename(report["checkpoint"])}
        return manifest, curve, final, test_seconds
    complete = config is not None and len(curve) == config.epochs
    final = {"train_perplexity": curve[-1]["train_perplexity"] if complete else None,
             "valid_perplexity": curve[-1]["valid_perplexity"] if complete else None, "test_perplexity": None}
    if complete:
        t = time.time()
        final["test_perplexity"] = ptb.test(paths, args.run_dir, fast=args.fast_test)["test_perplexity"]
        test_seconds = time.time() - t
    return manifest, curve, final, test_seconds


def reproduce_fables(args):
    """Fables: train the preset (the run's own seed when resuming), then its test mode (whole-text accuracy and the
    "had a general" continuation, written to the run dir's report.json). One curve row = one display of 1,000
    iterations; the published number is the last display's Average Accuracy."""
    from legacy_lstm import fables
    if args.split_seed is not None:
        sys.exit("fables has no --split_seed: the windows follow --seed (offset_seed)")
    data_path = download.locate(download.FABLE, args.data_dir)
    saved = runs.read_manifest(args.run_dir)
    seed = saved.get("seed") if saved is not None else args.seed
    manifest, curve = _sitting(args, lambda: fables.train(data_path, args.run_dir, args.preset, seed=seed,
                                                          max_epochs=args.max_epochs,
                                                          cell=VARIANTS[args.variant]["cell"]))
    total = _epochs_total(manifest) if manifest else None
    final = {"average_accuracy": None, "text_accuracy": None, "verbatim_words": None}
    test_seconds = None
    if curve and len(curve) == total:
        t = time.time()
        report = fables.test(data_path, args.run_dir)
        test_seconds = time.time() - t
        final = {"average_accuracy": curve[-1]["average_accuracy"], "text_accuracy": report["text_accuracy"],
                 "verbatim_words": report["generation"]["verbatim_words"]}
    return manifest, curve, final, test_seconds


def reproduce_essentials(args):
    """Essentials: the 1,000 iterations the book's text declares on its four toy sequences (the run's own seed when
    resuming), then the accuracy on them (the target: 1.0; there is no published number)."""
    from legacy_lstm import essentials
    if args.split_seed is not None:
        sys.exit("essentials has no --split_seed: there is no split (four toy sequences)")
    saved = runs.read_manifest(args.run_dir)
    seed = saved.get("seed") if saved is not None else args.seed
    manifest, curve = _sitting(args, lambda: essentials.train(args.run_dir, args.preset, seed=seed,
                                                              max_epochs=args.max_epochs))
    final, test_seconds = {"accuracy": None}, None
    if curve and len(curve) == _epochs_total(manifest):
        t = time.time()
        final["accuracy"] = essentials.test(args.run_dir)
        test_seconds = time.time() - t
    return manifest, curve, final, test_seconds


# config keys of the apps whose curve unit is a block of iterations: (iterations, iterations per curve row)
ITERATION_KEYS = (("training_iters", "display_step"), ("num_iterations", "log_every"))


def _iterations(config):
    """(iterations in all, per curve row) for fables (displays) and essentials (log blocks), else None."""
    return next(((config[a], config[b]) for a, b in ITERATION_KEYS if a in config and b in config), None)


def _epochs_total(manifest):
    """Curve rows of a complete run: epochs, or blocks of iterations (fables' displays, essentials' log blocks;
    essentials' --single_step is one row)."""
    config = manifest["config"]
    if "epochs" in config:
        return config["epochs"]
    total, per_row = _iterations(config)
    if (manifest.get("quirks") or {}).get("single_step"):
        return 1
    return total // per_row


# app -> (reproduce function, default preset, plotted curve columns as (column, title)).
# Results are written to results/<app>[-<preset>][-<variant>].json (+ .png); the preset is left out for
# the default preset of an app with a single published config (stocktwits).
# A reproduce function takes the parsed args, trains (unless --report_only; resumable), evaluates when the run
# is complete, and returns (manifest, curve, final metrics dict, test wall seconds or None).
APPS = {
    "stocktwits": (reproduce_stocktwits, "hoffman",
                   (("val_acc", "validation accuracy"), ("train_loss", "train loss (1 batch)"))),
    "imdb": (reproduce_imdb, "lstm",
             (("accuracy", "train accuracy (epoch mean)"), ("val_accuracy", "validation accuracy"),
              ("loss", "train loss (epoch mean)"), ("val_loss", "validation loss"))),
    # thomas has no validation pass: its plot shows train perplexity only (absent columns are skipped)
    "ptb": (reproduce_ptb, "small", (("valid_perplexity", "validation perplexity"),
                                     ("train_perplexity", "train perplexity"))),
    # one curve row per display of 1,000 iterations (epoch k = iteration k * 1,000)
    "fables": (reproduce_fables, "blog", (("average_accuracy", "Average Accuracy (1,000 online steps)"),
                                          ("average_loss", "Average Loss"))),
    # one curve row per 100 iterations
    "essentials": (reproduce_essentials, "book", (("accuracy", "accuracy on the 4 toy sequences"),
                                                  ("loss", "train loss (100-step mean)"))),
}


def check_targets(final, ref):
    """One-sided targets of a published document ({metric: {"min"/"max": x}}): {metric: {ours, min, max, met}}.

    ``met`` is None while the metric is not measured yet.
    """
    checked = {}
    for name, target in ref.get("targets", {}).items():
        ours = (final or {}).get(name)
        met = None if ours is None else (ours >= target.get("min", -float("inf")) and
                                         ours <= target.get("max", float("inf")))
        checked[name] = {"ours": ours, "min": target.get("min"), "max": target.get("max"), "met": met}
    return checked


def plot(path, curve, ref, title, columns, xlabel="epoch"):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    columns = [(col, label) for col, label in columns if any(col in r for r in curve)] or list(columns[:1])
    fig, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 4), squeeze=False)
    for ax, (col, label) in zip(axes[0], columns):
        published_rows = [r for r in ref["curve"] if col in r]
        if published_rows:
            ax.plot([r["epoch"] for r in published_rows], [r[col] for r in published_rows], "k--", label="published")
        final_value = ref.get("final", {}).get(col)
        if not published_rows and final_value is not None:  # only a final number was published (ptb)
            ax.axhline(final_value, color="k", ls="--", lw=1, label=f"published final {final_value}")
        ours = [r for r in curve if col in r]
        ax.plot([r["epoch"] for r in ours], [r[col] for r in ours], "C0-o", ms=3, label="legacy_lstm")
        band = ref["bands"].get("curve", {}).get(col)
        if band and published_rows:
            e = [r["epoch"] for r in published_rows]
            v = [r[col] for r in published_rows]
            ax.fill_between(e, [x - band for x in v], [x + band for x in v], color="0.85", label=f"band ±{band}")
        ax.set_xlabel(xlabel)
        ax.set_title(label)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


SUMMARY = "README.md"
SUMMARY_HEAD = """# Results

Generated from the JSON files in this folder by `python scripts/reproduce.py summary` (also rewritten after every
reproduction); each run's plot is the `.png` of the same name. Do not edit by hand: `tests/test_results.py`
checks that this file is what the JSON files say.
"""


def reference(app, preset):
    """The published document of ``app`` (its section for ``preset`` when it has one per preset: fables, ptb,
    imdb); a preset with nothing published (e.g. fables' test) gets an empty one."""
    ref = published.load(app)
    if "presets" not in ref:
        return ref
    return ref["presets"].get(preset, {"curve": [], "final": {}, "bands": {"final": {}, "curve": {}}})


def _num(x):
    if x is None:
        return "pending"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.2f}" if abs(x) >= 10 else f"{x:.3f}"


def _progress(doc):
    if "iterations_done" in doc:
        return f"{doc['iterations_done']:,}/{doc['iterations_total']:,} iterations"
    return f"{doc['epochs_done']}/{doc['epochs_total']} epochs"


def summary_rows(name, doc):
    """Markdown rows (run, progress, metric, published, band, ours, verdict) of one results document."""
    cmp, rows = doc.get("comparison") or {}, []
    ref = reference(doc["app"], doc["preset"])
    for col, within in (cmp.get("curve_within_bands") or {}).items():
        band = f"± {ref['bands']['curve'][col]}"
        if col not in (cmp.get("max_deviation") or {}):  # no epoch to compare yet
            rows.append((f"{col}, every epoch", "(curve)", band, "pending", "pending"))
            continue
        epoch, diff = cmp["max_deviation"][col]
        done = doc.get("epochs_done") == doc.get("epochs_total")
        rows.append((f"{col}, every epoch", "(curve)", band, f"largest deviation {diff:+.3f} (epoch {epoch})",
                     ("within" if done else "within so far") if within else "OUTSIDE"))
    for metric, f in (cmp.get("final") or {}).items():
        verdict = "pending" if f["ours"] is None else ("within" if f["within"] else "OUTSIDE")
        rows.append((metric, _num(f["published"]), f"± {f['band']}", _num(f["ours"]), verdict))
    for metric, t in (doc.get("targets") or {}).items():
        bound = " and ".join(f"{'≥' if k == 'min' else '≤'} {t[k]}" for k in ("min", "max") if t[k] is not None)
        verdict = "pending" if t["met"] is None else ("met" if t["met"] else "NOT met")
        rows.append((f"{metric} (target)", bound, "", _num(t["ours"]), verdict))
    if not rows:  # nothing published to compare with: the test metrics as measured (else every final one)
        finals = {m: v for m, v in (doc.get("final") or {}).items() if v is None or isinstance(v, (int, float))}
        shown = {m: v for m, v in finals.items() if m.startswith("test_")} or finals
        rows = [(metric, "", "", _num(value), "") for metric, value in shown.items()] or [("(none)", "", "", "", "")]
    return [f"| {name if i == 0 else ''} | {_progress(doc) if i == 0 else ''} | " + " | ".join(row) + " |"
            for i, row in enumerate(rows)]


def _provenance_row(name, doc):
    seeds = ", ".join(f"{k.replace('_seed', '')} {doc[k]}" for k in ("seed", "split_seed", "offset_seed")
                      if doc.get(k) is not None)
    walls = " / ".join("–" if doc.get(k) is None else f"{doc[k]:,.0f} s"
                       for k in ("train_wall_seconds", "test_wall_seconds"))
    # the commit the run started at, then each sitting's ("+dirty": tracked files differed from it)
    commits = [(doc.get("git_commit"), doc.get("git_dirty"))] + [(s.get("git_commit"), s.get("git_dirty"))
                                                                  for s in doc.get("sittings") or []]
    commits = list(dict.fromkeys(c[:7] + ("+dirty" if dirty else "") for c, dirty in commits if c))
    return (f"| {name} | `{doc['command']}` | {seeds} | {doc['versions']['tensorflow']} | {walls} | "
            f"{', '.join(commits) or 'not recorded'} |")


def write_summary(results_dir):
    """Rewrite ``results_dir/README.md`` from the results documents there (nothing else is written)."""
    results_dir = pathlib.Path(results_dir)
    text = summary_text(results_dir)
    (results_dir / SUMMARY).write_text(text)
    return text


STOCKTWITS_HEADING = "## StockTwits, the faithful run (the main job)"
STOCKTWITS_EPOCHS = (1, 10, 20, 30, 40, 50)


def stocktwits_block(doc):
    """The table of the faithful StockTwits run (``results/stocktwits.json``) against the published numbers."""
    ref, cmp = reference("stocktwits", doc["preset"]), doc["comparison"]
    ours = {row["epoch"]: row["val_acc"] for row in doc["curve"]}
    published_val = {row["epoch"]: row["val_acc"] for row in ref["curve"]}
    done, total = doc["epochs_done"], doc["epochs_total"]
    so_far = "" if done == total else f"; {done} of {total} epochs so far"
    within = sum(published.within_band(r["val_acc_diff"], ref["bands"]["curve"]["val_acc"]) for r in cmp["per_epoch"])
    epoch, diff = cmp["max_deviation"].get("val_acc", (None, None))
    largest = "" if epoch is None else f" (largest deviation {diff:+.3f}, epoch {epoch})"
    sittings = len(doc.get("sittings") or [])
    rows = [
        f"| metric | published | band | ours (seed {doc['seed']}, split seed {doc['split_seed']}{so_far}) |",
        "| --- | --- | --- | --- |",
        f"| val accuracy, epoch {' / '.join(map(str, STOCKTWITS_EPOCHS))} | "
        f"{' / '.join(_num(published_val.get(e)) for e in STOCKTWITS_EPOCHS)} | "
        f"± {ref['bands']['curve']['val_acc']} | {' / '.join(_num(ours.get(e)) for e in STOCKTWITS_EPOCHS)} |",
        f"| every epoch's val accuracy | (curve) | ± {ref['bands']['curve']['val_acc']} | "
        f"{within} of {cmp['epochs_compared']} within{largest} |",
    ]
    for metric, label in (("val_acc", f"val accuracy, epoch {total}"), ("test_acc", "test accuracy")):
        final = cmp["final"][metric]
        verdict = "" if final["ours"] is None else (" (within)" if final["within"] else " (OUTSIDE)")
        rows.append(f"| {label} | {_num(final['published'])} | ± {final['band']} | {_num(final['ours'])}{verdict} |")
    recorded = f" ({sittings} sitting{'' if sittings == 1 else 's'} recorded)" if sittings else ""
    rows.append(f"| training wall time | | | {doc['train_wall_seconds']:,.0f} s over {done} epochs{recorded} |")
    return "\n".join(rows)


def stocktwits_section(doc):
    """The section of results/README.md on the faithful StockTwits run: how it was made, then its table."""
    return [STOCKTWITS_HEADING, "",
            f"`{doc['command']}`; curve and plot: [`stocktwits.json`](stocktwits.json), "
            "[`stocktwits.png`](stocktwits.png); the published curve, epoch by epoch: "
            "[`legacy_lstm/published/stocktwits.json`](../legacy_lstm/published/stocktwits.json).", "",
            stocktwits_block(doc), ""]


def summary_text(results_dir):
    """The results table (markdown) of the results documents (``*.json`` with a comparison) in ``results_dir``."""
    results_dir = pathlib.Path(results_dir)
    found = []
    for path in sorted(results_dir.glob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and "comparison" in doc and "command" in doc:
            found.append((path.stem, doc))
    order = ["stocktwits", "ptb", "fables", "essentials", "imdb"]  # the main job first, then the brief's order
    found.sort(key=lambda item: (order.index(item[1]["app"]) if item[1]["app"] in order else len(order), item[0]))
    docs = dict(found)
    lines = [SUMMARY_HEAD]
    if "stocktwits" in docs:  # the faithful run of the published preset (scripts/reproduce.py stocktwits)
        lines += stocktwits_section(docs["stocktwits"])
    lines += ["## Against the published numbers", "",
             "| run | progress | metric | published | band | ours | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, doc in docs.items():
        lines += summary_rows(name, doc)
    lines += ["", "## How each was made", "", f"Machine: {next(iter(docs.values()))['machine']}."
              if docs else "", "",
              "| run | command | seeds | TF | train / test wall | git commit(s) |",
              "| --- | --- | --- | --- | --- | --- |"]
    lines += [_provenance_row(name, doc) for name, doc in docs.items()]
    return "\n".join(lines) + "\n"


def _take_carried_run(args):
    """A run carried here from another machine (scripts/carry_run.py pack into checkpoints/carried/<run dir
    name>) is unpacked into the run dir when that has no run yet, so it continues instead of starting anew; a
    pack of another app/preset is refused, and a local run behind the pack is reported, not replaced."""
    carried = CARRIED_DIR / pathlib.Path(args.run_dir).name
    if not (carried / carry.CARRIED).exists():
        return
    packed = runs.read_json(carried, runs.MANIFEST)
    app = "ptb_thomas" if (args.app, args.preset) == ("ptb", "thomas") else args.app  # Thomas's tutorial's own app
    if (packed["app"], packed["preset"]) != (app, args.preset):
        sys.exit(f"{carried} holds a {packed['app']} --preset={packed['preset']} run, not {args.app} "
                 f"--preset={args.preset}: use another --run_dir, or move the pack away")
    epoch = runs.read_json(carried, carry.CARRIED)["epoch"]
    local = runs.read_manifest(args.run_dir)
    if local is None:
        carry.unpack_run(carried, args.run_dir)
        print(f"unpacked the carried run {carried} into {args.run_dir} (resumes after epoch {epoch})", flush=True)
        return
    done = max(runs.epoch_checkpoints(args.run_dir), default=0)
    if done < epoch:
        print(f"warning: {carried} holds this run at epoch {epoch}, {args.run_dir} only at epoch {done}; to "
              f"continue the carried one, move {args.run_dir} away and rerun", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("app", choices=sorted(APPS) + ["summary"],
                        help="an app to reproduce, or `summary`: only rewrite results/README.md")
    parser.add_argument("--preset", default=None, help="default: the app's published preset")
    parser.add_argument("--variant", default="faithful", choices=sorted(VARIANTS),
                        help="faithful (default); stocktwits: fast (--seq_len=auto, block cell); imdb: pre "
                        "(--padding=pre --truncating=pre) or mask (--mask)")
    parser.add_argument("--run_dir", default=None)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="TF/NumPy seed (initial weights)")
    parser.add_argument("--split_seed", type=int, default=None,
                        help="default: the run dir's seed when resuming, else a drawn one (logged)")
    parser.add_argument("--max_epochs", type=int, default=None, help="stop after this many epochs in total")
    parser.add_argument("--fast_test", action="store_true", help="ptb official presets: the fast test evaluation "
                        "(batch 1, 50-step windows; the same perplexity) instead of the original batch-1, 1-step one")
    parser.add_argument("--report_only", action="store_true", help="do not train; report the run dir as it is")
    parser.add_argument("--results_dir", default=str(REPO / "results"))
    args = parser.parse_args()
    if args.app == "summary":
        write_summary(args.results_dir)
        print(f"wrote {pathlib.Path(args.results_dir) / SUMMARY}")
        return
    reproduce, default_preset, columns = APPS[args.app]
    args.preset = args.preset or default_preset
    if args.app not in VARIANTS[args.variant]["apps"]:
        parser.error(f"--variant={args.variant} is not one of {args.app}'s: "
                     f"{', '.join(v for v in VARIANTS if args.app in VARIANTS[v]['apps'])}")
    args.run_dir = args.run_dir or _default_run_dir(args.app, args.preset, args.variant)
    try:
        _take_carried_run(args)
        manifest, curve, final, test_seconds = reproduce(args)
    except (OSError, ValueError, runs.RunDirBusyError, runs.NonFiniteLossError) as err:  # e.g. --preset=nope
        sys.exit(f"error: {err}")
    if not manifest:
        sys.exit(f"{args.run_dir} holds no run yet")
    ref = reference(args.app, manifest["preset"])
    cmp = published.compare(curve, final, ref)
    targets = check_targets(final, ref)
    results = pathlib.Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    train_seconds = sum(r.get("seconds", 0) for r in curve)
    variant = VARIANTS[args.variant]
    app_flags = "".join(f" --{k}={v}" for k, v in variant["quirks"].items())
    app_flags += f" --cell={variant['cell']}" if variant["cell"] != "basic" else ""
    seed_flags = "".join(f" --{k}={manifest[k]}" for k in ("seed", "split_seed") if manifest.get(k) is not None)
    doc = {
        "app": args.app, "preset": manifest["preset"], "variant": args.variant,
        "command": f"python scripts/reproduce.py {args.app} --preset={manifest['preset']} --variant={args.variant}"
                   f"{seed_flags}",
        # The app's equivalent, except that the app's --seed also turns on deterministic mode
        # (parallel_iterations=1), which the reproduction does not use, and its run dir is checkpoints/.
        "app_command": f"python -m legacy_lstm.{manifest.get('app', args.app)} --preset={manifest['preset']}"
                       f"{app_flags}{seed_flags}",
        "seed": manifest["seed"], "split_seed": manifest["split_seed"], "quirks": manifest["quirks"],
        "config": manifest["config"], "cell": manifest.get("cell"),
        "deterministic": manifest.get("deterministic", False),
        # the versions the run was trained with (its manifest), and those of this report
        "versions": manifest.get("versions") or versions(), "report_versions": versions(),
        # the commit the run started at, each training sitting's commit (a run resumed across commits), and
        # the commit of this report
        "git_commit": manifest.get("git_commit"), "git_dirty": manifest.get("git_dirty"),
        "sittings": runs.read_sittings(args.run_dir),
        "report_git": runs.git_state(),
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "epochs_done": len(curve), "epochs_total": _epochs_total(manifest),
        # every final metric measured (stocktwits: val_acc and test_acc; ptb: also the test evaluation)
        "complete": all(v is not None for v in final.values()),
        "train_wall_seconds": round(train_seconds, 1),
        "test_wall_seconds": None if test_seconds is None else round(test_seconds, 1),
        "curve": curve, "final": final,
        "comparison": {"epochs_compared": cmp.epochs_compared, "max_deviation": cmp.max_deviation,
                       "curve_within_bands": cmp.curve_within, "final": cmp.final,
                       # None when the document has no band at all (nothing was compared, e.g. imdb)
                       "passed": cmp.passed if (cmp.final or cmp.curve_within) else None,
                       "per_epoch": cmp.per_epoch},
        "targets": targets,
        "references": ref.get("references", []),
    }
    iterations = _iterations(manifest["config"])
    if iterations:  # fables, essentials: the curve unit is a block of iterations; say it in iterations too
        single = (manifest.get("quirks") or {}).get("single_step")  # essentials as shipped: one step
        doc.update(iterations_done=curve[-1]["iteration"] if curve else 0,
                   iterations_total=1 if single else iterations[0])
        if manifest.get("offset_seed") is not None:
            doc["offset_seed"] = manifest["offset_seed"]
    preset = manifest["preset"]  # the run's own (a --report_only of another run dir must not take this name)
    name = args.app if args.app == "stocktwits" and preset == default_preset else f"{args.app}-{preset}"
    name = name if args.variant == "faithful" else f"{name}-{args.variant}"
    out = results / f"{name}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    seeds = "".join(f", {k.replace('_', ' ')} {manifest[k]}" for k in ("seed", "split_seed")
                    if manifest.get(k) is not None)
    title = (f"{name}: {len(curve)}/{_epochs_total(manifest)} {'blocks' if iterations else 'epochs'}"
             f"{seeds}, "
             f"TF {doc['versions']['tensorflow']}")
    plot(results / f"{name}.png", curve, ref, title, columns,
         f"blocks of {iterations[1]:,} iterations" if iterations else "epoch")
    print("\n".join(cmp.summary_lines()))
    for name, t in targets.items():
        bound = " and ".join(f"{k} {t[k]}" for k in ("min", "max") if t[k] is not None)
        verdict = "not measured yet" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"target {name} ({bound}): ours {t['ours']}: {verdict}")
    write_summary(results)
    print(f"wrote {out} and {results / SUMMARY}")
    carried = CARRIED_DIR / pathlib.Path(args.run_dir).name
    if doc["complete"] and (carried / carry.CARRIED).exists():
        print(f"the run is complete: remove its carried state from the repository (git rm -r {carried})")


if __name__ == "__main__":
    main()
