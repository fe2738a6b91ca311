"""Reporting, the host side's part that shows a run: a progress bar between chunks,
TensorBoard and W&B, the learning curve, and the summary table and line at the end."""

from __future__ import annotations

import numpy as np

from maddpg_jax.config import HPARAM_NAMES, Config
from maddpg_jax.errors import UsageError
from maddpg_jax.loop import Chunk
from maddpg_jax.training import LOSS_NAMES

# Seconds of wall time between rewrites of the learning-curve PNG while a run goes (it is
# drawn in the background thread, from the whole metrics.jsonl, so its cost grows with the run).
CURVE_EVERY_S = 30.0


class Reporter:
    """Progress between chunks: a tqdm bar (or nothing), TensorBoard events, and the
    learning curve rewritten every few chunks."""

    def __init__(self, session, start: int):
        self.session = session
        self.plotted_at = 0.0  # wall seconds at the last plot
        c = session.config
        self.bar = self.tb = None
        if session.progress and session.primary:
            from tqdm import tqdm

            self.bar = tqdm(
                total=c.num_iterations * c.num_envs,
                initial=start * c.num_envs,
                unit="step",
                unit_scale=True,
                dynamic_ncols=True,
                desc="sweep" if session.sweep else "train",
            )
        if session.tensorboard and session.primary:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise UsageError("--tensorboard: needs tensorboardX (pip install tensorboardX)") from None
            self.tb = SummaryWriter(str(session.out / "tb"))
        self.wandb = None
        if session.wandb_project and session.primary:
            self.wandb = start_wandb(session)

    def chunk(self, rows: list[dict], chunk: Chunk) -> None:
        """Report one chunk: the bar here (cheap), the loggers and the plot in the
        session's background thread."""
        s, c = self.session, self.session.config
        last = [r for r in rows if r["env_steps"] == rows[-1]["env_steps"]] if rows else []
        rets = [r["mean_return"] for r in last if r["mean_return"] is not None]
        if self.bar is not None:
            self.bar.update(chunk.num_iterations * c.num_envs)
            rate = chunk.num_iterations * c.num_envs * len(s.members) / chunk.chunk_s
            self.bar.set_postfix(
                {"steps/s": f"{rate:,.0f}", "mean_return": f"{np.mean(rets):.1f}" if rets else "-"}, refresh=True
            )
        if self.tb is not None or self.wandb is not None:
            s.background.submit(self._log, rows)
        if s.primary and chunk.wall_s - self.plotted_at >= CURVE_EVERY_S:
            self.plotted_at = chunk.wall_s
            s.background.submit(s.plot)

    def _log(self, rows: list[dict]) -> None:
        s = self.session
        if self.tb is not None:
            for r in rows:
                scalars = {key: r[key] for key in ("mean_return", "episodes", *LOSS_NAMES, "approx_kl") if key in r}
                scalars.update({f"eval/{k}": v for k, v in r.get("eval_metrics", {}).items()})
                for key, v in scalars.items():
                    if v is not None:
                        self.tb.add_scalar(key if not s.sweep else f"{key}/member{r['member']}", v, r["env_steps"])
        if self.wandb is not None:
            for r in rows:
                prefix = f"member{r['member']}/" if s.sweep else ""
                logged = {prefix + k: v for k, v in r.items() if k != "member" and isinstance(v, (int, float))}
                logged.update({f"{prefix}eval/{k}": v for k, v in r.get("eval_metrics", {}).items()})
                self.wandb.log(logged, step=r["env_steps"])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def start_wandb(session):
    """A Weights & Biases run: project from --wandb, group from the env, name from the run
    directory, config from the run's config. Offline when WANDB_MODE=offline (no account)."""
    try:
        import wandb
    except ImportError:
        raise UsageError("--wandb: needs wandb (pip install wandb)") from None
    c = session.config
    return wandb.init(
        project=session.wandb_project,
        group=c.env,
        name=session.out.name,
        dir=str(session.out),
        config={**c.to_dict(), "members": session.members},
        resume="allow" if session.resume else None,
        reinit=True,
    )


def member_label(config: Config, member: dict) -> str:
    """``seed 3, actor_lr 3e-4``: the member's seed and the hyperparameters that differ."""
    parts = [f"seed {member['seed']}"]
    parts += [f"{n} {member[n]:g}" for n in HPARAM_NAMES if n in member]
    return ", ".join(parts)


def summarize(config: Config, members: list[dict], rows: list[dict], solved: float | None) -> list[dict]:
    """Per member: seed, hyperparameters, final and best mean return, and the first logged
    env step with ``mean_return >= solved`` (None where the env has no threshold)."""
    summary = []
    for m, member in enumerate(members):
        mine = [r for r in rows if r.get("member", 0) == m and r["mean_return"] is not None]
        hit = next((r["env_steps"] for r in mine if solved is not None and r["mean_return"] >= solved), None)
        summary.append(
            {
                "member": m,
                "seed": member["seed"],
                **{n: float(member.get(n, getattr(config, n))) for n in HPARAM_NAMES},
                "final_mean_return": mine[-1]["mean_return"] if mine else None,
                "best_mean_return": max((r["mean_return"] for r in mine), default=None),
                "solved_at_env_steps": hit,
            }
        )
    return summary


def print_table(summary: list[dict]) -> None:
    order = sorted(summary, key=lambda s: -(s["final_mean_return"] or -1e9))
    cols = ["member", "seed", *HPARAM_NAMES, "final", "best", "solved_at", "diverged_at"]
    print(" | ".join(cols))
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    for s in order:
        vals = [
            s["member"],
            s["seed"],
            *[f"{s[n]:g}" for n in HPARAM_NAMES],
            fmt(s["final_mean_return"]),
            fmt(s["best_mean_return"]),
            "-" if s["solved_at_env_steps"] is None else s["solved_at_env_steps"],
            "-"
            if s.get("diverged_at_env_steps") is None
            else f"{s['diverged_at_env_steps']} ({s['diverged_quantity']})",
        ]
        print(" | ".join(str(v) for v in vals))


def result_line(s: dict, sweep: bool) -> str:
    """One line: final, best and solved-at of a run (of the best member, for a sweep)."""
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    who = f"best member {s['member']} (seed {s['seed']}): " if sweep else ""
    solved = "" if s["solved_at_env_steps"] is None else f", solved at {s['solved_at_env_steps']:,} env steps"
    return f"{who}final mean return {fmt(s['final_mean_return'])}, best {fmt(s['best_mean_return'])}{solved}"
