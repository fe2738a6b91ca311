"""Frames (RGB arrays) of single env states, and animated GIFs of episodes.

A registry entry's ``renderer`` is a frame function ``(state, env, params) -> uint8 [H, W, 3]``
for one env's state (no batch axis). ``write_gif`` turns a list of frames into a GIF
atomically (temporary file, then rename), with the user's usual file permissions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _figure_rgb(fig) -> np.ndarray:
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


def _spring(x0, y0, x1, y1, coils=8, width=0.06):
    t = np.linspace(0, 1, 2 * coils + 3)
    zig = np.zeros_like(t)
    zig[2:-2:2], zig[3:-2:2] = width, -width
    dx, dy = x1 - x0, y1 - y0
    length = np.hypot(dx, dy) or 1.0
    nx, ny = -dy / length, dx / length
    return x0 + t * dx + zig * nx, y0 + t * dy + zig * ny


def cartpole_frame(state, env, params) -> np.ndarray:
    """MultiCartPole: one track per cart, the poles, the springs between neighbours."""
    carts = np.asarray(state.carts)  # [A, 4]
    a = carts.shape[0]
    pole, limit = 2 * float(params.length), float(params.x_threshold)
    xlim = limit + 0.5
    fig, ax = plt.subplots(figsize=(6, 1.2 + 1.0 * a), dpi=70)
    ax.set_xlim(-xlim, xlim)
    ax.set_ylim(-0.5, a * 2.0 + pole)
    ax.set_aspect("equal")
    ax.axis("off")
    ys = np.arange(a) * 2.0
    for j, y in enumerate(ys):
        ax.plot([-limit] * 2, [y - 0.2, y + 0.2], color="red", lw=1)
        ax.plot([limit] * 2, [y - 0.2, y + 0.2], color="red", lw=1)
        ax.axhline(y - 0.12, color="0.6", lw=0.8)
        x, th = carts[j, 0], carts[j, 2]
        ax.add_patch(plt.Rectangle((x - 0.25, y - 0.12), 0.5, 0.24, color="tab:blue", zorder=2))
        ax.plot(
            [x, x + pole * np.sin(th)],
            [y + 0.12, y + 0.12 + pole * np.cos(th)],
            color="tab:orange",
            lw=4,
            solid_capstyle="round",
            zorder=3,
        )
        if j + 1 < a:
            ax.plot(*_spring(carts[j, 0], y, carts[j + 1, 0], ys[j + 1]), color="0.55", lw=1, zorder=1)
    ax.text(-xlim + 0.1, a * 2.0 + pole - 0.3, f"step {int(state.time)}", fontsize=9)
    return _figure_rgb(fig)


def mpe_frame(state, env, params) -> np.ndarray:
    """A JaxMARL MPE scenario: agents and landmarks as discs in the scenario's colours,
    each agent's communication (where the scenario has it) written beside it."""
    scenario = env.env
    pos = np.asarray(state.p_pos)
    rad = np.asarray(scenario.rad)
    colours = np.asarray(scenario.colour, float) / 255.0
    fig, ax = plt.subplots(figsize=(4, 4), dpi=70)
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-1.6, 1.6)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for i in range(pos.shape[0]):
        ax.add_patch(plt.Circle(pos[i], rad[i], color=colours[i], zorder=3 if i < scenario.num_agents else 2))
    comm = np.asarray(getattr(state, "c", np.zeros((0, 0))))
    if comm.size and comm.shape[-1] > 0:
        for i in range(min(comm.shape[0], scenario.num_agents)):
            if np.abs(comm[i]).max() > 0:
                ax.text(*(pos[i] + rad[i]), f"c={int(np.argmax(comm[i]))}", fontsize=7)
    ax.set_title(f"{env.name}  step {int(state.step)}", fontsize=8)
    return _figure_rgb(fig)


def write_gif(frames: list[np.ndarray], path, fps: int = 25) -> None:
    """Frames (``uint8 [H, W, 3]``) -> an animated GIF at ``path``, atomically."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".gif")
    os.close(fd)
    try:
        images = [Image.fromarray(f) for f in frames]
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> the user's usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
