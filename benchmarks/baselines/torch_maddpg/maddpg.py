"""A conventional PyTorch MADDPG, written the way a typical user writes it: one Agent object
per agent (actor, critic, targets, Adam), a Python loop over agents, a numpy circular
replay buffer, and a Python training loop that moves data host <-> torch every step.

Paper-style defaults (Lowe et al. 2017, as tuned for coupled CartPole): gamma 0.95,
tau 0.01, Adam 1e-3, Gaussian noise 0.1, two 64-unit layers.
"""

import copy
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.baselines.torch_maddpg.env import NumpyMultiCartPole


def mlp(inp, out, hidden=(64, 64)):
    layers, last = [], inp
    for h in hidden:
        layers += [nn.Linear(last, h), nn.ReLU()]
        last = h
    layers.append(nn.Linear(last, out))
    return nn.Sequential(*layers)


class Agent:
    def __init__(self, obs_dim, act_dim, joint_obs, joint_act, lr_actor, lr_critic, hidden):
        self.actor = mlp(obs_dim, act_dim, hidden)
        self.critic = mlp(joint_obs + joint_act, 1, hidden)
        self.target_actor = copy.deepcopy(self.actor)
        self.target_critic = copy.deepcopy(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr_actor)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=lr_critic)

    def act(self, obs):
        return torch.tanh(self.actor(obs))

    def target_act(self, obs):
        return torch.tanh(self.target_actor(obs))


class ReplayBuffer:
    def __init__(self, capacity, num_agents, obs_dim, act_dim):
        self.capacity, self.pos, self.size = capacity, 0, 0
        self.obs = np.zeros((capacity, num_agents, obs_dim), np.float32)
        self.act = np.zeros((capacity, num_agents, act_dim), np.float32)
        self.rew = np.zeros((capacity, num_agents), np.float32)
        self.next_obs = np.zeros((capacity, num_agents, obs_dim), np.float32)
        self.term = np.zeros((capacity,), np.float32)

    def add(self, obs, act, rew, next_obs, term):
        n = obs.shape[0]
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx], self.act[idx], self.rew[idx], self.next_obs[idx], self.term[idx] = obs, act, rew, next_obs, term
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size):
        idx = np.random.randint(0, self.size, size=batch_size)
        return (
            torch.from_numpy(self.obs[idx]),
            torch.from_numpy(self.act[idx]),
            torch.from_numpy(self.rew[idx]),
            torch.from_numpy(self.next_obs[idx]),
            torch.from_numpy(self.term[idx]),
        )


class MADDPG:
    def __init__(
        self, num_agents=2, obs_dim=4, act_dim=1, lr_actor=1e-3, lr_critic=1e-3, gamma=0.95, tau=0.01, hidden=(64, 64)
    ):
        self.A, self.gamma, self.tau = num_agents, gamma, tau
        self.agents = [
            Agent(obs_dim, act_dim, num_agents * obs_dim, num_agents * act_dim, lr_actor, lr_critic, hidden)
            for _ in range(num_agents)
        ]

    def act(self, obs, noise_std):
        with torch.no_grad():
            obs_t = torch.from_numpy(obs)
            actions = [agent.act(obs_t[:, i]) for i, agent in enumerate(self.agents)]
        a = torch.stack(actions, dim=1).numpy()
        return np.clip(a + noise_std * np.random.randn(*a.shape).astype(np.float32), -1, 1)

    def update(self, batch):
        obs, act, rew, next_obs, term = batch
        b = obs.shape[0]
        with torch.no_grad():
            next_act = torch.stack([ag.target_act(next_obs[:, i]) for i, ag in enumerate(self.agents)], dim=1)
        losses = []
        for i, agent in enumerate(self.agents):
            with torch.no_grad():
                q_next = agent.target_critic(torch.cat([next_obs.reshape(b, -1), next_act.reshape(b, -1)], 1)).squeeze(
                    1
                )
                y = rew[:, i] + self.gamma * (1 - term) * q_next
            q = agent.critic(torch.cat([obs.reshape(b, -1), act.reshape(b, -1)], 1)).squeeze(1)
            critic_loss = F.mse_loss(q, y)
            agent.critic_opt.zero_grad()
            critic_loss.backward()
            agent.critic_opt.step()

            joint = [act[:, j] if j != i else agent.act(obs[:, i]) for j in range(self.A)]
            actor_loss = -agent.critic(torch.cat([obs.reshape(b, -1), torch.stack(joint, 1).reshape(b, -1)], 1)).mean()
            agent.actor_opt.zero_grad()
            actor_loss.backward()
            agent.actor_opt.step()
            losses.append((critic_loss.item(), actor_loss.item()))
        for agent in self.agents:
            for net, target in ((agent.actor, agent.target_actor), (agent.critic, agent.target_critic)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.data.mul_(1 - self.tau).add_(self.tau * p.data)
        return losses


def train(
    num_envs=16,
    batch_size=256,
    updates_per_step=1,
    total_env_steps=100_000,
    warmup_env_steps=10_000,
    buffer_size=1_000_000,
    noise_std=0.1,
    seed=0,
    time_budget_s=None,
    log_every_s=1.0,
    **kwargs,
):
    """Train; returns dict of curves (env_steps, wall_s, mean_return) and throughput figures."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = NumpyMultiCartPole(num_envs, seed=seed)
    algo = MADDPG(**kwargs)
    buf = ReplayBuffer(buffer_size, algo.A, 4, 1)
    obs = env.reset()
    ep_ret = np.zeros(num_envs)
    finished = []
    curve = {"env_steps": [], "wall_s": [], "mean_return": []}
    steps, t0, last_log = 0, time.perf_counter(), 0.0
    learn_t0, learn_steps = None, 0
    while steps < total_env_steps:
        if steps < warmup_env_steps:
            act = np.random.uniform(-1, 1, size=(num_envs, algo.A, 1)).astype(np.float32)
        else:
            act = algo.act(obs, noise_std)
        next_obs, rew, term, trunc, final_obs = env.step(act[..., 0])
        buf.add(obs, act, rew, final_obs, term.astype(np.float32))
        obs = next_obs
        steps += num_envs
        ep_ret += rew.mean(1)
        for e in np.flatnonzero(term | trunc):
            finished.append(ep_ret[e])
            ep_ret[e] = 0
        if steps >= warmup_env_steps:
            if learn_t0 is None:
                learn_t0 = time.perf_counter()
            for _ in range(updates_per_step):
                algo.update(buf.sample(batch_size))
            learn_steps += num_envs
        now = time.perf_counter() - t0
        if now - last_log >= log_every_s and finished:
            curve["env_steps"].append(steps)
            curve["wall_s"].append(now)
            curve["mean_return"].append(float(np.mean(finished[-100:])))
            last_log = now
        if time_budget_s is not None and now > time_budget_s:
            break
    learn_s = time.perf_counter() - learn_t0 if learn_t0 else float("nan")
    return {
        "curve": curve,
        "env_steps_per_s": learn_steps / learn_s if learn_steps else float("nan"),
        "update_rounds_per_s": learn_steps / num_envs * updates_per_step / learn_s if learn_steps else float("nan"),
        "final_mean_return": float(np.mean(finished[-100:])) if finished else float("nan"),
    }
