"""matplotlib for the figures of results (tools/plot_curve.py's curves, evaluate_switch's matrices): a development
tool, not a dependency of the package, imported only when a figure is asked for."""

from __future__ import annotations

from skillmimic.errors import UserError


def pyplot(needed_by: str):
    """matplotlib's pyplot, drawing to files only; a one-line error naming `needed_by` (the flag or the tool that
    asked for a figure) where matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise UserError(f"{needed_by} needs matplotlib, which the package does not install: pip install "
                        "matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
