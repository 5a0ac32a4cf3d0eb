"""Distributed search on a dask cluster through joblib's ``dask`` backend."""

import os
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402
import dask  # noqa: E402
import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetCV  # noqa: E402
from skprune.model_selection import register_dask_backend  # noqa: E402

# the estimator defined below must reach the workers by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _fitting_process(estimator, X, y):
    return os.getpid()


def _search():
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), max_epochs=4, lr=0.01, random_state=0)
    return GridSearchCV(
        net,
        {"pruner__sparsity": [0.3, 0.8], "alpha": [1e-4, 1e-2]},
        cv=StratifiedKFold(3),
        scoring={"accuracy": "accuracy", "pid": _fitting_process},
        refit="accuracy",
    )


def test_grid_search_on_dask_equals_local_run(client, clf_data):
    X, y = clf_data
    local = _search().fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = _search().fit(X, y)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_accuracy"], local.cv_results_["mean_test_accuracy"], atol=1e-6
    )
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(remote.predict_proba(X), local.predict_proba(X), atol=1e-5)
    # the work really ran in the cluster's worker processes
    pids = {int(p) for split in range(3) for p in remote.cv_results_[f"split{split}_test_pid"]}
    assert os.getpid() not in pids


def test_prunednetcv_on_dask_equals_local_run(client, clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), max_epochs=4, lr=0.01, random_state=0)
    local = PrunedNetCV(net, sparsities=[0.0, 0.5, 0.8], cv=3, n_jobs=2).fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = PrunedNetCV(net, sparsities=[0.0, 0.5, 0.8], cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(remote.scores_path_, local.scores_path_, atol=1e-6)
    assert remote.best_sparsity_ == local.best_sparsity_


_TEST_PROCESS = os.getpid()


class _DiesOnWorker(PrunedNetClassifier):
    """Kills the dask worker process that fits it (a lost worker)."""

    def fit(self, X, y=None, **fit_params):
        if os.getpid() == _TEST_PROCESS:  # not on a worker: behave normally
            return super().fit(X, y, **fit_params)
        os._exit(1)


def test_lost_worker_fails_with_dask_error_instead_of_hanging(clf_data):
    """joblib's own dask backend waits forever here; the registered one raises."""
    X, y = clf_data
    register_dask_backend()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            # two workers: with one worker thread joblib would run in-process
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
        )
        client = distributed.Client(cluster)
        client.wait_for_workers(2)
        try:
            search = GridSearchCV(_DiesOnWorker(max_epochs=1), {"alpha": [1e-4, 1e-3]}, cv=2)
            with pytest.raises(distributed.KilledWorker):
                with joblib.parallel_backend("dask"):
                    search.fit(X, y)
        finally:
            client.close()
            cluster.close()
