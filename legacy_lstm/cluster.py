"""A local cluster for one app command: ps and worker tasks on 127.0.0.1, one log per task.

    python -m legacy_lstm.cluster [--ps=1] [--workers=2] [--log_dir=DIR] [--nosync] -- <app command>

e.g. ``python -m legacy_lstm.cluster -- python -m legacy_lstm.stocktwits --preset=test --run_dir=/tmp/st``. It
picks free loopback ports, starts every task as ``<app command> --ps_hosts=... --worker_hosts=...
--job_name=ps|worker --task_index=i`` (``--nosync`` adds ``--nosync_replicas``) with its output in
``<log_dir>/<job>-<i>.log`` (default log dir: ``cluster-logs`` in the run directory given by ``--run_dir``, else a
new temporary folder), waits for the workers, then stops the ps tasks. When a worker fails, every other task is
stopped and the launcher exits with that worker's status (after showing the end of its log); on Ctrl-C or SIGTERM
every process it started is stopped. Processes are stopped by their pid (SIGTERM, then SIGKILL after a grace
period), never by name. The exit status is 0 when every worker succeeded.

Across real machines, run the same app command on each machine with the cluster flags by hand (see README); the
Python API (``Local``) is what the tests use to kill and restart single tasks.
"""

import argparse
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

STOP_GRACE_SECONDS = 5.0


def free_ports(n, host="127.0.0.1"):
    """``n`` distinct ports the kernel calls free now on ``host`` (held open together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _flag_value(command, name):
    for i, arg in enumerate(command):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and i + 1 < len(command):
            return command[i + 1]
    return None


class Task:
    def __init__(self, job, index, command, log_path, env):
        self.job, self.index, self.command, self.log_path, self.env = job, index, command, log_path, env
        self.proc = None
        self.starts = 0

    @property
    def name(self):
        return f"{self.job}-{self.index}"

    def start(self):
        mode = "a" if self.starts else "w"
        with open(self.log_path, mode) as log:
            if self.starts:
                log.write(f"\n--- restarted ({time.strftime('%H:%M:%S')}) ---\n")
                log.flush()
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=subprocess.DEVNULL)
        self.starts += 1
        return self.proc

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            os.kill(self.proc.pid, sig)
            self.proc.wait()

    def stop(self, grace=STOP_GRACE_SECONDS):
        """SIGTERM, then SIGKILL after ``grace`` seconds; by pid."""
        if not self.running():
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines=15):
        try:
            return "\n".join(pathlib.Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Local:
    """A local cluster of ``num_ps`` ps and ``num_workers`` worker tasks running ``command`` (a list); a context
    manager that stops every task it started on exit."""

    def __init__(self, command, num_ps=1, num_workers=2, log_dir=None, sync=True, extra=(), env=None):
        if num_ps < 1 or num_workers < 1:
            raise ValueError("a cluster needs at least one ps and one worker task")
        self.command = list(command)
        if not self.command:
            raise ValueError("no app command: put it after --, e.g. -- python -m legacy_lstm.stocktwits "
                             "--preset=test")
        if log_dir is None:
            run_dir = _flag_value(self.command, "run_dir")
            log_dir = pathlib.Path(run_dir) / "cluster-logs" if run_dir else tempfile.mkdtemp(prefix="cluster-logs-")
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(num_ps + num_workers)
        self.ps_hosts = [f"127.0.0.1:{p}" for p in ports[:num_ps]]
        self.worker_hosts = [f"127.0.0.1:{p}" for p in ports[num_ps:]]
        flags = [f"--ps_hosts={','.join(self.ps_hosts)}", f"--worker_hosts={','.join(self.worker_hosts)}",
                 *([] if sync else ["--nosync_replicas"]), *extra]
        env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        self.ps = [Task("ps", i, self.command + flags + ["--job_name=ps", f"--task_index={i}"],
                        self.log_dir / f"ps-{i}.log", env) for i in range(num_ps)]
        self.workers = [Task("worker", i, self.command + flags + ["--job_name=worker", f"--task_index={i}"],
                             self.log_dir / f"worker-{i}.log", env) for i in range(num_workers)]

    @property
    def tasks(self):
        return self.ps + self.workers

    def start(self, log=print):
        for task in self.tasks:
            task.start()
            log(f"{task.name}: pid {task.pid}, {(self.ps_hosts + self.worker_hosts)[self.tasks.index(task)]}, "
                f"log {task.log_path}")
        return self

    def wait(self, timeout=None, poll=0.2):
        """Wait for every worker to end; the first that fails stops the others. Returns (exit status, failed task
        or None). ``timeout``: seconds, then TimeoutError (the tasks are left to ``stop``)."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            for task in self.workers:  # a lost ps is seen by the workers: they stop with a message
                code = task.proc.poll()
                if code not in (None, 0):
                    return (code if code > 0 else 1), task
            if all(task.proc.poll() == 0 for task in self.workers):
                return 0, None
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"the cluster's workers did not finish in {timeout} s")
            time.sleep(poll)

    def stop(self):
        """Stop every task this cluster started (workers first), by pid."""
        for task in self.workers + self.ps:
            task.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m legacy_lstm.cluster", description=__doc__.split("\n\n")[0],
                                     usage="%(prog)s [--ps=1] [--workers=2] [--log_dir=DIR] [--nosync] -- "
                                           "<app command>")
    parser.add_argument("--ps", type=int, default=1, help="ps tasks (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="worker tasks (default 2; worker 0 is the chief)")
    parser.add_argument("--log_dir", default=None, help="one log per task (default: <run_dir>/cluster-logs)")
    parser.add_argument("--nosync", action="store_true", help="asynchronous updates (--nosync_replicas)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the app command (best after --)")
    if "--" in argv:
        split = argv.index("--")
        args, command = parser.parse_args(argv[:split]), argv[split + 1:]
        if args.command:
            parser.error(f"unexpected before --: {' '.join(args.command)}")
    else:  # the launcher's options, then the command from its first word on
        args = parser.parse_args(argv)
        command = args.command
    if not command:
        parser.error("no app command to run, e.g. -- python -m legacy_lstm.stocktwits --preset=test")
    try:
        cluster = Local(command, args.ps, args.workers, args.log_dir, sync=not args.nosync)
    except ValueError as err:
        parser.error(str(err))

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    with cluster:
        try:
            cluster.start()
            code, failed = cluster.wait()
        except OSError as err:  # e.g. the command's program does not exist
            print(f"cannot start {' '.join(command)!r}: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: stopping every task", file=sys.stderr)
            return 130
        if failed is not None:
            print(f"{failed.name} ended with status {code}; stopping the other tasks. The end of its log "
                  f"({failed.log_path}):\n{failed.tail()}", file=sys.stderr)
            return code
        print(f"every worker finished; logs in {cluster.log_dir}")
        print(cluster.workers[0].tail(3))
        return 0


if __name__ == "__main__":
    sys.exit(main())
