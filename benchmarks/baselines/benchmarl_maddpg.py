"""BenchMARL's MADDPG (TorchRL) on VMAS simple_spread, timed; prints one JSON line.

Run by ``benchmarks/benchmarl_compare.py`` with a Python that has ``benchmarl`` and ``vmas``
(it imports nothing of this project, so it may live in an environment of its own):

    python benchmarks/baselines/benchmarl_maddpg.py ITERATIONS [--recommended]

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


if __name__ == "__main__":
    n = int(sys.argv[1])
    if n < 2:
        sys.exit("ITERATIONS must be >= 2 (the rate is timed between the first and the last batch)")
    print(json.dumps(main(n, "--recommended" in sys.argv[2:])))
