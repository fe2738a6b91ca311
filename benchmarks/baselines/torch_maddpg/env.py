"""MultiCartPole-v0 in numpy, vectorised over E envs: the same physics, coupling and
auto-reset as ``envs.MultiCartPole`` (float64, as gymnasium computes)."""

import numpy as np


class NumpyMultiCartPole:
    def __init__(self, num_envs, num_agents=2, coupling=1.0, max_steps=500, seed=0):
        self.E, self.A, self.k, self.max_steps = num_envs, num_agents, coupling, max_steps
        self.rng = np.random.default_rng(seed)
        self.gravity, self.masscart, self.masspole, self.length = 9.8, 1.0, 0.1, 0.5
        self.force_mag, self.tau = 10.0, 0.02
        self.theta_threshold, self.x_threshold = 12 * 2 * np.pi / 360, 2.4

    def reset(self):
        self.state = self.rng.uniform(-0.05, 0.05, size=(self.E, self.A, 4))
        self.t = np.zeros(self.E, dtype=np.int64)
        return self.state.astype(np.float32)

    def step(self, actions):
        """actions [E, A] in [-1, 1] -> obs [E, A, 4], reward [E, A], terminated [E], truncated [E], final_obs."""
        x, x_dot, theta, theta_dot = (self.state[..., j] for j in range(4))
        force = self.force_mag * np.clip(actions, -1.0, 1.0)
        left = np.concatenate([x[:, :1], x[:, :-1]], axis=1)
        right = np.concatenate([x[:, 1:], x[:, -1:]], axis=1)
        force = force + self.k * (left - x) + self.k * (right - x)
        total_mass = self.masspole + self.masscart
        pml = self.masspole * self.length
        cos, sin = np.cos(theta), np.sin(theta)
        temp = (force + pml * theta_dot**2 * sin) / total_mass
        thetaacc = (self.gravity * sin - cos * temp) / (self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass))
        xacc = temp - pml * thetaacc * cos / total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = np.stack([x, x_dot, theta, theta_dot], axis=-1)
        self.t += 1
        terminated = np.any((np.abs(x) > self.x_threshold) | (np.abs(theta) > self.theta_threshold), axis=1)
        truncated = self.t >= self.max_steps
        final_obs = self.state.astype(np.float32)
        done = terminated | truncated
        if done.any():
            n = int(done.sum())
            self.state[done] = self.rng.uniform(-0.05, 0.05, size=(n, self.A, 4))
            self.t[done] = 0
        reward = np.ones((self.E, self.A), dtype=np.float32)
        return self.state.astype(np.float32), reward, terminated, truncated, final_obs
