"""Learning-curve plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from maddpg_jax.rundir import publish

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(
    series: dict[str, tuple[list, list]],
    path: Path | str,
    title: str = "",
    solved: float | None = 475.0,
    groups: dict[str, str] | None = None,
    schedules: dict[str, dict[str, tuple[list, list]]] | None = None,
    log_scale: set[str] = frozenset(),
) -> None:
    """One line per name: ``{name: (env_steps, mean_return)}`` -> PNG at ``path`` (atomic).

    ``groups`` (name -> group label) draws each group in one colour with one legend entry.
    ``schedules`` (population-based training): ``{hyperparameter: {label: (env_steps,
    values)}}``, drawn as steps in one panel per hyperparameter under the returns, log
    scale for the names in ``log_scale``.
    """
    panels = 1 + len(schedules or {})
    fig, axes = plt.subplots(panels, 1, figsize=(7, 4.2 + 2.2 * (panels - 1)), dpi=110, sharex=True, squeeze=False)
    ax = axes[0, 0]
    for i, (name, lines) in enumerate((schedules or {}).items()):
        sub = axes[i + 1, 0]
        for j, (label, (x, y)) in enumerate(lines.items()):
            sub.step(x, y, where="post", lw=1.1, color=f"C{j % 10}", label=label)
        sub.set_ylabel(name)
        if name in log_scale:
            sub.set_yscale("log")
        sub.grid(alpha=0.3)
    colours: dict[str, str] = {}
    for name, (x, y) in series.items():
        if groups:
            g = groups[name]
            first = g not in colours
            colours.setdefault(g, f"C{len(colours)}")
            ax.plot(x, y, color=colours[g], label=g if first else None, lw=1.2, alpha=0.85)
        else:
            ax.plot(x, y, label=name, lw=1.4)
    if solved is not None:
        ax.axhline(solved, color="grey", ls="--", lw=0.8, label=f"solved ({solved:g})")
    axes[-1, 0].set_xlabel("env steps")
    ax.set_ylabel("mean return (last 100 episodes)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if groups or 0 < len(series) <= 12:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: Path | str) -> None:
    """Write ``fig`` to the PNG ``path`` atomically (a temporary file renamed into place, so a
    reader never sees half a plot) and close it."""
    import os
    import tempfile

    from maddpg_jax.rundir import FileFault

    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
        os.close(fd)
        fig.savefig(tmp)
        publish(tmp, path)
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise FileFault(path, e) from e
    finally:
        plt.close(fig)


def series_by_member(rows: list[dict], labels: dict[int, str] | None = None) -> dict[str, tuple[list, list]]:
    """``{label: (env_steps, mean_return)}`` from metrics rows, one series per member (rows
    without a ``member`` field are member 0; rows without a return are skipped). ``labels``
    names the members (default ``"mean return"`` for one, ``"member i"`` for several)."""
    by_member: dict[int, tuple[list, list]] = {}
    for r in rows:
        if r.get("mean_return") is None:
            continue
        xs, ys = by_member.setdefault(r.get("member", 0), ([], []))
        xs.append(r["env_steps"])
        ys.append(r["mean_return"])
    if labels is None:
        labels = {m: ("mean return" if len(by_member) == 1 else f"member {m}") for m in by_member}
    return {labels[m]: xy for m, xy in sorted(by_member.items())}
