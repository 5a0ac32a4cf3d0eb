"""matplotlib, imported only when a plot is drawn."""

from __future__ import annotations

__all__ = ["axes_for", "pyplot"]


def pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skprune's plots need matplotlib, which is not installed: pip install 'skprune[plot]' "
            "(or pip install matplotlib)."
        ) from exc
    return plt


def axes_for(ax):
    if ax is None:
        _, ax = pyplot().subplots()
    return ax
