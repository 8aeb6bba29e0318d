"""Distributed training on TensorFlow's own runtime: TF1's ps/worker between-graph replication.

A cluster is what TF1's distributed examples built from four flags: ``--ps_hosts`` and ``--worker_hosts``
(comma-separated host:port lists, the same on every task), ``--job_name`` (ps | worker) and ``--task_index``;
``--sync_replicas`` (default true) and ``--replicas_to_aggregate`` (default: the number of workers) choose
synchronous or asynchronous updates. Without them an app trains in one process exactly as before: nothing in this
module is used, and ``optimizer`` returns the app's optimizer unchanged.

Roles
    ps task       starts a ``tf1.train.Server`` and serves (``server.join()``): the variables live there. It holds
                  no model, reads no data and runs until it is stopped (``python -m legacy_lstm.cluster`` stops it
                  when the workers are done).
    worker task   starts its server, builds the app's graph under ``tf1.train.replica_device_setter`` (variables and
                  optimizer slots on the ps tasks, round-robin; every other op on the worker itself) and trains in a
                  session on its own server with ``device_filters`` (a worker talks only to the ps tasks, so a dead
                  worker never blocks the others).
    chief         worker task 0, as in TF1's ``MonitoredTrainingSession``: it alone touches the run directory (lock,
                  manifest with a ``cluster`` field, per-epoch checkpoints, curve, TensorBoard, final checkpoint), so
                  the run directory is exactly a single-process one (same variable names: the replication's own
                  variables, the global step it adds and ``distributed/plan``, are not saved) and ``--mode=test``,
                  predict, generate, convert and a single-process resume work on it. The chief initialises the
                  variables on the ps or restores its newest checkpoint into them, sets the global step to the
                  start of the next epoch, and then publishes the plan (its manifest and the steps per epoch) in a
                  variable on ps task 0.
    other workers wait for that plan (so they also take the chief's seed and split seed when they were not
                  given), refuse to train when their own flags give another manifest (each differing field is named:
                  ``ManifestMismatchError``), and write nothing.

Updates
    sync (default)  ``tf1.train.SyncReplicasOptimizer`` wraps the app's optimizer: each worker computes the
                    gradients of its batch, the chief's queue runner averages ``replicas_to_aggregate`` of them and
                    applies the app's optimizer once, and every worker waits for that update before its next batch.
                    With the default (all workers) one global step is one step of the app's optimizer on the
                    combined batch (the workers' batches side by side). The token queue starts empty (TF1's hook
                    seeded it with ``replicas_to_aggregate`` tokens, which lets each worker run one step ahead and have
                    that gradient dropped as stale): so the steps are exactly those of the combined batch.
                    One exception, TF1's own: an embedding's sparse gradient is averaged per row over the
                    workers whose batch holds that row (``SparseConditionalAccumulator``), so a word in one
                    worker's batch only gets that worker's gradient, not half of it as in the combined batch's
                    mean; when every batch holds every word the step is the combined batch's exactly. Each
                    worker's sparse gradient is first made one slice per row, in ascending order (``_unique_rows``),
                    which the accumulator needs to merge them right.
    async           each worker applies its own gradients to the ps variables as soon as it has them (one global
                    step per worker batch), as TF1's asynchronous examples did.

How the data is split and how an epoch is counted
    An epoch is still one pass over the training data, by the cluster together. With N workers:

    - StockTwits: the epoch's batches (of the config's batch size, in the app's order) are dealt round-robin:
      worker k trains batches k, k+N, k+2N, ...; every worker takes floor(n/N) of them (the last n mod N batches of
      an epoch are left out, so that every worker takes part in every synchronous step). A sync step is therefore
      the single-process step on the batch of N x batch_size consecutive examples. Each worker carries its own
      LSTM state from its batch to its next one (``--carry_state``): row r of worker k's state is what row r of
      the combined batch would carry.
    - PTB (``ptb_word_lm`` and Thomas's graph alike): the token stream of the training text is cut into N
      contiguous pieces of equal length; worker k runs the original's producer (batch_size rows, num_steps
      windows) over piece k and feeds its own final state back as its next initial state. Rows of the N workers
      side by side are the rows of the combined batch of N x batch_size (exactly, when the lengths divide), so a
      sync step is again the single-process step on it, except that the gradients are clipped per worker, before
      they are averaged, and the embedding's rows are averaged as below. The global step the PTB checkpoints
      hold counts the cluster's steps (an epoch is the steps of one worker's piece).
    - Fables and essentials: an "epoch" is their checkpoint unit (a display of ``display_step`` windows, a block of
      ``log_every`` iterations); its windows/iterations are dealt round-robin like StockTwits' batches. Fables
      draws the display's windows in full on every worker, so the next display starts where one process's would;
      essentials' workers draw the same word vectors from the chief's seed.
    - Steps: a worker trains its share of an epoch; an epoch ends for every worker when the global step reaches
      ``epoch x steps_per_epoch`` (sync: steps_per_epoch = the share x N / replicas_to_aggregate; async: the share
      x N). A worker that reaches it early stops its share there; one that has finished its share before (after a
      restart some of its gradients may be dropped as stale) goes on with its own batches again until it is
      reached. So no worker waits forever for a step the others will not take.
    - IMDB: its training batches (of the shuffled epoch order) are dealt round-robin like StockTwits' (the
      last, partial batch is left out when it falls outside the workers' equal shares); each batch keeps the
      dropout seed of its index in the epoch. Early stopping (the l2 preset's ``patience``) is the chief's:
      before each epoch the chief decides on its own curve and publishes the verdict on ps task 0, and the other
      workers wait for it, so none trains an epoch the chief stopped before; the best epoch's weights and the
      final checkpoint are the chief's.
    - Validation and the curve row are the chief's own (the other workers evaluate too, as the app always does,
      but their rows are not recorded). In sync mode the chief's checkpoint is the model after exactly the epoch's
      steps; in async mode the other workers may already have applied gradients of the next epoch.

Faults
    - A worker killed (even SIGKILL) and started again with the same command rejoins: it reads the global step,
      starts in the current epoch after the steps already taken (its LSTM state starts from zeros; PTB's producer
      starts at the first window of its piece) and the others wait for it in sync mode. No finished epoch is lost.
    - The chief killed: stop the cluster and start it again; the chief resumes from its last checkpoint (the
      steps since are lost, no finished epoch). Restarting the chief alone while the ps and the other workers
      run is not reliable: it restores its checkpoint into the ps and resets the global step, and in one of two
      synchronous trials on a loaded 2-core machine the cluster then hung (the other worker waiting on the token
      queue); it is not tested and not recommended.
    - A ps task lost: every worker watches the ps ports and stops with a clear message (exit status 1) naming the
      lost task; the ps state is gone, so start the cluster again: the chief resumes from its last checkpoint.
    A cluster needs fresh ps tasks: a ps keeps the state of the run it served (as in TF1); the launcher starts new
    ones every time.

The driver (legacy_lstm/training.py) uses this module through ``train(..., cluster=...)``: ``Replica`` builds the
model under the device setter, starts the session on its server, plays the chief's or a worker's part at the start
of a sitting, and ``Replica.share`` gives each epoch's share of batches (``Sitting.share`` for the apps). The apps
call ``optimizer`` on their optimizer, ``saved_manifest`` in their ``train`` and ``serve`` for a ps task.
"""

import dataclasses
import itertools
import json
import os
import socket
import sys
import threading
import time

from legacy_lstm import runs
from legacy_lstm.compat import tf, tf1

JOBS = ("ps", "worker")
PLAN_VARIABLE = "distributed/plan"  # on ps task 0: the chief's JSON plan, "" until it is published
VERDICT_VARIABLE = "distributed/verdict"  # on ps task 0: 2 x epoch + (1: stop before it), -1 until the first
WAIT_LOG_SECONDS = 30.0             # a worker waiting for the chief says so this often
WATCH_SECONDS = 1.0                 # how often a worker checks that the ps tasks are there
WATCH_MISSES = 3                    # this many failed checks in a row: the task is lost
# fields a worker's manifest must share with the chief's: what a restore checks, plus the seed and the cluster
AGREED_FIELDS = runs.CHECKED_FIELDS + ("seed", "cluster")


class ClusterError(RuntimeError):
    """A task of the cluster is gone (a ps task, or the chief for a waiting worker)."""


# ---------------------------------------------------------------------------------------------------------
# The cluster (what the flags say)
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Cluster:
    ps_hosts: tuple
    worker_hosts: tuple
    job_name: str
    task_index: int = 0
    sync_replicas: bool = True
    replicas_to_aggregate: int = None  # None: every worker

    def __post_init__(self):
        object.__setattr__(self, "ps_hosts", tuple(self.ps_hosts))
        object.__setattr__(self, "worker_hosts", tuple(self.worker_hosts))
        if not self.ps_hosts or not self.worker_hosts:
            raise ValueError("a cluster needs --ps_hosts and --worker_hosts (host:port lists), both non-empty")
        for host in self.ps_hosts + self.worker_hosts:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError(f"{host!r} in --ps_hosts/--worker_hosts is not host:port")
        if len(set(self.ps_hosts + self.worker_hosts)) != len(self.ps_hosts + self.worker_hosts):
            raise ValueError("--ps_hosts and --worker_hosts name one host:port twice")
        if self.job_name not in JOBS:
            raise ValueError(f"--job_name must be ps or worker, got {self.job_name!r}")
        hosts = self.ps_hosts if self.job_name == "ps" else self.worker_hosts
        if not 0 <= self.task_index < len(hosts):
            raise ValueError(f"--task_index={self.task_index} is not a {self.job_name} task: --{self.job_name}_hosts "
                             f"lists {len(hosts)} (0..{len(hosts) - 1})")
        if self.replicas_to_aggregate is not None and not 1 <= self.replicas_to_aggregate <= self.num_workers:
            raise ValueError(f"--replicas_to_aggregate={self.replicas_to_aggregate} must be 1..{self.num_workers} "
                             "(the number of workers)")

    @property
    def num_workers(self):
        return len(self.worker_hosts)

    @property
    def replicas(self):
        """Gradients averaged per sync update."""
        return self.replicas_to_aggregate or self.num_workers

    @property
    def is_chief(self):
        return self.job_name == "worker" and self.task_index == 0

    @property
    def is_ps(self):
        return self.job_name == "ps"

    @property
    def task(self):
        return f"/job:{self.job_name}/task:{self.task_index}"

    @property
    def address(self):
        return (self.ps_hosts if self.is_ps else self.worker_hosts)[self.task_index]

    def spec(self):
        return tf1.train.ClusterSpec({"ps": list(self.ps_hosts), "worker": list(self.worker_hosts)})

    def describe(self):
        """The manifest's ``cluster`` field: the shape and the update rule (the same for every task)."""
        return {"ps_hosts": list(self.ps_hosts), "worker_hosts": list(self.worker_hosts),
                "sync_replicas": self.sync_replicas, "replicas_to_aggregate": self.replicas}

    def steps_per_epoch(self, share):
        """Global steps in an epoch in which each worker trains ``share`` batches."""
        total = share * self.num_workers
        return total // self.replicas if self.sync_replicas else total

    def shard_tokens(self, ids):
        """Worker k's contiguous piece of a token stream (N pieces of equal length; the rest is left out)."""
        size = len(ids) // self.num_workers
        return ids[self.task_index * size:(self.task_index + 1) * size]


def from_flags(ps_hosts, worker_hosts, job_name, task_index, sync_replicas=True, replicas_to_aggregate=None):
    """A Cluster from the flags' values, or None when none of the cluster flags is given (single process)."""
    if not ps_hosts and not worker_hosts and job_name is None:
        return None
    if job_name is None:
        raise ValueError("--job_name (ps or worker) is needed with --ps_hosts/--worker_hosts")
    return Cluster(tuple(ps_hosts or ()), tuple(worker_hosts or ()), job_name, task_index, sync_replicas,
                   replicas_to_aggregate)


# ---------------------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------------------
_SERVERS = {}


def server(cluster):
    """This process's ``tf1.train.Server`` for ``cluster`` (started once)."""
    key = (cluster.spec().as_cluster_def().SerializeToString(), cluster.job_name, cluster.task_index)
    if key not in _SERVERS:
        _SERVERS[key] = tf1.train.Server(cluster.spec(), job_name=cluster.job_name, task_index=cluster.task_index,
                                         start=True)
    return _SERVERS[key]


def serve(cluster, log=print):
    """A ps task: start the server and serve until the process is stopped. Returns 0 (never, in practice)."""
    srv = server(cluster)
    log(f"ps task {cluster.task_index} serving at {cluster.address} ({srv.target})")
    sys.stdout.flush()
    srv.join()
    return 0


def _session_config(cluster, config=None):
    out = tf1.ConfigProto()
    if config is not None:
        out.CopyFrom(config)
    del out.device_filters[:]
    out.device_filters.extend(["/job:ps", cluster.task])
    return out


def _plan_variable():
    with tf1.device("/job:ps/task:0"):
        # in no collection: no initializer touches it but the chief's, and no Saver saves it
        return tf1.Variable("", trainable=False, name=PLAN_VARIABLE, collections=[])


def _verdict_variable():
    with tf1.device("/job:ps/task:0"):
        return tf1.Variable(tf.constant(-1, tf.int64), trainable=False, name=VERDICT_VARIABLE, collections=[])


def _read_plan(sess, var, initialized):
    """The published plan (a dict) or None while there is none."""
    if not sess.run(initialized):
        return None
    text = sess.run(var)
    return json.loads(text.decode()) if text else None


def _wait_for_plan(cluster, sess, var, initialized, log, watch=None):
    waited, last_log = time.time(), time.time()
    while True:
        plan = _read_plan(sess, var, initialized)
        if plan is not None:
            return plan
        if watch is not None:
            watch.check()
        if time.time() - last_log >= WAIT_LOG_SECONDS:
            last_log = time.time()
            log(f"{cluster.task}: waiting for the chief (/job:worker/task:0 at {cluster.worker_hosts[0]}) to "
                f"publish its plan ({time.time() - waited:.0f} s)")
        time.sleep(0.3)


def saved_manifest(run_dir, cluster, log=print):
    """The manifest an app's ``train`` resumes by: the run directory's (single process, the chief), or -- for the
    other workers, which may be on machines without the run directory -- the one the chief published, waited for
    (so that a worker takes the chief's seed and split seed when it was not given them)."""
    if cluster is None or cluster.is_chief:
        return runs.read_manifest(run_dir)
    srv = server(cluster)
    graph = tf.Graph()
    with graph.as_default():
        var = _plan_variable()
        initialized = tf1.is_variable_initialized(var)
        with tf1.Session(srv.target, graph=graph, config=_session_config(cluster)) as sess, _Watch(cluster) as watch:
            return _wait_for_plan(cluster, sess, var, initialized, log, watch)["manifest"]


# ---------------------------------------------------------------------------------------------------------
# Watching the ps tasks
# ---------------------------------------------------------------------------------------------------------
def reachable(host, timeout=2.0):
    name, _, port = host.rpartition(":")
    try:
        with socket.create_connection((name, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


class _Watch:
    """A thread that checks the ps tasks' ports every WATCH_SECONDS. A session run does not fail when a ps dies
    (it waits), so a lost ps ends the process from here: the message on stderr, exit status 1 (the run directory
    is safe: the kernel drops its lock, and checkpoints are written whole or not at all)."""

    def __init__(self, cluster, on_lost=None):
        self.cluster = cluster
        self.on_lost = on_lost  # () -> extra words for the message
        self._stop = threading.Event()
        self._thread = None
        self.lost = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="ps-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def check(self):
        if self.lost:
            raise ClusterError(self.lost)

    def _run(self):
        # A ps that has not answered yet is not lost: tasks start in any order, and until every ps answers the
        # session waits for it (as TF1's did). Only a ps that answered once and then stops answering is lost.
        misses, seen = {}, set()
        while not self._stop.wait(WATCH_SECONDS):
            for i, host in enumerate(self.cluster.ps_hosts):
                if reachable(host):
                    seen.add(i)
                    misses[i] = 0
                elif i in seen:
                    misses[i] = misses.get(i, 0) + 1
                if misses.get(i, 0) >= WATCH_MISSES and not self._stop.is_set():
                    self.stop_process(i, f"no answer for {WATCH_MISSES * WATCH_SECONDS:.0f} s")

    def stop_process(self, i, why):
        """The message on stderr, then exit status 1 at once (closing a session whose ps is gone would wait)."""
        extra = self.on_lost() if self.on_lost else ""
        self.lost = (f"{self.cluster.task}: lost the parameter server /job:ps/task:{i} at "
                     f"{self.cluster.ps_hosts[i]} ({why}); training stopped. The ps held the variables: start the "
                     f"whole cluster again to resume from the chief's last checkpoint{extra}.")
        sys.stdout.flush()
        print(f"error: {self.lost}", file=sys.stderr, flush=True)
        os._exit(1)

    def after_error(self):
        """A session run failed: when a ps is gone, that is why (stop here, with the message)."""
        for i, host in enumerate(self.cluster.ps_hosts):
            if not reachable(host):
                self.stop_process(i, "a session run failed and its port does not answer")


# ---------------------------------------------------------------------------------------------------------
# The optimizer the apps wrap
# ---------------------------------------------------------------------------------------------------------
_ACTIVE = threading.local()


def optimizer(opt):
    """The app's optimizer ``opt`` as the cluster being built needs it: unchanged in a single process;
    wrapped in ``SyncReplicasOptimizer`` (sync) and given the global step (both modes) on a worker."""
    replica = getattr(_ACTIVE, "replica", None)
    if replica is None:
        return opt
    return replica.wrap(opt)


def _unique_rows(grad):
    """A sparse gradient with each row once and in ascending order (the slices of one index summed).
    SyncReplicasOptimizer hands each worker's sparse gradient to a SparseConditionalAccumulator, which merges it
    with the others' as if both were sorted and without repeats. An embedding lookup's gradient is neither (a row
    per occurrence of a word, in the batch's order): given it as it is, the accumulator matches only some rows
    across workers and passes the others on as separate slices, which the optimizer then sums -- the aggregated
    gradient is wrong (a row can get twice its average)."""
    order = tf.argsort(grad.indices)
    indices, values = tf.gather(grad.indices, order), tf.gather(grad.values, order)
    rows, where = tf.unique(indices)  # first occurrences of sorted indices: ascending
    return tf.IndexedSlices(tf.math.unsorted_segment_sum(values, where, tf.shape(rows)[0]), rows, grad.dense_shape)


class _Replicated(tf1.train.Optimizer):
    """Delegates to ``inner`` (the app's optimizer, or a SyncReplicasOptimizer around it) and passes the global
    step to ``apply_gradients`` when the app does not: on a cluster the global step counts the updates."""

    def __init__(self, inner, replica):
        super().__init__(use_locking=False, name=inner.get_name())
        self._inner, self._replica = inner, replica

    def compute_gradients(self, *args, **kwargs):
        return self._inner.compute_gradients(*args, **kwargs)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        # Here, not in compute_gradients: the PTB graphs take their gradients with tf.gradients (and clip them)
        # and come in through apply_gradients alone.
        if self._replica.sync_opt is not None:
            grads_and_vars = [(_unique_rows(g) if isinstance(g, tf.IndexedSlices) else g, v)
                              for g, v in grads_and_vars]
        global_step = self._replica.use_global_step(global_step)
        return self._inner.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    def get_slot(self, *args, **kwargs):
        return self._inner.get_slot(*args, **kwargs)

    def get_slot_names(self, *args, **kwargs):
        return self._inner.get_slot_names(*args, **kwargs)

    def variables(self):
        return self._inner.variables()


# ---------------------------------------------------------------------------------------------------------
# One worker task's part in the driver
# ---------------------------------------------------------------------------------------------------------
class Replica:
    """A worker task's part in ``training.train``: build under the device setter, start the session, the chief's
    or a worker's start of a sitting, each epoch's share, and the end."""

    def __init__(self, cluster, log=print):
        if cluster.is_ps:
            raise ValueError("a ps task serves (distributed.serve); it does not train")
        self.cluster = cluster
        self.log = log
        self.server = server(cluster)
        self.sync_opt = None
        self.global_step = None
        self._created = []  # variables this module added (not saved)
        self._wrapped = False
        self._plan = None
        self._coord = None
        self._epoch_start = {}
        self._offset = 0
        self._watch = None
        self.run_dir = None

    # -- building ----------------------------------------------------------------------------------------
    @property
    def target(self):
        return self.server.target

    def seed(self, sitting_seed):
        """A worker's graph seed: the chief's is the single-process one; the others differ (their own dropout)."""
        return None if sitting_seed is None else sitting_seed + 7919 * self.cluster.task_index

    def build(self, build_model):
        setter = tf1.train.replica_device_setter(cluster=self.cluster.spec(), worker_device=self.cluster.task)
        _ACTIVE.replica = self
        try:
            with tf1.device(setter):
                model = build_model()
        finally:
            _ACTIVE.replica = None
        if self.global_step is None:
            raise ValueError("this app's graph does not pass its optimizer through legacy_lstm.distributed."
                             "optimizer, so it cannot train on a cluster")
        with tf1.device(self.cluster.task):
            self._plan_var = _plan_variable()
            self._plan_initialized = tf1.is_variable_initialized(self._plan_var)
            self._plan_initialized.mark_used()  # the chief never reads it
            self._plan_text = tf1.placeholder(tf.string, [], name="distributed_plan_text")
            self._publish = tf1.assign(self._plan_var, self._plan_text)
            self._plan_init = self._plan_var.initializer
            self._verdict_var = _verdict_variable()
            self._verdict_value = tf1.placeholder(tf.int64, [], name="distributed_verdict")
            self._set_verdict = tf1.assign(self._verdict_var, self._verdict_value)
            self._verdict_init = self._verdict_var.initializer
            self._step_value = tf1.placeholder(self.global_step.dtype.base_dtype, [], name="distributed_step")
            self._set_step = tf1.assign(self.global_step, self._step_value)
            self._local_init = tf1.local_variables_initializer()
            self._global_init = tf1.global_variables_initializer()
            if self.sync_opt is not None:
                self._chief_init = self.sync_opt.chief_init_op
                self._local_step_init = self.sync_opt.local_step_init_op
                self._queue_runner = self.sync_opt.get_chief_queue_runner()
                self.sync_opt.ready_for_local_init_op.mark_used()
        return model

    def wrap(self, opt):
        if self._wrapped:
            raise ValueError("the graph has two optimizers to replicate; a cluster supports one")
        self._wrapped = True
        inner = opt
        if self.cluster.sync_replicas:
            self.sync_opt = inner = tf1.train.SyncReplicasOptimizer(
                opt, replicas_to_aggregate=self.cluster.replicas, total_num_replicas=self.cluster.num_workers)
        return _Replicated(inner, self)

    def use_global_step(self, global_step):
        """The app's global step, or one made here (not saved: the app's checkpoints have none)."""
        if global_step is None:
            global_step = tf1.train.get_global_step()
        if global_step is None:
            global_step = tf1.train.get_or_create_global_step()
            self._created.append(global_step)
        self.global_step = global_step
        return global_step

    def var_list(self, var_list):
        """What the run's Saver covers: the app's variables, without the ones the replication added."""
        variables = var_list if var_list is not None else tf1.global_variables()
        created = {id(v) for v in self._created}
        return [v for v in variables if id(v) not in created]

    def session_config(self, config):
        return _session_config(self.cluster, config)

    def make_run(self, run_dir, manifest, final_name, var_list):
        """The chief's run directory (a ``runs.Run``), or a worker's stand-in that writes nothing."""
        self.run_dir = run_dir
        if self.cluster.is_chief:
            return runs.Run(run_dir, manifest, final_name=final_name, var_list=var_list)
        return _WorkerRun(manifest)

    # -- the start of a sitting ---------------------------------------------------------------------------
    def start(self, sess, run, vocab, loop, sitting):
        """Initialise (chief: variables on the ps, or its checkpoint restored into them) or wait for the chief;
        returns the epochs finished before this sitting."""
        self._sess = sess
        self._manifest = dict(run.manifest)
        self._watch = _Watch(self.cluster, self._last_checkpoint).__enter__()
        if self.cluster.is_chief:
            sess.run([self._global_init, self._local_init, self._plan_init, self._verdict_init])
            done = run.resume(sess)
            if not done:
                run.write_manifest(vocab=vocab)
                loop.fresh(sitting)
            self._done = done
            return done
        plan = _wait_for_plan(self.cluster, sess, self._plan_var, self._plan_initialized, self.log, self._watch)
        problems = runs.diff_manifests(plan["manifest"], self._manifest, AGREED_FIELDS)
        if problems:
            raise runs.ManifestMismatchError(
                f"{self.cluster.task} was started with other settings than the chief's run (its manifest, "
                f"published on ps task 0); refusing to train. Differences (chief's, this task's):\n  " +
                "\n  ".join(problems) + "\nStart every task with the same app flags.")
        sess.run(self._local_init)
        if self.sync_opt is not None:
            sess.run(self._local_step_init)
        self._plan = plan
        step = int(sess.run(self.global_step))
        per_epoch = plan["steps_per_epoch"]
        done = min(step // per_epoch, sitting.total_epochs)
        self._offset = step - done * per_epoch
        if self._offset:
            self.log(f"{self.cluster.task}: joining at global step {step}, epoch {done + 1} after "
                     f"{self._offset} of its {per_epoch} steps")
        run.curve = [{"epoch": e} for e in range(1, done + 1)]
        return done

    def _last_checkpoint(self):
        if not self.cluster.is_chief or self.run_dir is None:
            return ""
        found = runs.epoch_checkpoints(self.run_dir)
        return f" (epoch {max(found)} in {self.run_dir})" if found else " (none yet: it starts again)"

    def _publish_plan(self, share, epoch):
        """The chief, at its first epoch: set the global step to the epoch's start, start the sync queue runner
        and publish the plan (the other workers start when they read it)."""
        per_epoch = self.cluster.steps_per_epoch(share)
        self._sess.run(self._set_step, {self._step_value: (epoch - 1) * per_epoch})
        if self.sync_opt is not None:
            self._sess.run(self._local_step_init)
            self._sess.run(self._chief_init)
            self._coord = tf1.train.Coordinator()
            self._queue_runner.create_threads(self._sess, coord=self._coord, daemon=True, start=True)
        self._plan = {"manifest": self._manifest, "steps_per_epoch": per_epoch, "share": share}
        self._sess.run(self._publish, {self._plan_text: json.dumps(self._plan, default=str)})

    # -- the epochs -----------------------------------------------------------------------------------------
    def share(self, epoch, n, items, split=True):
        """(count, iterable) of this worker's part of epoch ``epoch`` of ``n`` batches ``items``: round-robin
        (``split``) or all of them (the data was split before: PTB), stopped when the global step reaches the
        epoch's end and, when this worker's part runs out before, continued with its own batches again."""
        n_workers = self.cluster.num_workers
        count = n // n_workers if split else n
        if count < 1:
            raise ValueError(f"an epoch of {n} batches cannot be shared by {n_workers} workers: each needs at "
                             "least one")
        if self._plan is None:
            self._publish_plan(count, epoch)
        if self._plan["share"] != count:
            raise ValueError(f"{self.cluster.task}: this worker's share of an epoch is {count} batches, the "
                             f"chief's plan says {self._plan['share']}: the workers' data differs")
        per_epoch = self._plan["steps_per_epoch"]
        end = epoch * per_epoch
        mine = list(itertools.islice(items, self.cluster.task_index, count * n_workers, n_workers)) if split \
            else items
        offset, self._offset = self._offset, 0
        skip = offset // (n_workers if not self.cluster.sync_replicas else 1) if split else 0
        planned = max(count - (offset if self.cluster.sync_replicas else offset // n_workers), 1)
        return planned, self._take(mine, skip, end)

    def agree_to_stop(self, epoch, decide):
        """Whether the run stops before ``epoch``: the chief decides (``decide()``, the app's early stopping on
        its own curve) and publishes it; every other worker waits for that verdict and follows it. A worker that
        finds a later epoch's verdict (it rejoined late) knows the chief went on past this one."""
        if self.cluster.is_chief:
            stop = bool(decide())
            self._sess.run(self._set_verdict, {self._verdict_value: 2 * epoch + int(stop)})
            return stop
        waited = last_log = time.time()
        while True:
            verdict = int(self._sess.run(self._verdict_var))
            if verdict // 2 >= epoch:
                return verdict == 2 * epoch + 1
            self._watch.check()
            if time.time() - last_log >= WAIT_LOG_SECONDS:
                last_log = time.time()
                self.log(f"{self.cluster.task}: waiting for the chief's verdict on epoch {epoch} (early stopping) "
                         f"({time.time() - waited:.0f} s)")
            time.sleep(0.2)

    def _take(self, mine, skip, end):
        sess, step = self._sess, self.global_step
        pool = mine if isinstance(mine, list) else None
        first = pool[skip:] if pool is not None else mine
        source = itertools.chain(first, itertools.cycle(pool)) if pool else itertools.chain(
            first, itertools.count())
        for item in source:
            if sess.run(step) >= end:
                return
            yield item

    def finish(self):
        """The end of the sitting: the chief stops its queue runner; the watch stops. After an error, a lost ps
        ends the process with the message (before the session's close, which would wait for it)."""
        if sys.exc_info()[0] is not None and self._watch is not None:
            self._watch.after_error()
        if self._coord is not None:
            self._coord.request_stop()
        if self._watch is not None:
            self._watch.__exit__(None, None, None)


class _WorkerRun:
    """A non-chief worker's stand-in for ``runs.Run``: the same calls, nothing written."""

    def __init__(self, manifest):
        self.manifest = json.loads(json.dumps(manifest, default=str))
        self.curve = []
        self.discarded = []

    def finish_epoch(self, sess, row, summaries=None):
        self.curve.append(row)

    def has_checkpoint(self, prefix):
        return True

    def save_final(self, sess):
        return None

    def close(self):
        pass
