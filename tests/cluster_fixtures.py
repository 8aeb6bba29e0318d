"""A stand-in for the driver's Sitting on a cluster worker, for app tests that check an epoch's share in-process."""

import contextlib


class RoundRobinWorker:
    """Worker ``index`` of ``workers``: ``share`` deals the epoch's items round-robin, as legacy_lstm/distributed.py
    does (without the global-step bookkeeping); ``sess``/``model`` are set by the test when the app's hook needs
    them."""

    replica = None

    def __init__(self, index=1, workers=2):
        self.index, self.workers = index, workers
        self.sess = self.model = None

    def share(self, n, items, split=True):
        mine = list(items)[self.index::self.workers]
        return len(mine), mine

    def batches(self, n):
        return contextlib.nullcontext()

    def tick(self, n=1):
        pass

    def log(self, *args, **kwargs):
        pass
