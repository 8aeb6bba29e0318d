"""Distributed training on TensorFlow's runtime (legacy_lstm/distributed.py, legacy_lstm/cluster.py), on loopback.

Every cluster is a ``cluster.Local`` used as a context manager: each process it started is stopped by pid at the end
of its test, also when the test fails; every wait has a timeout. The tasks run this file as a script (``_task``
below) on data the tests write (StockTwits-format messages, PTB corpora, a fable, a tiny IMDB tar), so a config can
have keep_prob 1 (no dropout masks to differ). Apps covered: StockTwits (sync equality, faults, refusal), PTB's
official graph (sync equality), Thomas's (async), fables (sync), IMDB (the chief's early-stopping verdict);
essentials' share is tested in-process (tests/test_essentials.py).
"""

import dataclasses
import gzip
import json
import pathlib
import sys
import time

import numpy as np
import pytest

from legacy_lstm import cluster as launcher
from legacy_lstm import distributed, runs, stocktwits
from legacy_lstm.compat import tf1

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from stocktwits_fixtures import QUICK, SMALL, write_messages  # noqa: E402

WAIT = 120  # seconds any cluster may take (start-up of each task imports TensorFlow: ~10-20 s on 2 loaded cores)


def _spec(data, run_dir, **config):
    return {"data": str(data), "run_dir": str(run_dir), "config": config, "split_seed": 3, "seed": 8}


def _command(spec):
    return [sys.executable, str(pathlib.Path(__file__).resolve()), json.dumps(spec)]


def _config(**overrides):
    fields = dict(vars(SMALL), lstm_sizes=list(SMALL.lstm_sizes))
    fields.update(overrides)
    return fields


def _variables(prefix):
    return {name: tf1.train.load_variable(prefix, name) for name, _ in tf1.train.list_variables(prefix)}


def _wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError(f"no {what} after {timeout} s")
        time.sleep(0.1)


def _log(task):
    return pathlib.Path(task.log_path).read_text(errors="replace")


# ---------------------------------------------------------------------------------------------------------
# Synchronous: the same steps as one process on the combined batch; a task with other flags is refused
# ---------------------------------------------------------------------------------------------------------
WORDS = ("up", "down", "spy", "calls", "puts")


def write_every_word_messages(path, n, seed=0):
    """Messages of 6 words drawn from 5 (bullish: more "up" than "down"), so that every batch of 16 holds every
    word: then each worker's sparse embedding gradient has every row (see the test below)."""
    rng = np.random.RandomState(seed)
    lines = ["\tmessage\tsentiment".replace("\t", ",")]
    for i in range(n):
        words = list(rng.choice(WORDS, 6))
        lines.append(f"{i},{' '.join(words)},{'bullish' if words.count('up') > words.count('down') else 'bearish'}")
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_sync_cluster_equals_one_process_on_the_combined_batch(tmp_path):
    """1 ps + 2 workers, sync, batch 16 each: after k = 30 steps (2 epochs of 15) every variable (weights and
    Adadelta slots) equals a one-process run of the same seed with batch 32, the two workers' batches side by side.

    Two conditions make them the same steps. Keep_prob 1 (each worker draws its own dropout masks). And every
    batch holds every word: the embedding's gradient is sparse, and SyncReplicasOptimizer's sparse accumulator
    averages each row over the gradients that hold it (a row in one worker's batch only gets that worker's
    gradient, not half of it as in the combined batch's mean) -- TF1's behaviour, kept. Tolerance: float32 sums
    in another order (the mean of two means of 16 vs one mean of 32), carried through 30 Adadelta steps."""
    data = write_every_word_messages(tmp_path / "messages.csv.gz", n=600)
    run_dir = tmp_path / "cluster"
    spec = _spec(data, run_dir, **_config(keep_prob=1.0, epochs=2))
    config = stocktwits.Config(**dict(spec["config"], lstm_sizes=tuple(SMALL.lstm_sizes)))
    train = stocktwits.load_data(data, config, QUICK, 3).train.x
    for step in range(len(train) // 32):  # the precondition: both workers' batches hold the same ids
        assert set(train[32 * step:32 * step + 16].ravel()) == set(train[32 * step + 16:32 * step + 32].ravel())
    with launcher.Local(_command(spec), num_ps=1, num_workers=2, log_dir=tmp_path / "logs") as local:
        ps, chief, worker = local.ps[0], local.workers[0], local.workers[1]
        ps.start()
        chief.start()
        # worker 1 with another cell than the chief's: refused by name, before it trains a step
        impostor = launcher.Task("worker", 1, [*worker.command[:2], json.dumps(dict(spec, cell="block")),
                                               *worker.command[3:]], tmp_path / "impostor.log", worker.env)
        impostor.start().wait(timeout=WAIT)
        assert impostor.proc.returncode == 1, _log(impostor)
        text = _log(impostor)
        assert "refusing to train" in text and "cell: saved 'basic', now 'block'" in text, text
        worker.start()
        code, failed = local.wait(timeout=WAIT)
        assert code == 0, _log(failed)
    manifest = runs.read_manifest(run_dir)
    assert manifest["cluster"]["worker_hosts"] == local.worker_hosts and manifest["cluster"]["sync_replicas"]
    assert [row["epoch"] for row in runs.read_curve(run_dir)] == [1, 2]
    single = tmp_path / "single"
    stocktwits.train(data, single, dataclasses.replace(config, batch_size=32), QUICK, split_seed=3, seed=8,
                     log=lambda *a, **k: None)
    for epoch in (1, 2):
        ours = _variables(str(run_dir / f"model.ckpt-{epoch}"))
        ref = _variables(str(single / f"model.ckpt-{epoch}"))
        assert sorted(ours) == sorted(ref)  # the same names: no global step or replication variable saved
        for name in ref:
            np.testing.assert_allclose(ours[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=f"{name}, epoch {epoch}")


# ---------------------------------------------------------------------------------------------------------
# PTB (ptb_word_lm), synchronous: the same steps as one process on the combined batch
# ---------------------------------------------------------------------------------------------------------
def write_cyclic_corpus(folder, lines=201):
    """(train, valid, test) PTB files whose lines are all "a b c": the token stream cycles through the 4 words
    (with <eos>), so every window of 4 steps holds every word -- each worker's sparse embedding gradient has every
    row (see the StockTwits test above). 201 lines = 804 tokens: two pieces of 402, rows of 201 for batch 2, so
    the 4 rows start at 4 different phases of the cycle and the workers' gradients list the words in different
    orders (which the sparse accumulator merges right only once each is made unique and sorted)."""
    paths = []
    for name, count in (("train", lines), ("valid", 40), ("test", 40)):
        path = folder / f"ptb.{name}.txt"
        path.write_text(" a b c \n" * count)
        paths.append(path)
    return tuple(paths)


def test_sync_ptb_cluster_equals_one_process_on_the_combined_batch(tmp_path):
    """1 ps + 2 workers running ptb_word_lm's graph, sync, batch 2 each on their contiguous halves of the tokens:
    after 2 epochs of 50 steps every variable (and the global step the checkpoints hold) equals a one-process run
    of the same seed with batch 4 (its rows 0-1 are worker 0's, 2-3 worker 1's). The conditions: keep_prob 1, a
    clip norm no gradient reaches (the workers clip their own gradients), every batch holding every word (the
    sparse accumulator's per-row average), and learning rate 0.1: at the presets' 1.0 with no clipping, this
    corpus's steps amplify the float32 rounding of the other summation order (~1e-6 after epoch 1, as here) to
    0.7 in softmax_w by the end of epoch 2 -- chaos, not a different step. The embedding's gradient comes through
    apply_gradients alone (tf.gradients, then clipping), so this also checks that its rows are made unique there
    (without that, the workers' gradients, which list the words in different orders, are merged wrong)."""
    from legacy_lstm import ptb
    paths = write_cyclic_corpus(tmp_path)
    run_dir = tmp_path / "sync-ptb"
    config = dataclasses.replace(ptb.PRESETS["test"], num_steps=4, hidden_size=8, batch_size=2, vocab_size=10,
                                 max_grad_norm=1e6, epochs=2, epochs_at_initial_lr=2, learning_rate=0.1)
    spec = {"app": "ptb", "paths": [str(p) for p in paths], "run_dir": str(run_dir),
            "config": dataclasses.asdict(config), "seed": 8}
    with launcher.Local(_command(spec), 1, 2, log_dir=tmp_path / "logs") as local:
        local.start(log=lambda *a: None)
        code, failed = local.wait(timeout=WAIT)
        assert code == 0, _log(failed)
    single = tmp_path / "single"
    ptb.train(paths, single, dataclasses.replace(config, batch_size=4), seed=8, log=lambda *a, **k: None)
    for epoch in (1, 2):
        ours = _variables(str(run_dir / f"model.ckpt-{epoch}"))
        ref = _variables(str(single / f"model.ckpt-{epoch}"))
        assert sorted(ours) == sorted(ref) and ref["Model/global_step"] == 50 * epoch
        for name in ref:
            np.testing.assert_allclose(ours[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=f"{name}, epoch {epoch}")
    report = ptb.test(paths, run_dir, log=lambda *a, **k: None)  # the chief's run dir tests in one process
    assert np.isfinite(report["test_perplexity"])


# ---------------------------------------------------------------------------------------------------------
# Asynchronous Thomas, the chief started before the ps: the loss goes down; his test checkpoint tests in one process
# ---------------------------------------------------------------------------------------------------------
def test_async_thomas_cluster_with_the_chief_first_trains_and_its_checkpoint_tests_in_one_process(tmp_path):
    """Tasks start in any order: a chief whose ps is not up yet waits for it (it is not "lost" before it ever
    answered). Then asynchronous training of Thomas's graph (tied layers, dropout; each worker its own slice of
    the tokens): the training cost goes down, the chief keeps his test checkpoint (epoch index 1) under its
    original name, and his test protocol runs on the chief's run dir in one process."""
    from test_ptb import TINY_THOMAS, write_corpus
    from legacy_lstm import ptb_thomas
    paths = write_corpus(tmp_path, (300, 60, 120))
    run_dir = tmp_path / "async-thomas"
    config = dataclasses.asdict(dataclasses.replace(TINY_THOMAS, epochs=3, test_epoch=2))
    spec = {"app": "ptb_thomas", "paths": [str(p) for p in paths], "run_dir": str(run_dir), "config": config,
            "seed": 8}
    with launcher.Local(_command(spec), 1, 2, log_dir=tmp_path / "logs", sync=False) as local:
        ps, chief, worker = local.ps[0], local.workers[0], local.workers[1]
        chief.start()
        chief_host = local.worker_hosts[0]
        _wait_for(lambda: distributed.reachable(chief_host, timeout=0.5), WAIT, "the chief's server")
        time.sleep(distributed.WATCH_SECONDS * (distributed.WATCH_MISSES + 1))  # longer than a lost ps is given
        ps.start()
        worker.start()
        code, failed = local.wait(timeout=WAIT)
        assert code == 0, _log(failed)
        assert "Epoch 2, Step 0, cost: " in _log(worker)  # the other worker trained every epoch too
    assert runs.read_manifest(run_dir)["cluster"]["sync_replicas"] is False
    curve = runs.read_curve(run_dir)
    assert [row["epoch"] for row in curve] == [1, 2, 3]
    assert curve[-1]["cost"] < curve[0]["cost"], curve
    report = ptb_thomas.test(paths, run_dir, log=lambda *a, **k: None)  # his protocol, one process
    assert report["checkpoint"].endswith(f"{ptb_thomas.THOMAS_NAME}-1")
    assert 0.0 <= report["thomas_accuracy"] <= 1.0
    # untrained, the softmax over vocab_size (50) rows is near uniform: a perplexity near 50
    assert report["test_perplexity"] < 0.5 * TINY_THOMAS.vocab_size


# ---------------------------------------------------------------------------------------------------------
# IMDB: early stopping is the chief's verdict, which the other worker follows
# ---------------------------------------------------------------------------------------------------------
def test_imdb_cluster_stops_early_on_the_chiefs_verdict_and_its_run_dir_tests_in_one_process(tmp_path):
    """IMDB on 1 ps + 2 workers, sync, with early stopping (patience 1) and a learning rate of 0, so that the
    validation loss cannot improve: the chief stops after epoch 2 of 4 and publishes that verdict; the other
    worker, which decides nothing, must stop there too (were it to start epoch 3, its first sync step would wait
    forever and the test would time out). The chief's run dir holds 2 epochs and the best epoch's final
    checkpoint, and tests in one process."""
    from test_imdb import SMALL, WORD_INDEX, write_tar
    from legacy_lstm import imdb
    write_tar(tmp_path / "aclImdb_labeled.tar.gz")
    (tmp_path / "imdb_word_index.json").write_text(json.dumps(WORD_INDEX))
    paths = imdb.Paths(word_index=str(tmp_path / "imdb_word_index.json"), tar=str(tmp_path / "aclImdb_labeled.tar.gz"))
    config = dataclasses.replace(SMALL, learning_rate=0.0, patience=1, epochs=4)
    spec = {"app": "imdb", "paths": dataclasses.asdict(paths), "run_dir": str(tmp_path / "imdb"), "seed": 8,
            "config": dict(dataclasses.asdict(config), lstm_sizes=list(config.lstm_sizes))}
    with launcher.Local(_command(spec), 1, 2, log_dir=tmp_path / "logs") as local:
        local.start(log=lambda *a: None)
        code, failed = local.wait(timeout=WAIT)
        assert code == 0, _log(failed)
        worker_log = _log(local.workers[1])
    assert "Epoch 2/4 - 2/2" in worker_log and "Epoch 3/4" not in worker_log  # its share of 4 batches: 2
    run_dir = spec["run_dir"]
    assert [row["epoch"] for row in runs.read_curve(run_dir)] == [1, 2]
    assert "Epoch 2: early stopping" in _log(local.workers[0])
    assert tf1.train.checkpoint_exists(str(pathlib.Path(run_dir) / imdb.FINAL_CHECKPOINT))
    report = imdb.test(paths, run_dir, log=lambda *a, **k: None)
    assert 0.0 <= report["test_acc"] <= 1.0


# ---------------------------------------------------------------------------------------------------------
# Faults: a worker killed and restarted rejoins; a lost ps stops the workers, and a rerun resumes
# ---------------------------------------------------------------------------------------------------------
def test_killed_worker_rejoins_and_lost_ps_stops_the_cluster_which_resumes(tmp_path):
    data = write_messages(tmp_path / "messages.csv.gz", n=1200)
    run_dir = tmp_path / "faults"
    spec = _spec(data, run_dir, **_config(epochs=4))
    with launcher.Local(_command(spec), 1, 2, log_dir=tmp_path / "logs") as local:
        local.start(log=lambda *a: None)
        ps, chief, worker = local.ps[0], local.workers[0], local.workers[1]
        _wait_for(lambda: 1 in runs.epoch_checkpoints(run_dir), WAIT, "checkpoint of epoch 1")
        worker.kill()  # SIGKILL
        worker.start()
        # The restarted worker has joined once it logs its resume (after epoch 1 at least; "joining at global
        # step" too when it comes in mid-epoch). Only then may the ps go: a task that never reached the ps waits
        # for it, as TF1's did, instead of reporting it lost (under load its start-up can outlast an epoch).
        _wait_for(lambda: "Resuming" in _log(worker).split("--- restarted")[-1], WAIT, "rejoin")
        assert chief.running(), _log(chief)  # not finished before the worker came back: there is a ps to lose
        _wait_for(lambda: 2 in runs.epoch_checkpoints(run_dir), WAIT, "checkpoint of epoch 2 after the rejoin")
        ps.kill()
        _wait_for(lambda: not chief.running() and not worker.running(), 30, "the workers' stop")
        assert chief.proc.returncode == 1 and worker.proc.returncode == 1
        assert "lost the parameter server /job:ps/task:0" in _log(chief)
        assert "lost the parameter server /job:ps/task:0" in _log(worker)
    kept = max(runs.epoch_checkpoints(run_dir))
    assert kept >= 2
    # the same cluster command again (new ports, fresh ps): the chief resumes from its last checkpoint
    with launcher.Local(_command(spec), 1, 2, log_dir=tmp_path / "logs-2") as again:
        again.start(log=lambda *a: None)
        code, failed = again.wait(timeout=WAIT)
        assert code == 0, _log(failed)
    assert [row["epoch"] for row in runs.read_curve(run_dir)] == [1, 2, 3, 4]
    sittings = [json.loads(line) for line in (run_dir / runs.SITTINGS).read_text().splitlines()]
    assert [s["after_epoch"] for s in sittings] == [0, kept]
    assert f"Resuming {run_dir}" in _log(again.workers[0]) or f"after epoch {kept}" in _log(again.workers[0])


def test_fables_trains_on_a_cluster_and_the_chiefs_run_dir_tests_in_one_process(tmp_path):
    """The driver's other apps (fables here; essentials' share of a block: tests/test_essentials.py) on 1 ps + 2
    workers, synchronous: each worker trains its round-robin share of every display and logs its own lines; the
    chief's run directory holds every display and tests in one process."""
    from test_fables import TEXT
    from legacy_lstm import fables
    text = tmp_path / "fable.txt"
    text.write_text(TEXT + " \n", encoding="utf-8")
    spec = {"app": "fables", "data": str(text), "run_dir": str(tmp_path / "fables"), "seed": 8,
            "config": dataclasses.asdict(fables.Config(n_hidden=32, training_iters=800, display_step=200))}
    with launcher.Local(_command(spec), 1, 2, log_dir=tmp_path / "logs") as local:
        local.start(log=lambda *a: None)
        code, failed = local.wait(timeout=WAIT)
        assert code == 0, _log(failed)
        worker_log = _log(local.workers[1])
    assert [row["epoch"] for row in runs.read_curve(spec["run_dir"])] == [1, 2, 3, 4]
    assert len(runs.read_manifest(spec["run_dir"])["cluster"]["worker_hosts"]) == 2
    assert "Iter= 800, Average Loss=" in worker_log  # the other worker trained every display too
    assert 0.0 <= fables.test(text, spec["run_dir"], log=lambda *a: None)["text_accuracy"] <= 1.0


def test_cluster_flags_are_checked():
    with pytest.raises(ValueError, match="--task_index=2 is not a worker task"):
        distributed.Cluster(("h:1",), ("h:2", "h:3"), "worker", 2)
    with pytest.raises(ValueError, match="replicas_to_aggregate=3 must be 1..2"):
        distributed.Cluster(("h:1",), ("h:2", "h:3"), "worker", 0, True, 3)
    with pytest.raises(ValueError, match="--job_name"):
        distributed.from_flags(["h:1"], ["h:2"], None, 0)
    assert distributed.from_flags([], [], None, 0) is None
    cluster = distributed.Cluster(("h:1",), ("h:2", "h:3", "h:4"), "worker", 1)
    assert cluster.replicas == 3 and not cluster.is_chief and cluster.steps_per_epoch(16) == 16
    assert distributed.Cluster(("h:1",), ("h:2", "h:3"), "worker", 0, False).steps_per_epoch(16) == 32
    assert list(cluster.shard_tokens(list(range(10)))) == [3, 4, 5]


def test_launcher_usage_errors_are_one_message(tmp_path, capsys):
    """--help prints the usage (it is not run as a command); no command, or one that does not exist, is a clear
    message and status 2, with nothing left running."""
    with pytest.raises(SystemExit) as exit_:
        launcher.main(["--help"])
    assert exit_.value.code == 0 and "--workers" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        launcher.main(["--workers=1"])
    assert exit_.value.code == 2 and "no app command" in capsys.readouterr().err
    missing = str(tmp_path / "no-such-program")
    assert launcher.main(["--workers=1", "--log_dir", str(tmp_path / "logs"), missing, "--preset=test"]) == 2
    assert f"cannot start '{missing} --preset=test'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# A task of the tests' clusters: python tests/test_distributed.py '<spec json>' <cluster flags>
# ---------------------------------------------------------------------------------------------------------
def _task(argv):
    import argparse

    from legacy_lstm import cli
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--ps_hosts")
    parser.add_argument("--worker_hosts")
    parser.add_argument("--job_name")
    parser.add_argument("--task_index", type=int)
    parser.add_argument("--nosync_replicas", action="store_true")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    cluster = distributed.from_flags(args.ps_hosts.split(","), args.worker_hosts.split(","), args.job_name,
                                     args.task_index, not args.nosync_replicas)

    def main(_):
        if cluster.is_ps:
            return distributed.serve(cluster)
        if spec.get("app") == "fables":
            from legacy_lstm import fables
            fables.train(spec["data"], spec["run_dir"], fables.Config(**spec["config"]), seed=spec["seed"],
                         cluster=cluster)
            return 0
        if spec.get("app") in ("ptb", "ptb_thomas"):
            from legacy_lstm import ptb, ptb_thomas
            app = ptb if spec["app"] == "ptb" else ptb_thomas
            app.train(tuple(spec["paths"]), spec["run_dir"], app.Config(**spec["config"]), seed=spec["seed"],
                      cluster=cluster)
            return 0
        if spec.get("app") == "imdb":
            from legacy_lstm import imdb
            config = imdb.Config(**dict(spec["config"], lstm_sizes=tuple(spec["config"]["lstm_sizes"])))
            imdb.train(imdb.Paths(**spec["paths"]), spec["run_dir"], config, seed=spec["seed"], export=False,
                       cluster=cluster)
            return 0
        config = stocktwits.Config(**dict(spec["config"], lstm_sizes=tuple(spec["config"]["lstm_sizes"])))
        stocktwits.train(spec["data"], spec["run_dir"], config, QUICK, split_seed=spec["split_seed"],
                         seed=spec["seed"], cell=spec.get("cell", "basic"), cluster=cluster)
        return 0
    return cli.guard(main)([])


if __name__ == "__main__":
    sys.exit(_task(sys.argv[1:]))
