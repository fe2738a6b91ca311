"""The run directory, the host side's part that owns a run's files: the writer's lock, the
files a new run starts with, the metrics cut back to the checkpoint a resumed run goes on
from, the chunk's ``metrics.jsonl`` rows, and the summary at the end. Checkpoints are the
checkpointer's (`maddpg_jax.rundir.Checkpoints`); what is shown is reporting's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from maddpg_jax import envs, rundir
from maddpg_jax.config import Config
from maddpg_jax.lock import RunLock
from maddpg_jax.training import loss_names


def metric_rows(
    config: Config, spec, metrics, start: int, n: int, num_members: int, sweep: bool, wall_start: float, wall_end: float
) -> list[dict]:
    """The ``metrics.jsonl`` rows of one chunk: one per member at every log boundary (and
    the run's last iteration). ``metrics``: host Metrics, fields ``[members, n, ...]``;
    ``start``: iterations done before the chunk; wall seconds interpolated over its ``n``."""
    rows = []
    metric_names = [m.name for m in envs.entry(config.env).metrics]
    for j in range(n):
        i = start + j + 1  # iterations done after this one
        if i % config.log_interval and i != config.num_iterations:
            continue
        for member in range(num_members):
            row = {
                "env_steps": i * config.num_envs,
                "wall_s": round(wall_start + (wall_end - wall_start) * (j + 1) / n, 3),
            }
            if sweep:
                row["member"] = member
            row["mean_return"] = rundir.to_python(metrics.mean_return[member, j])
            if len(spec.teams) > 1:
                row["team_returns"] = {
                    name: rundir.to_python(v) for name, v in zip(spec.team_names, metrics.team_returns[member, j])
                }
            row["episodes"] = rundir.to_python(metrics.episodes[member, j])
            if config.eval_episodes > 0:  # the latest noise-free evaluation, and the best (kept)
                row["eval_return"] = rundir.to_python(metrics.eval_return[member, j])
                row["best_eval_return"] = rundir.to_python(metrics.best_eval_return[member, j])
                values = np.asarray(metrics.eval_metrics[member, j])
                if metric_names and np.all(np.isfinite(values)):  # a row that ended an evaluation
                    row["eval_metrics"] = {k: rundir.to_python(v) for k, v in zip(metric_names, values)}
            # Losses: means over the interval, accumulated on the device (see TrainState).
            for key, v in zip(loss_names(config), metrics.interval_losses[member, j]):
                row[key] = rundir.to_python(v)
            rows.append(row)
    return rows


class RunFiles:
    """One run directory's files as its writer keeps them. ``primary``: this process writes
    (process 0 of a multi-process run; the others compute and write nothing)."""

    def __init__(self, out: Path, primary: bool = True):
        self.out, self.primary = Path(out), primary
        self._lock: RunLock | None = None

    def lock(self) -> None:
        """Take the writer's lock before anything is written (refused in one line while
        another process holds it)."""
        if self.primary:
            self._lock = RunLock(self.out)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def start(self, config: Config, members: list[dict], env_facts: dict, pbt=None, warn=print) -> None:
        """A new run's files: its config, members and env, an empty ``metrics.jsonl`` (and
        ``pbt.jsonl``). Checkpoints cut off before their checksums are moved aside first
        (`rundir.set_aside_unfinished`), so the new run neither builds on them nor loses them."""
        if not self.primary:
            return
        rundir.set_aside_unfinished(self.out, warn)
        saved = {"config": config.to_dict(), "members": members, "env": env_facts}
        if pbt is not None:
            saved["pbt"] = pbt.to_dict()
            rundir.atomic_write_text(self.out / rundir.PBT, "")
        rundir.write_json(self.out / rundir.CONFIG, saved)
        rundir.atomic_write_text(self.out / rundir.METRICS, "")

    def rewind(self, config: Config, iteration: int, pbt: bool) -> None:
        """Cut the logs back to a resumed run's checkpoint at ``iteration``: the rows an
        uninterrupted run would have, without the previous run's closing row when it fell
        between log intervals."""
        if not self.primary or iteration >= config.num_iterations:
            return
        env_steps, every = iteration * config.num_envs, config.log_interval * config.num_envs
        rundir.truncate_metrics(self.out / rundir.METRICS, env_steps, every_env_steps=every)
        if pbt:
            rundir.truncate_metrics(self.out / rundir.PBT, env_steps)

    def append(self, rows: list[dict]) -> None:
        """Append a chunk's rows to ``metrics.jsonl`` (each line whole)."""
        if self.primary:
            rundir.append_jsonl(self.out / rundir.METRICS, rows)

    def rows(self) -> list[dict]:
        return rundir.read_jsonl(self.out / rundir.METRICS)

    def finish(self, summary: list[dict], sweep: bool) -> None:
        """List the run's files; a sweep's summary goes to ``summary.jsonl``."""
        print(f"\nrun directory: {self.out}")
        for name, path in (
            ("config", rundir.CONFIG),
            ("metrics", rundir.METRICS),
            ("curve", rundir.CURVE),
            ("checkpoints", rundir.CHECKPOINTS),
        ):
            print(f"  {name + ':':<12} {self.out / path}")
        if sweep:
            rundir.atomic_write_text(
                self.out / rundir.SUMMARY, "".join(json.dumps(s, sort_keys=True) + "\n" for s in summary)
            )
            print(f"  summary:     {self.out / rundir.SUMMARY}\n")
