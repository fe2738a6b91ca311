"""The classic multi-agent tutorial's path with maddpg-jax: train, plot the return per
episode, load the trained policy, and run it in a plain Python loop over a PettingZoo env.

    python examples/tutorial.py                 # about a minute on a 2-core CPU
    MADDPG_JAX_README_STEPS=20000 python examples/tutorial.py   # a quick smoke run

It trains 2 spring-coupled carts (MultiCartPole-v0) into runs/tutorial, exactly as
``maddpg-jax train --env MultiCartPole-v0 --num-agents 2 --out runs/tutorial`` would.
"""

import json
import os
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import maddpg_jax
from maddpg_jax import Config, load_policy
from maddpg_jax.envs.pettingzoo import parallel_env

out = Path("runs/tutorial")
steps = os.environ.get("MADDPG_JAX_README_STEPS", "300000")

# 1. Train into a run directory, as the CLI does (a fresh directory each time).
shutil.rmtree(out, ignore_errors=True)
config = Config(env="MultiCartPole-v0", env_kwargs={"num_agents": 2}, total_env_steps=int(steps))
summary = maddpg_jax.train(config, out=out, progress=False)
print(f"final mean return {summary['final_mean_return']}, solved at {summary['solved_at_env_steps']} env steps")

# 2. Plot the 100-episode mean return against env steps from metrics.jsonl.
rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
rows = [r for r in rows if r["mean_return"] is not None]
plt.plot([r["env_steps"] for r in rows], [r["mean_return"] for r in rows])
plt.xlabel("env steps")
plt.ylabel("mean return (last 100 episodes)")
plt.savefig(out / "tutorial_curve.png")
print(f"wrote {out / 'tutorial_curve.png'}")

# 3. Load the trained policy: a function from an observation dict to an action dict.
policy = load_policy(out)

# 4. Run it in a plain Python loop, as any PettingZoo user would.
env = parallel_env("MultiCartPole-v0", num_agents=2)
returns = []
for episode in range(5):
    observations, infos = env.reset(seed=episode)
    total = 0.0
    while env.agents:
        actions = policy(observations)
        observations, rewards, terminations, truncations, infos = env.step(actions)
        total += np.mean(list(rewards.values()))
    returns.append(total)
print(f"5 episodes with the trained policy, no exploration noise: returns {returns}")
