"""BenchMARL's MADDPG (TorchRL) on simple_spread, timed; prints one JSON line.

Run by ``benchmarks/benchmarl_compare.py`` with a Python that has ``benchmarl`` and ``vmas``
(it imports nothing of this project, so it may live in an environment of its own):

    python benchmarks/baselines/benchmarl_maddpg.py ITERATIONS [--recommended]
    python benchmarks/baselines/benchmarl_maddpg.py --to-return SECONDS [SEED]

The second form (``benchmarl_compare.py --to-return``) needs ``pettingzoo[mpe]<1.25`` too; it is
described at :func:`to_return`. The first form:

Each BenchMARL iteration collects 6,000 frames (env steps: one step of one env, all agents)
from 60 VMAS envs, then makes 1,000 optimiser steps of batch 128 (BenchMARL's defaults for
off-policy algorithms, except its 10 envs per worker). Without ``--recommended`` the networks
are made equal to maddpg-jax's comparison settings: two 64-unit ReLU layers, each agent its own
actor and critic; with it, BenchMARL's own MLP (two 256-unit tanh layers, parameters shared).
The rate is timed between the first and the last batch collected, so start-up, the first
collection and the last update phase are left out: ``(ITERATIONS - 1) * 6000`` frames, each
collected and learned from.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time

import benchmarl
import torch
from benchmarl.algorithms import MaddpgConfig
from benchmarl.environments import VmasTask
from benchmarl.experiment import Callback, Experiment, ExperimentConfig
from benchmarl.models.mlp import MlpConfig

FRAMES_PER_BATCH = 6000
NUM_ENVS = 60
OPTIMISER_STEPS = 1000
BATCH = 128


class Clock(Callback):
    """Stamps each collected batch (module level: BenchMARL pickles its callbacks)."""

    def __init__(self):
        super().__init__()
        self.stamps = []

    def on_batch_collected(self, batch):
        self.stamps.append((time.perf_counter(), batch.numel()))


def main(iterations: int, recommended: bool) -> dict:
    cfg = ExperimentConfig.get_from_yaml()
    cfg.loggers, cfg.create_json, cfg.evaluation, cfg.render = [], False, False, False
    cfg.checkpoint_at_end, cfg.save_folder = False, tempfile.mkdtemp()
    cfg.off_policy_collected_frames_per_batch = FRAMES_PER_BATCH
    cfg.off_policy_n_envs_per_worker = NUM_ENVS
    cfg.off_policy_n_optimizer_steps = OPTIMISER_STEPS
    cfg.off_policy_train_batch_size = BATCH
    cfg.max_n_frames = FRAMES_PER_BATCH * iterations
    task = VmasTask.SIMPLE_SPREAD.get_from_yaml()
    task.config["max_steps"] = 25  # the MPE's episode, as JaxMARL's (26) and the paper's
    algo = MaddpgConfig.get_from_yaml()
    actor, critic = MlpConfig.get_from_yaml(), MlpConfig.get_from_yaml()
    if not recommended:
        cfg.share_policy_params, algo.share_param_critic = False, False
        for m in (actor, critic):
            m.num_cells, m.activation_class = [64, 64], torch.nn.ReLU
    clock = Clock()
    exp = Experiment(
        task=task,
        algorithm_config=algo,
        model_config=actor,
        critic_model_config=critic,
        seed=0,
        config=cfg,
        callbacks=[clock],
    )
    exp.run()
    (t1, _), (t_last, _) = clock.stamps[0], clock.stamps[-1]
    frames = sum(n for _, n in clock.stamps[1:])
    return dict(
        env_steps_per_s=frames / (t_last - t1),
        update_rounds_per_s=OPTIMISER_STEPS * (len(clock.stamps) - 1) / (t_last - t1),
        seconds_per_iteration=(t_last - t1) / (len(clock.stamps) - 1),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        benchmarl=benchmarl.__version__,
        mean_return=float(exp.mean_return) if getattr(exp, "mean_return", None) is not None else None,
    )


class OutOfTime(Exception):
    """Raised by :class:`Curves` when the wall-clock budget is spent (ends ``Experiment.run``)."""


class Curves(Callback):
    """Wall time, frames and returns of each collected batch and each evaluation.

    A return is the mean over agents of each agent's episode sum (maddpg-jax's definition):
    from the batch's finished training episodes (with exploration noise) and from the
    evaluation's deterministic rollouts."""

    def __init__(self, t0: float, budget_s: float):
        super().__init__()
        self.t0, self.budget_s, self.frames = t0, budget_s, 0
        self.train, self.evals = [], []

    def on_batch_collected(self, batch):
        self.frames += batch.numel()
        rets = []
        for group in self.experiment.group_map:
            done = batch.get(("next", group, "done")).squeeze(-1)  # [envs, T, agents]
            ep = batch.get(("next", group, "episode_reward")).squeeze(-1)
            finished = done.all(-1)  # every agent of the env done: one episode ended
            rets.append(ep.mean(-1)[finished])
        ret = torch.cat(rets).mean().item() if sum(r.numel() for r in rets) else float("nan")
        now = time.perf_counter() - self.t0
        self.train.append((now, self.frames, ret))
        if now > self.budget_s:
            raise OutOfTime

    def on_evaluation_end(self, rollouts):
        per_episode = []
        for td in rollouts:  # one episode each: [T, ...]
            agent_sums = [td.get(("next", g, "reward")).sum(0).squeeze(-1).mean() for g in self.experiment.group_map]
            per_episode.append(torch.stack(agent_sums).mean())
        self.evals.append((time.perf_counter() - self.t0, self.frames, torch.stack(per_episode).mean().item()))


def to_return(budget_s: float, seed: int) -> dict:
    """BenchMARL's MADDPG with its recommended settings on PettingZoo's ``simple_spread_v3``
    (the env maddpg-jax's JaxMARL one is checked against: continuous actions, N 3, local
    ratio 0.5), 26-step episodes (JaxMARL's), for ``budget_s`` seconds of wall time.

    Everything is BenchMARL's default (experiment, MADDPG and MLP configs: 6,000 frames from 10
    envs then 1,000 optimiser steps of batch 128, lr 5e-5, gamma 0.99, exploration annealed over
    1M of its 3M frames, two 256-unit tanh layers, parameters shared) except: evaluation every
    30,000 frames instead of 120,000 (a finer curve; evaluation does not change learning) with
    a CSV logger (BenchMARL evaluates only when something logs), no rendering, no checkpoint.
    Wall time counts from before the experiment is built (its start-up included)."""
    from benchmarl.environments import PettingZooTask

    t0 = time.perf_counter()
    cfg = ExperimentConfig.get_from_yaml()
    cfg.loggers, cfg.create_json, cfg.render = ["csv"], False, False
    cfg.checkpoint_at_end, cfg.save_folder = False, tempfile.mkdtemp()
    cfg.evaluation_interval = 30_000
    task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()
    task.config.update(max_cycles=26, N=3, local_ratio=0.5)
    curves = Curves(t0, budget_s)
    exp = Experiment(
        task=task,
        algorithm_config=MaddpgConfig.get_from_yaml(),
        model_config=MlpConfig.get_from_yaml(),
        critic_model_config=MlpConfig.get_from_yaml(),
        seed=seed,
        config=cfg,
        callbacks=[curves],
    )
    with contextlib.suppress(OutOfTime):
        exp.run()
    return dict(
        train=curves.train,
        evals=curves.evals,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        benchmarl=benchmarl.__version__,
    )


if __name__ == "__main__":
    if sys.argv[1] == "--to-return":
        seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        print(json.dumps(to_return(float(sys.argv[2]), seed)))
        sys.exit()
    n = int(sys.argv[1])
    if n < 2:
        sys.exit("ITERATIONS must be >= 2 (the rate is timed between the first and the last batch)")
    print(json.dumps(main(n, "--recommended" in sys.argv[2:])))
