"""Actor and centralised critic (flax.linen), written for one agent, and the ``Networks``
struct a trainer is built from.

Per-agent parameters are stacked on a leading agent axis by ``jax.vmap(networks.actor_init)``.
To try another architecture (say, a critic with attention over agents), write a factory
like `make_networks` and pass it to ``make_trainer(config, network_factory=...)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _final_init(scale: float):
    if scale > 0:
        return (
            nn.initializers.uniform_range(-scale, scale)
            if hasattr(nn.initializers, "uniform_range")
            else (lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -scale, scale))
        )
    return None


class Actor(nn.Module):
    """mu_i(o_i) before its squashing: ``obs [..., obs_dim] -> [..., act_dim]``.

    Continuous: the pre-tanh action (the caller applies tanh, and may penalise saturation).
    Discrete: unnormalised logits (the caller applies Gumbel-softmax).
    """

    hidden_sizes: Sequence[int]
    act_dim: int
    final_layer_init: float = 0.0

    @nn.compact
    def __call__(self, obs):
        x = obs
        for h in self.hidden_sizes:
            x = nn.relu(nn.Dense(h)(x))
        init = _final_init(self.final_layer_init)
        kw = dict(kernel_init=init, bias_init=init) if init is not None else {}
        return nn.Dense(self.act_dim, **kw)(x)


class QNetwork(nn.Module):
    hidden_sizes: Sequence[int]
    layer_norm: bool = False
    final_layer_init: float = 0.0

    @nn.compact
    def __call__(self, x):
        for h in self.hidden_sizes:
            x = nn.Dense(h)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        init = _final_init(self.final_layer_init)
        kw = dict(kernel_init=init, bias_init=init) if init is not None else {}
        return nn.Dense(1, **kw)(x)[..., 0]


class Critic(nn.Module):
    """Q_i(o_1..o_A, a_1..a_A): ``obs [..., A*obs_dim], actions [..., A*act_dim] ->
    [num_q, ...]`` (``num_q`` = 2 for twin critics, an ensemble axis, not a loop)."""

    hidden_sizes: Sequence[int]
    num_q: int = 1
    layer_norm: bool = False
    final_layer_init: float = 0.0

    @nn.compact
    def __call__(self, obs, actions):
        x = jnp.concatenate([obs, actions], axis=-1)
        ensemble = nn.vmap(
            QNetwork,
            # Name fixed so first_q_apply can find the ensemble's parameters.
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_q,
        )
        return ensemble(self.hidden_sizes, self.layer_norm, self.final_layer_init, name="ensemble")(x)

    @nn.nowrap
    def first_q_apply(self, params, obs, actions):
        """Q of the first critic only, ``[...]``: what the actor loss uses, at 1/num_q the
        cost of evaluating the whole ensemble and slicing."""
        head = jax.tree.map(lambda x: x[0], params["params"]["ensemble"])
        net = QNetwork(self.hidden_sizes, self.layer_norm, self.final_layer_init, parent=None)
        return net.apply({"params": head}, jnp.concatenate([obs, actions], axis=-1))


# -- the Networks struct and its factory ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Networks:
    """The functions a trainer needs of its networks, each written for ONE agent (callers
    vmap over the agent axis). Build one with `make_networks`, or write your own
    factory with the same signature and pass it to ``make_trainer(network_factory=...)``.

    Shapes: ``O`` obs_dim, ``D`` act_dim, ``A`` agents, ``Q`` critics per agent.

    Attributes:
        actor_init: ``(key, obs [O]) -> params``.
        actor_apply: ``(params, obs [..., O]) -> [..., D]``: pre-tanh actions (continuous)
            or logits (discrete).
        critic_init: ``(key, joint_obs [A*O], joint_actions [A*D]) -> params``.
        critic_apply: ``(params, joint_obs [..., A*O], joint_actions [..., A*D]) -> [Q, ...]``.
        first_q_apply: as ``critic_apply`` for the first critic only, ``-> [...]`` (what the
            actor loss uses).
        num_q: ``Q``.
    """

    actor_init: Callable
    actor_apply: Callable
    critic_init: Callable
    critic_apply: Callable
    first_q_apply: Callable
    num_q: int


def make_networks(config, env) -> Networks:
    """MLP actors and centralised MLP critics for ``config`` and ``env`` (flax.linen).

    Observations are scaled at the networks' inputs when ``config.scale_obs`` (the replay
    buffer keeps raw ones).
    """
    actor = Actor(config.hidden_sizes, env.act_dim, config.final_layer_init)
    num_q = 2 if config.twin_critics else 1
    critic = Critic(config.hidden_sizes, num_q, config.critic_layer_norm, config.final_layer_init)
    scale = getattr(env, "obs_scale", None) if config.scale_obs else None
    if scale is None:
        return Networks(actor.init, actor.apply, critic.init, critic.apply, critic.first_q_apply, num_q)
    inv = 1.0 / jnp.asarray(scale, jnp.float32)  # [O]
    joint_inv = jnp.tile(inv, env.num_agents)  # [A*O]
    return Networks(
        actor_init=actor.init,
        actor_apply=lambda p, obs: actor.apply(p, obs * inv),
        critic_init=critic.init,
        critic_apply=lambda p, obs, act: critic.apply(p, obs * joint_inv, act),
        first_q_apply=lambda p, obs, act: critic.first_q_apply(p, obs * joint_inv, act),
        num_q=num_q,
    )


def flatten_networks(networks: Networks, obs_dim: int, joint_obs_dim: int, joint_act_dim: int) -> Networks:
    """The same networks with each agent's parameters as ONE flat float32 vector.

    The optimiser, the Polyak target update and gradient clipping then touch one array per
    agent stack instead of one per layer weight and bias, so each is a single fused kernel
    (measured with ``benchmarks/kernels.py``); the applies unflatten with static slices,
    which XLA fuses into their consumers. Values are those of the wrapped networks.
    """
    from jax.flatten_util import ravel_pytree

    key = jax.random.key(0)
    like_actor = jax.eval_shape(networks.actor_init, key, jnp.zeros(obs_dim))
    like_critic = jax.eval_shape(networks.critic_init, key, jnp.zeros(joint_obs_dim), jnp.zeros(joint_act_dim))
    zeros = lambda tree: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)
    unravel_actor = ravel_pytree(zeros(like_actor))[1]
    unravel_critic = ravel_pytree(zeros(like_critic))[1]
    return Networks(
        actor_init=lambda key, obs: ravel_pytree(networks.actor_init(key, obs))[0],
        actor_apply=lambda p, obs: networks.actor_apply(unravel_actor(p), obs),
        critic_init=lambda key, obs, act: ravel_pytree(networks.critic_init(key, obs, act))[0],
        critic_apply=lambda p, obs, act: networks.critic_apply(unravel_critic(p), obs, act),
        first_q_apply=lambda p, obs, act: networks.first_q_apply(unravel_critic(p), obs, act),
        num_q=networks.num_q,
    )
