"""A trained MPE policy on JaxMARL and on the reference MPE (the ``mpe2`` package), side by side.

    pip install mpe2
    python benchmarks/mpe2_check.py RUN_DIR [--episodes 1000] [--member 0]

The run's kept policy (``load_policy``, noise-free) plays ``--episodes`` episodes on each
implementation through the same PettingZoo loop: this project's PettingZoo face of the
JaxMARL env, and ``mpe2``'s parallel env of the same scenario with the same episode length
(JaxMARL's 26 steps) and action type. Continuous actions: the PettingZoo face takes the
policy's [-1, 1] and maps it onto JaxMARL's Box itself; for mpe2 the same map is applied
here (the adapter's own ``to_box``). A random policy plays both too, as the scale. Returns
are per agent: the mean over agents of each agent's episode sum. If the two implementations
agree, the trained policy scores the same on both (to the sampling error printed beside
each figure). Writes ``benchmarks/results/mpe/mpe2_check.md``
unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.common import machine


def play(env, act, episodes: int, seed: int) -> np.ndarray:
    """Per-agent episode returns ``[episodes]`` of ``act(observations) -> actions`` on a
    PettingZoo parallel env."""
    out = np.zeros(episodes)
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        total = {a: 0.0 for a in env.agents}
        while env.agents:
            obs, rewards, _, _, _ = env.step(act(obs))
            for a, r in rewards.items():
                total[a] += float(r)
        out[e] = np.mean(list(total.values()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--member", type=int, default=0)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--out", default=os.path.join(here, "results", "mpe", "mpe2_check.md"))
    a = p.parse_args()

    from maddpg_jax import load_policy
    from maddpg_jax.envs.jaxmarl_adapter import to_box
    from maddpg_jax.envs.pettingzoo import parallel_env

    policy = load_policy(a.run_dir, a.member)
    name = policy.trainer.config.env
    if not name.startswith("jaxmarl:MPE_"):
        sys.exit(f"run_dir: a run on a jaxmarl:MPE_* env is needed, this one trained {name}")
    scenario = name.removeprefix("jaxmarl:MPE_")  # e.g. simple_spread_v3, mpe2's module name
    kwargs = dict(policy.trainer.config.env_kwargs)
    discrete = kwargs.get("action_type", "continuous") == "discrete"

    ours = parallel_env(name, **kwargs)
    steps = 0
    ours.reset(seed=0)
    while ours.agents:  # the JaxMARL episode's length, which mpe2 is given
        ours.step({ag: ours.action_space(ag).sample() for ag in ours.agents})
        steps += 1
    ref = importlib.import_module(f"mpe2.{scenario}").parallel_env(max_cycles=steps, continuous_actions=not discrete)

    def on_ref(obs):
        acts = policy(obs)
        if discrete:
            return acts
        spaces = {ag: ref.action_space(ag) for ag in acts}
        return {ag: np.asarray(to_box(v, spaces[ag].low, spaces[ag].high)) for ag, v in acts.items()}

    def random_on(env):
        return lambda obs: {ag: env.action_space(ag).sample() for ag in obs}

    rows = []
    for label, env, act in (
        ("trained, JaxMARL (this project's PettingZoo face)", ours, policy),  # it takes [-1, 1] itself
        ("trained, mpe2 (reference MPE)", ref, on_ref),
        ("random, JaxMARL", ours, random_on(ours)),
        ("random, mpe2", ref, random_on(ref)),
    ):
        r = play(env, act, a.episodes, seed=1000)
        rows.append(f"| {label} | {r.mean():.2f} ± {r.std(ddof=1) / np.sqrt(len(r)):.2f} | {np.median(r):.2f} |")
        print(rows[-1], flush=True)

    text = "\n".join(
        [
            f"# {scenario}: one trained policy on JaxMARL and on mpe2",
            "",
            f"Machine: {machine()}. `python benchmarks/mpe2_check.py {a.run_dir} --episodes {a.episodes}`; "
            f"{'discrete' if discrete else 'continuous'} actions, {steps}-step episodes on both, the kept policy "
            f"of member {a.member}, noise-free. Per-agent return, mean ± standard error over {a.episodes} episodes.",
            "",
            "| policy, env | per-agent return | median |",
            "|---|---:|---:|",
            *rows,
            "",
        ]
    )
    from maddpg_jax.rundir import atomic_write_text

    atomic_write_text(a.out, text)


if __name__ == "__main__":
    main()
