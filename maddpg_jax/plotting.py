"""Learning-curve plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(series: dict[str, tuple[list, list]], path: Path | str, title: str = "",
                solved: float | None = 475.0) -> None:
    """One line per name: ``{name: (env_steps, mean_return)}`` -> PNG at ``path`` (atomic)."""
    import os
    import tempfile

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, lw=1.4)
    if solved is not None:
        ax.axhline(solved, color="grey", ls="--", lw=0.8, label=f"solved ({solved:g})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean return (last 100 episodes)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if 0 < len(series) <= 12:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
