"""Run a published configuration to the end (resumable) and compare it with the published numbers.

    python scripts/reproduce.py stocktwits                  # train 50 epochs (resumes), test, write results
    python scripts/reproduce.py stocktwits --report_only    # write results from the run dir as it is now
    python scripts/reproduce.py stocktwits --variant=fast   # --seq_len=auto (39) and the block cell
    python scripts/reproduce.py imdb --variant=pre          # imdb with --padding=pre --truncating=pre (or =mask)
    python scripts/reproduce.py imdb --preset=lstm          # lstm | stacked | bidirectional | attention | l2
    python scripts/reproduce.py ptb --preset=small          # small | medium | large | thomas
    python scripts/reproduce.py ptb --variant=bfloat16      # small in bfloat16 (--precision), basic cell
    python scripts/reproduce.py fables --preset=blog        # blog | improved (50,000 iterations, then test mode)
    python scripts/reproduce.py essentials                  # the book's graph, 1,000 iterations on the toy data
    python scripts/reproduce.py fables --seed=1             # another seed: results/seeds/fables-blog-seed1.json
    python scripts/reproduce.py summary                     # only rewrite results/README.md
    python scripts/reproduce.py ptb --preset=thomas --hours=2.5  # stop at the last epoch boundary within 2.5 h

Safe under ``nohup``: every epoch is checkpointed in the run directory (default
``~/.cache/legacy_lstm/runs/<app>-<preset>``, outside the work tree so a fresh checkout keeps it), and a rerun
of the same command resumes from the last finished epoch with the same split seed. Writes
``results/<name>.json`` (curve, final metrics, comparison, command, seeds, versions, training sittings, wall
seconds) and ``results/<name>.png`` (our curve over the published one; needs matplotlib), where ``<name>`` is
``<app>-<preset>[-<variant>]`` (``stocktwits[-<variant>]`` for StockTwits' published preset), and rewrites the
table of every committed run, ``results/README.md``, with the faithful StockTwits run's own table at its top
(``python scripts/reproduce.py summary`` does only that). A ``--seed`` other than 2017 is one more seed of the same
configuration: its run dir ends in ``-seed<k>``, its results go to ``results/seeds/<name>-seed<k>.json``, and the
table's seed-spread section counts it (mean, sd, range, how many seeds land in the published band). Each app
declares how it is reproduced (``REPRODUCTION`` and ``reproduce()`` in its module); the results documents, plots and
tables are legacy_lstm/report.py's. A run that
must continue on another machine is carried with ``scripts/carry_run.py`` (pack its run dir into
``checkpoints/carried/<run dir name>`` and commit): on the next machine the same command finds it there, unpacks it
into the (absent) run dir and resumes.
"""

import argparse
import importlib
import math
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from legacy_lstm import carry, report, runs  # noqa: E402
from legacy_lstm.data import download  # noqa: E402
from legacy_lstm.report import SUMMARY, summary_text, write_summary  # noqa: E402,F401 (the tests' entry points)

DEFAULT_SEED = 2017
# runs carried from another machine, one folder per run dir name (scripts/carry_run.py pack)
CARRIED_DIR = REPO / "checkpoints" / "carried"
APPS = ("stocktwits", "ptb", "fables", "essentials", "imdb")  # ptb --preset=thomas: legacy_lstm.ptb_thomas

# Named variants: quirk/cell changes beside the faithful run, each with its own run dir and results file.
VARIANTS = {
    "faithful": {"quirks": {}, "cell": "basic", "apps": ("stocktwits", "ptb", "imdb", "fables", "essentials")},
    "fast": {"quirks": {"seq_len": "auto"}, "cell": "block", "apps": ("stocktwits",)},
    # imdb: the two documented fixes of the tutorial's unmasked post padding (see legacy_lstm/imdb.py)
    "pre": {"quirks": {"padding": "pre", "truncating": "pre"}, "cell": "basic", "apps": ("imdb",)},
    "mask": {"quirks": {"mask": True}, "cell": "basic", "apps": ("imdb",)},
    # fables: the dictionary's ties in a per-run order, as the blog's Python 3.5 gave them (legacy_lstm/fables.py)
    "hashed": {"quirks": {"tie_order": "hashed"}, "cell": "basic", "apps": ("fables",)},
    # ptb: the whole computation in bfloat16 (--precision, legacy_lstm/ptb.py), on the basic cell
    "bfloat16": {"quirks": {}, "cell": "basic", "precision": "bfloat16", "apps": ("ptb",)},
}


def _ptb_path(args, variant):
    """ptb's extra arguments: --cell (the path to train on) and a precision variant's dtype (on its cell)."""
    extra = {"cell": args.cell} if args.cell else {}
    if variant.get("precision"):
        extra = {"cell": args.cell or variant["cell"], "precision": variant["precision"]}
    if args.native_lstm:
        extra["native"] = True
    return extra


def app_module(app):
    return importlib.import_module(f"legacy_lstm.{app}")


def _default_run_dir(app, preset, variant, seed=DEFAULT_SEED):
    suffix = "" if variant == "faithful" else f"-{variant}"
    suffix += "" if seed == DEFAULT_SEED else f"-seed{seed}"
    return str(download.cache_dir() / "runs" / f"{app}-{preset}{suffix}")


def _take_carried_run(args):
    """A run carried here from another machine (scripts/carry_run.py pack into checkpoints/carried/<run dir
    name>) is unpacked into the run dir when that has no run yet, so it continues instead of starting anew; a
    pack of another app/preset is refused, and so is a local run behind the pack (training it would redo the
    carried epochs and then overwrite the committed results with its own): it is not replaced, the error says how
    to continue either."""
    carried = CARRIED_DIR / pathlib.Path(args.run_dir).name
    if not (carried / carry.CARRIED).exists():
        return
    packed = runs.read_manifest(carried)
    app = "ptb_thomas" if (args.app, args.preset) == ("ptb", "thomas") else args.app  # Thomas's tutorial's own app
    if (packed["app"], packed["preset"]) != (app, args.preset):
        sys.exit(f"{carried} holds a {packed['app']} --preset={packed['preset']} run, not {app} "
                 f"--preset={args.preset}: use another --run_dir, or move the pack away")
    epoch = runs.read_json(carried, carry.CARRIED)["epoch"]
    local = runs.read_manifest(args.run_dir)
    if local is None:
        carry.unpack_run(carried, args.run_dir)
        print(f"unpacked the carried run {carried} into {args.run_dir} (resumes after epoch {epoch})", flush=True)
        return
    done = max(runs.epoch_checkpoints(args.run_dir), default=0)
    if done < epoch:
        sys.exit(f"error: {carried} holds this run at epoch {epoch}, {args.run_dir} only at epoch {done}. To continue "
                 f"the carried run, move {args.run_dir} away and rerun; to continue the local one instead, give it "
                 "another --run_dir (its results would replace the committed ones).")


def _set_deadline(run_dir, deadline):
    """The sitting about to start stops at the last epoch boundary that ends before ``deadline`` (UNIX seconds):
    written into the run dir's STOP file, unless another process is training there (RunDirBusyError: its STOP
    file is its own). Returns the text written, for ``_clear_deadline``."""
    run_dir = pathlib.Path(run_dir)
    holder = runs.writer(run_dir)
    if holder is not None:
        raise runs.RunDirBusyError(f"{run_dir} is being trained by another process (pid {holder}); to give that "
                                   f"sitting a deadline, write it into {run_dir / runs.STOP} (UNIX seconds)")
    run_dir.mkdir(parents=True, exist_ok=True)
    text = f"{math.floor(deadline)}\n"  # whole seconds, rounded down: never later than asked (--hours=0: passed)
    (run_dir / runs.STOP).write_text(text)
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(deadline))
    print(f"deadline {when} in {run_dir / runs.STOP}: the training stops at the epoch boundary before it", flush=True)
    return text


def _clear_deadline(run_dir, text):
    """Remove the STOP file ``_set_deadline`` wrote if it is still there as written (the sitting failed, was
    interrupted or stopped early before reading it), so that the next command without --hours trains."""
    path = pathlib.Path(run_dir) / runs.STOP
    try:
        if text is not None and path.read_text() == text:
            path.unlink()
    except FileNotFoundError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("app", choices=sorted(APPS) + ["summary"],
                        help="an app to reproduce, or `summary`: only rewrite results/README.md")
    parser.add_argument("--preset", default=None, help="default: the app's published preset")
    parser.add_argument("--variant", default="faithful", choices=sorted(VARIANTS),
                        help="faithful (default); stocktwits: fast (--seq_len=auto, block cell); imdb: pre "
                        "(--padding=pre --truncating=pre) or mask (--mask); fables: hashed (--tie_order=hashed)")
    parser.add_argument("--run_dir", default=None)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="TF/NumPy seed (initial weights)")
    parser.add_argument("--split_seed", type=int, default=None,
                        help="default: the run dir's seed when resuming, else a drawn one (logged)")
    parser.add_argument("--max_epochs", type=int, default=None, help="stop after this many epochs in total")
    parser.add_argument("--fast_test", action="store_true", help="ptb official presets: the fast test evaluation "
                        "(batch 1, 50-step windows; the same perplexity) instead of the original batch-1, 1-step one")
    parser.add_argument("--cell", default=None, choices=("basic", "block", "fused"),
                        help="ptb: train on this LSTM path; a run made on another of basic/block/fused resumes on "
                        "it (the same variables; each curve row records its epoch's path)")
    parser.add_argument("--native_lstm", action="store_true", help="ptb with --cell=fused: its recurrence in the "
                        "native ops (legacy_lstm/native_ops.py; the same checkpoint; the rows record fused-native)")
    parser.add_argument("--hours", type=float, default=None,
                        help="stop the training at the epoch boundary from which one more epoch would end after this "
                        "many hours from now (a deadline in the run dir's STOP file: legacy_lstm/training.py); the "
                        "same command without it resumes later. The test and results follow as always")
    parser.add_argument("--report_only", action="store_true",
                        help="do not train; report the run dir as it is (ptb: a test that the run dir's report.json "
                        "records for the same protocol and checkpoint bytes is reported, not run again)")
    parser.add_argument("--results_dir", default=str(REPO / "results"))
    args = parser.parse_args(argv)
    if args.app == "summary":
        write_summary(args.results_dir)
        print(f"wrote {pathlib.Path(args.results_dir) / SUMMARY}")
        return
    module = app_module(args.app)
    reproduction = module.REPRODUCTION
    args.preset = args.preset or reproduction.default_preset
    variant = VARIANTS[args.variant]
    if args.app not in variant["apps"]:
        parser.error(f"--variant={args.variant} is not one of {args.app}'s: "
                     f"{', '.join(v for v in VARIANTS if args.app in VARIANTS[v]['apps'])}")
    if args.cell and args.app != "ptb":
        parser.error("--cell is for ptb (its block, basic and fused paths share one checkpoint layout)")
    if args.native_lstm and (args.app != "ptb" or args.cell != "fused"):
        parser.error("--native_lstm is for ptb with --cell=fused (it runs the fused path's recurrence)")
    args.run_dir = args.run_dir or _default_run_dir(args.app, args.preset, args.variant, args.seed)
    deadline = None
    try:
        _take_carried_run(args)
        if args.hours is not None and not args.report_only:
            deadline = _set_deadline(args.run_dir, time.time() + args.hours * 3600)
        manifest, curve, final, test_seconds = module.reproduce(
            args.run_dir, args.preset, args.seed, data_dir=args.data_dir, max_epochs=args.max_epochs,
            train_run=not args.report_only, variant_quirks=variant["quirks"], variant_cell=variant["cell"],
            split_seed=args.split_seed, fast_test=args.fast_test, **_ptb_path(args, variant))
    except (OSError, ValueError, runs.RunDirBusyError, runs.NonFiniteLossError) as err:  # e.g. --preset=nope
        sys.exit(f"error: {err}")
    finally:
        _clear_deadline(args.run_dir, deadline)
    if not manifest:
        sys.exit(f"{args.run_dir} holds no run yet")
    doc = report.write_result(args.results_dir, args.app, args.variant, manifest, curve, final, test_seconds,
                              args.run_dir, reproduction, variant["quirks"], variant["cell"],
                              extra_seed=manifest.get("seed") != DEFAULT_SEED)
    carried = CARRIED_DIR / pathlib.Path(args.run_dir).name
    if doc["complete"] and (carried / carry.CARRIED).exists():
        print(f"the run is complete: remove its carried state from the repository (git rm -r {carried})")


if __name__ == "__main__":
    main()
