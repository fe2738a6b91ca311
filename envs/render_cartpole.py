"""Draw a MultiCartPole episode (carts, poles, springs) as an animated GIF with matplotlib."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter


def _spring(x0, y0, x1, y1, coils=8, width=0.06):
    t = np.linspace(0, 1, 2 * coils + 3)
    zig = np.zeros_like(t)
    zig[2:-2:2], zig[3:-2:2] = width, -width
    dx, dy = x1 - x0, y1 - y0
    length = np.hypot(dx, dy) or 1.0
    nx, ny = -dy / length, dx / length
    return x0 + t * dx + zig * nx, y0 + t * dy + zig * ny


def episode_gif(states, env, params, path, fps: int = 25, every: int = 2) -> None:
    """Write one episode as an animated GIF at ``path`` (atomically: a temporary file, then
    a rename). ``states``: the episode's :class:`~envs.multi_cartpole.EnvState` s, first to
    last."""
    frames = [np.asarray(s.carts) for s in states][::every] or [np.zeros((env.num_agents, 4))]
    a = frames[0].shape[0]
    pole = 2 * float(params.length)
    xlim = float(params.x_threshold) + 0.5
    fig, ax = plt.subplots(figsize=(6, 1.2 + 1.0 * a), dpi=70)
    ax.set_xlim(-xlim, xlim)
    ax.set_ylim(-0.5, a * 2.0 + pole)
    ax.set_aspect("equal")
    ax.axis("off")
    ys = np.arange(a) * 2.0
    for y in ys:
        ax.plot([-float(params.x_threshold)] * 2, [y - 0.2, y + 0.2], color="red", lw=1)
        ax.plot([float(params.x_threshold)] * 2, [y - 0.2, y + 0.2], color="red", lw=1)
        ax.axhline(y - 0.12, color="0.6", lw=0.8)
    carts = [ax.add_patch(plt.Rectangle((0, 0), 0.5, 0.24, color="tab:blue", zorder=2)) for _ in range(a)]
    poles = [ax.plot([], [], color="tab:orange", lw=4, solid_capstyle="round", zorder=3)[0] for _ in range(a)]
    springs = [ax.plot([], [], color="0.55", lw=1, zorder=1)[0] for _ in range(a - 1)]
    label = ax.text(-xlim + 0.1, a * 2.0 + pole - 0.3, "", fontsize=9)

    def draw(i):
        s = frames[i]
        for j in range(a):
            x, th = s[j, 0], s[j, 2]
            carts[j].set_xy((x - 0.25, ys[j] - 0.12))
            poles[j].set_data([x, x + pole * np.sin(th)], [ys[j] + 0.12, ys[j] + 0.12 + pole * np.cos(th)])
        for j in range(a - 1):
            springs[j].set_data(*_spring(s[j, 0], ys[j], s[j + 1, 0], ys[j + 1]))
        label.set_text(f"step {i * every}")
        return carts + poles + springs + [label]

    anim = FuncAnimation(fig, draw, frames=len(frames), blit=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".gif")
    os.close(fd)
    try:
        anim.save(tmp, writer=PillowWriter(fps=fps))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> the user's usual permissions
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
