"""Command line: ``skprune demo`` (also ``python -m skprune demo``).

``--help`` and ``--version`` import nothing heavy: the demo (and with it torch,
scikit-learn and skorch) is imported only when it runs.
"""

from __future__ import annotations

import argparse
import sys

from ._version import __version__

__all__ = ["main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0: use 1 for one job, N for N jobs, -1 for all cores")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skprune`` console script."""
    parser = argparse.ArgumentParser(
        prog="skprune", description="Neural-network pruning as a scikit-learn hyperparameter."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="PrunedNetCV sparsity path on scikit-learn's digits, chosen by the one-standard-error rule",
    )
    demo.add_argument("--cv", type=_positive_int, default=5, help="number of folds (default 5)")
    demo.add_argument(
        "--max-epochs", type=_positive_int, default=30, help="epochs of each fold's dense fit (default 30)"
    )
    demo.add_argument("--n-jobs", type=_n_jobs, default=-1, help="parallel fits (default -1: all cores)")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.cv < 2:
            parser.error("--cv must be >= 2")
        from ._demo import run_demo

        run_demo(cv=args.cv, max_epochs=args.max_epochs, n_jobs=args.n_jobs, random_state=args.random_state)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
