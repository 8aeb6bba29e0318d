"""Mutation proof of the test suite: every hyperparameter or graph change listed here must make a test fail.

    python scripts/mutation_check.py                 # all mutations; writes results/mutation.md
    python scripts/mutation_check.py --only imdb     # the mutations of one app (the report then covers only those)
    python scripts/mutation_check.py --list

Each mutation is one textual edit of one package file (the text must occur exactly once, so a refactor that moves it
makes this script stop with a clear message instead of silently testing nothing). For each mutation the script
copies the package, the tests and what they read into a fresh temporary folder, applies the edit there (the checkout
is never touched), and runs the tests named for it with ``pytest -x``: first the fast, targeted ones (the TF 1.15
oracle cases, the curve regression tests), then, if none failed, the app's whole test files. A mutation is caught
when a test fails; the first failing test is recorded. Any mutation that no test catches is a defect of the suite and
makes the exit status 1. First, a baseline: the targeted tests must all pass on an unmutated copy, so a failure
below is the mutation's doing. Not part of the default CI run (it trains the apps once per mutation: ~1-2 h on 2 cores).
"""

import argparse
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
COPIED = ("legacy_lstm", "tests", "scripts", "results", "pyproject.toml", "setup.cfg", "README.md")


@dataclasses.dataclass(frozen=True)
class Mutation:
    app: str
    name: str        # what changes, as the report says it
    path: str        # the package file edited
    old: str         # exact text, occurring once
    new: str
    first: tuple     # the targeted tests, run first (pytest node ids or files)
    then: tuple = ()  # the app's broader test files, run when the targeted ones all pass


CURVES = "tests/test_curves.py::test_short_seeded_run_follows_the_golden_curve"


def curve(name):
    return f"{CURVES}[{name}]"


ST, PTB, TH, FB, ES, IM = ("stocktwits", "ptb", "ptb_thomas", "fables", "essentials", "imdb")
ST_TESTS = ("tests/test_oracle_stocktwits.py", "tests/test_stocktwits.py", "tests/test_stocktwits_data.py")
PTB_TESTS = ("tests/test_oracle_ptb.py", "tests/test_ptb.py")
FB_TESTS = ("tests/test_oracle_fables.py", "tests/test_fables.py")
ES_TESTS = ("tests/test_oracle_essentials.py", "tests/test_essentials.py")
IM_TESTS = ("tests/test_imdb.py",)

MUTATIONS = [
    # --- StockTwits (Hoffman) -----------------------------------------------------------------------------------
    Mutation(ST, "Adadelta learning rate 0.1 -> 0.2", "legacy_lstm/stocktwits.py",
             "    learning_rate: float = 0.1\n", "    learning_rate: float = 0.2\n",
             (curve("stocktwits_test_preset"),), ST_TESTS),
    Mutation(ST, "Adadelta -> Adam", "legacy_lstm/stocktwits.py",
             "distributed.optimizer(OPTIMIZERS[optimizer](config.learning_rate))",
             "distributed.optimizer(OPTIMIZERS['adam'](config.learning_rate))",
             ("tests/test_oracle_stocktwits.py", curve("stocktwits_test_preset")), ST_TESTS),
    Mutation(ST, "dropout keep_prob 0.5 -> 0.8", "legacy_lstm/stocktwits.py",
             "    keep_prob: float = 0.5\n", "    keep_prob: float = 0.8\n",
             (curve("stocktwits_test_preset"),), ST_TESTS),
    Mutation(ST, "forget bias 1 -> 0 (basic cell)", "legacy_lstm/cells.py",
             "def make_cell(kind, num_units, forget_bias=1.0):", "def make_cell(kind, num_units, forget_bias=0.0):",
             ("tests/test_oracle_stocktwits.py", curve("stocktwits_test_preset")), ST_TESTS),
    Mutation(ST, "loss: mean squared error -> sum", "legacy_lstm/stocktwits.py",
             "loss = tf1.losses.mean_squared_error(labels, predictions)",
             "loss = tf1.losses.mean_squared_error(labels, predictions, reduction=tf1.losses.Reduction.SUM)",
             ("tests/test_oracle_stocktwits.py", curve("stocktwits_test_preset")), ST_TESTS),
    Mutation(ST, "state reset every batch instead of carried", "legacy_lstm/stocktwits.py",
             "    carry_state: bool = True", "    carry_state: bool = False",
             (curve("stocktwits_test_preset"),), ST_TESTS),
    Mutation(ST, "padding on the right instead of the left", "legacy_lstm/data/stocktwits.py",
             "            out[i, seq_len - len(row):] = row", "            out[i, :len(row)] = row",
             ("tests/test_stocktwits_data.py", curve("stocktwits_test_preset")), ST_TESTS),
    Mutation(ST, "vocabulary order: most common first -> alphabetical", "legacy_lstm/data/stocktwits.py",
             "ordered = sorted(counts, key=counts.get, reverse=True)", "ordered = sorted(counts)",
             ("tests/test_stocktwits_data.py", curve("stocktwits_test_preset")), ST_TESTS),
    # --- PTB official (ptb_word_lm) ----------------------------------------------------------------------------
    Mutation(PTB, "small: learning rate 1.0 -> 0.5", "legacy_lstm/ptb_common.py",
             "    learning_rate: float = 1.0\n", "    learning_rate: float = 0.5\n",
             (curve("ptb_small_prefix"),), PTB_TESTS),
    Mutation(PTB, "small: gradient clip norm 5 -> 10", "legacy_lstm/ptb_common.py",
             "    max_grad_norm: float = 5.0\n", "    max_grad_norm: float = 10.0\n",
             (curve("ptb_small_prefix"),), PTB_TESTS),
    Mutation(PTB, "small: init_scale 0.1 -> 0.05", "legacy_lstm/ptb_common.py",
             "    init_scale: float = 0.1\n", "    init_scale: float = 0.05\n",
             (curve("ptb_small_prefix"),), PTB_TESTS),
    Mutation(PTB, "forget bias 0 -> 1 (official graph)", "legacy_lstm/ptb_common.py",
             "    forget_bias: float = 0.0\n", "    forget_bias: float = 1.0\n",
             ("tests/test_oracle_ptb.py", curve("ptb_small_prefix")), PTB_TESTS),
    Mutation(PTB, "loss: sum over time steps -> mean", "legacy_lstm/ptb.py",
             "average_across_timesteps=False", "average_across_timesteps=True",
             ("tests/test_oracle_ptb.py", curve("ptb_small_prefix")), PTB_TESTS),
    Mutation(PTB, "state reset every batch instead of fed back", "legacy_lstm/ptb.py",
             "def run_epoch(step, epoch_size, num_steps, batch_size=1, verbose=False, log=print, carry_state=True,",
             "def run_epoch(step, epoch_size, num_steps, batch_size=1, verbose=False, log=print, carry_state=False,",
             ("tests/test_oracle_ptb.py", curve("ptb_small_prefix")), PTB_TESTS),
    Mutation(PTB, "vocabulary order: by count -> alphabetical", "legacy_lstm/data/ptb.py",
             "key=lambda x: (-x[1], x[0])", "key=lambda x: x[0]",
             ("tests/test_oracle_ptb.py", curve("ptb_small_prefix")), PTB_TESTS),
    # --- PTB Thomas ---------------------------------------------------------------------------------------------
    Mutation(TH, "untied layers instead of Thomas's one shared cell", "legacy_lstm/ptb_thomas.py",
             "rnn_mode=\"basic\", tie_layers=True,\n                     test_epoch=39)",
             "rnn_mode=\"basic\", tie_layers=False,\n                     test_epoch=39)",
             ("tests/test_oracle_ptb.py", curve("ptb_thomas_prefix")), PTB_TESTS),
    Mutation(TH, "dropout keep 0.5 -> 0.35", "legacy_lstm/ptb_thomas.py",
             "epochs=60, keep_prob=0.5, lr_decay=0.93", "epochs=60, keep_prob=0.35, lr_decay=0.93",
             (curve("ptb_thomas_prefix"),), PTB_TESTS),
    # --- fables (Atienza) ---------------------------------------------------------------------------------------
    Mutation(FB, "RMSProp -> Adam", "legacy_lstm/fables.py",
             "train_op = tf1.train.RMSPropOptimizer(learning_rate=config.learning_rate).minimize(cost)",
             "train_op = tf1.train.AdamOptimizer(learning_rate=config.learning_rate).minimize(cost)",
             ("tests/test_oracle_fables.py", curve("fables_blog")), FB_TESTS),
    Mutation(FB, "RMSProp epsilon 1e-10 -> 1e-7", "legacy_lstm/fables.py",
             "train_op = tf1.train.RMSPropOptimizer(learning_rate=config.learning_rate).minimize(cost)",
             "train_op = tf1.train.RMSPropOptimizer(learning_rate=config.learning_rate, epsilon=1e-7).minimize(cost)",
             ("tests/test_oracle_fables.py", curve("fables_blog")), FB_TESTS),
    Mutation(FB, "learning rate 0.001 -> 0.002", "legacy_lstm/fables.py",
             "    learning_rate: float = 0.001\n", "    learning_rate: float = 0.002\n",
             (curve("fables_blog"),), FB_TESTS),
    Mutation(FB, "dictionary order: most common first -> alphabetical", "legacy_lstm/data/fables.py",
             "enumerate(collections.Counter(words).most_common())",
             "enumerate(sorted(collections.Counter(words).items()))",
             ("tests/test_oracle_fables.py", curve("fables_blog")), FB_TESTS),
    Mutation(FB, "window stride 4 -> 3 (the original steps n_input + 1)", "legacy_lstm/data/fables.py",
             "def make_offsets(num_tokens, n_input, seed, stride=None):",
             "def make_offsets(num_tokens, n_input, seed, stride=3):",
             (curve("fables_blog"),), FB_TESTS),
    # (loss mean vs sum is no mutation here: a batch of one example makes them the same function)
    # --- essentials ---------------------------------------------------------------------------------------------
    Mutation(ES, "output_keep_prob 0.8 -> 0.5", "legacy_lstm/essentials.py",
             "    output_keep_prob: float = 0.8\n", "    output_keep_prob: float = 0.5\n",
             (curve("essentials_book"),), ES_TESTS),
    Mutation(ES, "loss: mean -> sum", "legacy_lstm/essentials.py",
             "loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=prediction, labels=labels))",
             "loss = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(logits=prediction, labels=labels))",
             ("tests/test_oracle_essentials.py", curve("essentials_book")), ES_TESTS),
    # --- IMDB (Keras tutorial) ----------------------------------------------------------------------------------
    Mutation(IM, "Dropout 0.5 -> 0.2", "legacy_lstm/imdb.py",
             "    dropout: float = 0.5\n", "    dropout: float = 0.2\n",
             (curve("imdb_lstm_subset"),), IM_TESTS),
    Mutation(IM, "Adam epsilon 1e-7 -> 1e-8", "legacy_lstm/imdb.py",
             "tf1.train.AdamOptimizer(config.learning_rate, epsilon=1e-7)",
             "tf1.train.AdamOptimizer(config.learning_rate, epsilon=1e-8)",
             (curve("imdb_lstm_subset"),), IM_TESTS),
    Mutation(IM, "Adam learning rate 1e-3 -> 2e-3", "legacy_lstm/imdb.py",
             "    learning_rate: float = 1e-3\n", "    learning_rate: float = 2e-3\n",
             (curve("imdb_lstm_subset"),), IM_TESTS),
    Mutation(IM, "loss: mean -> sum over the batch", "legacy_lstm/imdb.py",
             "data_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))",
             "data_loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))",
             (curve("imdb_lstm_subset"),), IM_TESTS),
    Mutation(IM, "padding post -> pre", "legacy_lstm/imdb.py",
             "    padding: str = \"post\"\n", "    padding: str = \"pre\"\n",
             (curve("imdb_lstm_subset"),), IM_TESTS),
]


def copy_project(target):
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        elif src.exists():
            shutil.copy2(src, target / name)


def _count_once(mutation, root):
    text = (root / mutation.path).read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise SystemExit(f"mutation {mutation.name!r}: the text to change occurs {count} times in {mutation.path}, "
                         f"not once; update scripts/mutation_check.py to the code as it is now:\n{mutation.old}")
    return text


def apply(mutation, root):
    text = _count_once(mutation, root)
    (root / mutation.path).write_text(text.replace(mutation.old, mutation.new))


FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def run_tests(root, targets, env, timeout):
    """(first failing test or None, seconds) of ``pytest -x`` on ``targets`` inside the copy ``root``."""
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *targets],
                         cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.time() - start
    if out.returncode == 0:
        return None, seconds
    failed = FAILED.findall(out.stdout)
    if out.returncode in (1, 2) and failed:
        return failed[0], seconds
    raise SystemExit(f"pytest could not run {targets} (exit {out.returncode}):\n"
                     f"{out.stdout[-3000:]}{out.stderr[-2000:]}")


def check_copy_is_imported(root, env):
    probe = subprocess.run([sys.executable, "-c", "import legacy_lstm, sys; sys.stdout.write(legacy_lstm.__file__)"],
                           cwd=root, env=env, capture_output=True, text=True, check=True)
    if not pathlib.Path(probe.stdout).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the copy's tests would import {probe.stdout}, not the mutated copy in {root}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted({m.app for m in MUTATIONS}), help="the mutations of one app")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per pytest run")
    parser.add_argument("--report", default=str(REPO / "results" / "mutation.md"))
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if args.only in (None, m.app)]
    if args.list:
        for m in chosen:
            print(f"{m.app:11s} {m.name}  ({m.path})")
        return 0
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    rows, missed, start = [], [], time.time()
    # The baseline: every targeted test passes on an unmutated copy (else a failure below proves nothing).
    with tempfile.TemporaryDirectory(prefix="mutation-baseline-") as tmp:
        root = pathlib.Path(tmp)
        copy_project(root)
        env["PYTHONPATH"] = str(root)
        check_copy_is_imported(root, env)
        for m in chosen:  # the text of every mutation is there, once
            _count_once(m, root)
        targets = list(dict.fromkeys(t for m in chosen for t in m.first))
        failed, seconds = run_tests(root, targets, env, args.timeout)
        if failed:
            raise SystemExit(f"the unmutated copy already fails {failed}: fix that first")
        print(f"baseline: {len(targets)} targeted tests pass unmutated ({seconds:.0f} s)", flush=True)
    for m in chosen:
        with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
            root = pathlib.Path(tmp)
            copy_project(root)
            env["PYTHONPATH"] = str(root)
            check_copy_is_imported(root, env)
            apply(m, root)
            caught, seconds = run_tests(root, m.first, env, args.timeout)
            where = "targeted"
            if caught is None and m.then:
                caught, more = run_tests(root, m.then, env, args.timeout)
                seconds, where = seconds + more, "app tests"
        rows.append((m, caught, where, seconds))
        if caught is None:
            missed.append(m)
        print(f"{'caught' if caught else 'MISSED'}  {m.app}: {m.name}  ->  {caught or '-'}  ({seconds:.0f} s)",
              flush=True)
    write_report(pathlib.Path(args.report), rows, time.time() - start, args.only)
    print(f"wrote {args.report}: {len(rows) - len(missed)}/{len(rows)} caught")
    return 1 if missed else 0


NOTES = """## Notes

- StockTwits, state reset instead of carried: the curve test of the `test` preset does not see it (caught by a
  run-directory test instead, through the recorded quirk). Not a gap of the test: with T=244 and messages
  left-padded with ~200 pad steps, the LSTM forgets its initial state before a message starts: the curves of the
  two settings agree within the golden tolerance (1e-6 relative). The test
  `test_carry_state_changes_what_the_next_batch_sees` (tests/test_stocktwits.py) shows the state is carried; it
  matters for the numbers only where a message fills most of the window.
- Fables, window stride: the app passes its stride explicitly, so the default changed here only reaches callers
  that leave it out (the offsets test); a mutation of `Offsets` itself would reach the app's curve.
- Fables, loss mean vs sum is not a mutation: with a batch of one example they are the same function.
"""


def write_report(path, rows, seconds, only):
    from legacy_lstm.compat import versions  # noqa: PLC0415 (TF only when a report is written)
    v = versions()
    lines = ["# Mutation check", "",
             "Each row is one change to a copy of the package; the test suite must fail on it. Written by "
             f"`python scripts/mutation_check.py{' --only ' + only if only else ''}` "
             f"(TensorFlow {v['tensorflow']}, Python {v['python']}, {os.cpu_count()} cores, "
             f"{seconds / 60:.0f} min in total).", "",
             f"Caught: {sum(1 for r in rows if r[1])} of {len(rows)}.", "",
             "| app | mutation | file | caught by | found in | seconds |", "|---|---|---|---|---|---|"]
    for m, caught, where, secs in rows:
        lines.append(f"| {m.app} | {m.name} | `{m.path}` | {'`' + caught + '`' if caught else '**not caught**'} | "
                     f"{where if caught else '-'} | {secs:.0f} |")
    path.write_text("\n".join(lines) + "\n\n" + NOTES)


if __name__ == "__main__":
    sys.exit(main())
