"""AgileRL's MADDPG with its evolutionary hyperparameter search on mpe2's simple_spread_v3,
timed to a return: the AgileRL side of ``benchmarks/agilerl_compare.py``.

Runs in an environment of its own (``pip install agilerl mpe2``); prints one JSON object.
AgileRL's recommended MADDPG settings (its ``configs/training/multi_agent/maddpg.yaml``):
16 vectorised envs, batch 64, actor lr 1e-4, critic lr 1e-3, gamma 0.95, tau 0.001, a
100,000-transition buffer, one learning step per 16 env steps, Ornstein-Uhlenbeck noise 0.1,
64-unit layers; a population evolving every 10,000 env steps by tournament (size 2, elitism)
and mutation (architecture, parameters, activation and learning rates, batch size and learn
step within its ranges). Training is AgileRL's own ``train_multi_agent_off_policy``; after
every evolution step each member is scored by AgileRL's noise-free ``test`` (one episode,
the sum over agents' returns), recorded here with the wall seconds since the first env step,
divided by the agent count (the return per agent that maddpg-jax reports).

    python benchmarks/baselines/agilerl_maddpg.py --seed 0 --population 8 --budget 1800 --target -15
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import time


class Done(Exception):
    """Raised from the evolution hook: the target is reached or the budget spent."""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--budget", type=float, default=1800.0, help="wall seconds")
    p.add_argument("--target", type=float, default=-15.0, help="stop once the best member reaches this per agent")
    p.add_argument("--num-envs", type=int, default=16)
    a = p.parse_args()

    import numpy as np
    import torch
    from agilerl.algorithms import MADDPG
    from agilerl.algorithms.core.registry import HyperparameterConfig, RLParameter
    from agilerl.components.replay_buffer import ReplayBuffer
    from agilerl.hpo.mutation import Mutations
    from agilerl.hpo.tournament import TournamentSelection
    from agilerl.population import Population
    from agilerl.training.train_multi_agent_off_policy import train_multi_agent_off_policy
    from agilerl.utils.utils import make_multi_agent_vect_envs
    from mpe2 import simple_spread_v3

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    env = make_multi_agent_vect_envs(
        simple_spread_v3.parallel_env, num_envs=a.num_envs, N=3, max_cycles=25, continuous_actions=True
    )
    env.reset(seed=a.seed)
    agent_ids = list(env.agents)
    obs_spaces = [env.single_observation_space(i) for i in agent_ids]
    act_spaces = [env.single_action_space(i) for i in agent_ids]
    hp_config = HyperparameterConfig(
        lr_actor=RLParameter(min=1e-4, max=1e-2),
        lr_critic=RLParameter(min=1e-4, max=1e-2),
        batch_size=RLParameter(min=8, max=2048, dtype=int),
        learn_step=RLParameter(min=20, max=200, dtype=int, grow_factor=1.5, shrink_factor=0.75),
    )
    net_config = {
        "latent_dim": 64,
        "encoder_config": {"hidden_size": [64], "activation": "ReLU", "min_mlp_nodes": 64, "max_mlp_nodes": 500},
        "head_config": {
            "hidden_size": [64],
            "activation": "ReLU",
            "output_activation": "Sigmoid",
            "min_hidden_layers": 1,
            "max_hidden_layers": 2,
            "min_mlp_nodes": 64,
            "max_mlp_nodes": 500,
        },
    }
    pop = MADDPG.population(
        size=a.population,
        observation_space=obs_spaces,
        action_space=act_spaces,
        agent_ids=agent_ids,
        hp_config=hp_config,
        net_config=net_config,
        O_U_noise=True,
        expl_noise=0.1,
        vect_noise_dim=a.num_envs,
        batch_size=64,
        lr_actor=1e-4,
        lr_critic=1e-3,
        learn_step=16,
        gamma=0.95,
        tau=0.001,
    )
    memory = ReplayBuffer(100_000)
    tournament = TournamentSelection(tournament_size=2, elitism=True, population_size=a.population)
    mutations = Mutations(
        no_mutation=0.4,
        architecture=0.2,
        new_layer_prob=0.2,
        parameters=0.2,
        activation=0.2,
        rl_hp=0.35,
        mutation_sd=0.1,
        rand_seed=a.seed,
    )

    n_agents = len(agent_ids)
    curve: list[dict] = []
    t0 = time.perf_counter()
    original = Population.increment_evo_step

    def record(self) -> None:
        original(self)
        per_agent = [float(agent.fitness[-1]) / n_agents for agent in self.agents]
        steps = int(sum(agent.metrics.steps for agent in self.agents))
        curve.append({"wall_s": time.perf_counter() - t0, "env_steps": steps, "returns": per_agent})
        print(f"{curve[-1]['wall_s']:.0f} s, {steps:,} env steps: best {max(per_agent):.1f}", flush=True)
        if max(per_agent) >= a.target or curve[-1]["wall_s"] >= a.budget:
            raise Done

    Population.increment_evo_step = record
    with contextlib.suppress(Done):
        train_multi_agent_off_policy(
            env,
            "simple_spread_v3",
            "MADDPG",
            pop,
            memory,
            sum_scores=True,
            max_steps=10**9,
            evo_steps=10_000,
            eval_loop=1,
            selection_strategy=tournament,
            mutation=mutations,
            verbose=False,
        )
    print(
        json.dumps(
            {
                "agilerl": importlib.metadata.version("agilerl"),
                "torch": torch.__version__,
                "seed": a.seed,
                "population": a.population,
                "budget_s": a.budget,
                "curve": curve,
            }
        )
    )


if __name__ == "__main__":
    main()
