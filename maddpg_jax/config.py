"""Training configuration: a frozen dataclass of static settings plus sweepable hparams.

Fields that fix array shapes or program structure are static (changing them recompiles).
The six sweepable hyperparameters are also carried as arrays in `HParams`, so one
compiled program can train a whole grid of them under ``jax.vmap``.

Env-specific settings live in ``env_kwargs`` (checked against the env's registry entry).
A field left unset takes the env's recommended value from its registry entry, else the
global default: `resolve` does this for the Python API and the CLI alike, so
``Config(env=X)`` and ``maddpg-jax train --env X`` train the same thing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct
from flax.core import FrozenDict

# The switches that turn this project's stabilisers off (twin critics, target smoothing,
# critic layer norm, Huber loss, n-step targets): what plain MADDPG runs with, as the paper
# and the benchmarks' conventional baselines do.
STABILISERS_OFF = dict(twin_critics=False, target_noise=0.0, critic_layer_norm=False, huber_delta=0.0, n_step=1)

# Named groups of Config values (``--preset``): they apply to the fields a user leaves unset,
# over the env's recommendations; a user's value always wins.
PRESETS = {
    # The MADDPG paper's code as it ran (openai/maddpg's train.py defaults and maddpg.py): Adam
    # 1e-2 for both, gamma 0.95, batch 1024, a 1e6 buffer, tau 0.01, two 64-unit ReLU layers,
    # one update of every agent per 100 env steps once 25,600 transitions are stored (its
    # policy acts from the first step), gradients clipped to norm 0.5 per tensor, 1e-3 *
    # mean(logits^2) on the actor, the soft Gumbel-softmax sample (temperature 1) for acting,
    # the actor loss and the target actions, the env fed that soft vector, 25-step episodes,
    # 60,000 episodes (1.5M env steps), the last policy kept; no stabiliser. Differences left:
    # flax's default initialisation (lecun normal) where TensorFlow's layers used Glorot
    # uniform; one minibatch for all agents per update, where each agent sampled its own and
    # updated after the agents before it.
    "paper": dict(
        STABILISERS_OFF,
        actor_lr=1e-2,
        critic_lr=1e-2,
        gamma=0.95,
        tau=0.01,
        batch_size=1024,
        buffer_size=1_000_000,
        num_envs=100,
        updates_per_step=1,
        warmup_env_steps=25_600,
        warmup_actions="policy",
        total_env_steps=1_500_000,
        hidden_sizes=(64, 64),
        actor_delay=1,
        grad_clip=0.5,
        grad_clip_scope="tensor",
        action_penalty=0.0,
        logit_penalty=1e-3,
        n_step_mix=False,
        lr_decay="none",
        noise_decay="none",
        explore_temperature=1.0,
        gumbel_temperature=1.0,
        gumbel_mode="soft",
        reward_scale=1.0,
        scale_obs=False,
        final_layer_init=0.0,
        flat_params=False,
        keep_best=False,
    ),
}


class ConfigError(ValueError):
    """A bad configuration value; ``field`` names the config field or env argument
    (``--field-name`` flag)."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message  # message: what is wrong, without the name
        super().__init__(f"{field}: {message}")

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


@struct.dataclass
class HParams:
    """Sweepable hyperparameters, each a float32 scalar (or ``[members]`` when swept)."""

    actor_lr: jnp.ndarray
    critic_lr: jnp.ndarray
    gamma: jnp.ndarray
    tau: jnp.ndarray
    noise_std: jnp.ndarray
    gumbel_temperature: jnp.ndarray


HPARAM_NAMES = tuple(f.name for f in dataclasses.fields(HParams))


def default(value):
    """A Config field left unset (``None``) that resolves to the env's recommendation, else
    ``value`` (kept in the field's metadata, where ``--help`` reads it)."""
    return dataclasses.field(default=None, metadata={"default": value})


def global_default(name: str):
    """The global default of field ``name`` (what applies when the env recommends none)."""
    f = next(f for f in dataclasses.fields(Config) if f.name == name)
    return f.metadata.get("default", f.default)


def resolve(config: Config) -> None:
    """Fill ``config``'s unset fields in place (it is frozen: ``object.__setattr__``, only
    from ``__post_init__``): the env's registry defaults first (with those for its args'
    values), then the global defaults; and ``env_kwargs`` with every argument of the env,
    checked against its entry."""
    from maddpg_jax import envs

    try:
        entry = envs.entry(config.env)
    except ValueError as e:
        raise ConfigError("env", str(e)) from None
    kwargs = config.env_kwargs
    if not isinstance(kwargs, Mapping):
        raise ConfigError("env_kwargs", f"must be a mapping of argument names to values, got {kwargs!r}")
    try:
        resolved = entry.resolve(dict(kwargs))
    except envs.EnvArgError as e:
        raise ConfigError(e.arg, e.message) from None
    object.__setattr__(config, "env_kwargs", FrozenDict(resolved))
    recommended = entry.defaults_for(resolved)
    if config.preset not in PRESETS and config.preset != "none":
        raise ConfigError("preset", f"must be one of {['none', *PRESETS]}, got {config.preset!r}")
    recommended.update(PRESETS.get(config.preset, {}))
    for f in dataclasses.fields(config):
        if getattr(config, f.name) is None and "default" in f.metadata:
            object.__setattr__(config, f.name, recommended.get(f.name, f.metadata["default"]))
    if isinstance(config.hidden_sizes, list):
        object.__setattr__(config, "hidden_sizes", tuple(config.hidden_sizes))


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run needs. Unset fields (``None``) resolve to the env's recommended value
    (its registry entry), else the global default shown in each field's ``default(...)``;
    the global defaults solve 2-agent coupled continuous MultiCartPole-v0."""

    env: str = "MultiCartPole-v0"
    """environment name (see envs.names())"""
    env_kwargs: Mapping[str, Any] = FrozenDict()
    """the env's own arguments (num_agents, coupling, action_type, ...); unset ones take the env's defaults"""
    preset: Literal["none", "paper"] = "none"
    """a named group of settings for the fields left unset, over the env's recommendations: 'paper' is the
    MADDPG paper's code as it ran (its hyperparameters, update schedule and soft Gumbel-softmax semantics,
    no stabiliser)"""
    num_envs: int = default(64)
    """parallel environments E stepped per iteration"""
    batch_size: int = default(128)
    """minibatch size B per update round"""
    buffer_size: int = default(300_000)
    """replay buffer capacity in transitions (per sweep member)"""
    updates_per_step: int = default(4)
    """update rounds U (every agent's critic and actor) per vectorised env step"""
    total_env_steps: int = default(300_000)
    """length of the run in env steps (vectorised steps x num_envs)"""
    warmup_env_steps: int = default(10_000)
    """env steps of uniformly random actions before learning starts"""
    hidden_sizes: tuple[int, ...] = default((64, 64))
    """hidden layer widths of actors and critics"""
    seed: int = 0
    """PRNG seed; a sweep's --seeds N members get seed, seed + 1, ..., seed + N - 1"""
    # Sweepable hyperparameters (defaults; a sweep passes arrays instead).
    actor_lr: float = default(2e-3)
    """actor Adam learning rate"""
    critic_lr: float = default(6e-3)
    """critic Adam learning rate"""
    gamma: float = default(0.99)
    """discount factor, in (0, 1]"""
    tau: float = default(0.02)
    """Polyak averaging rate of the target networks, in (0, 1]"""
    noise_std: float = default(0.1)
    """std of Gaussian exploration noise on continuous actions"""
    gumbel_temperature: float = default(1.0)
    """Gumbel-softmax temperature for discrete actions"""
    # Stabilisers (MATD3 and friends); plain MADDPG is twin_critics=False,
    # target_noise=0, actor_delay=1, critic_layer_norm=False, huber_delta=0, grad_clip=0.
    twin_critics: bool = default(True)
    """two critics per agent and the minimum of their targets (clipped double-Q)"""
    target_noise: float = default(0.2)
    """std of the target policy smoothing noise (0 = off)"""
    target_noise_clip: float = default(0.5)
    """clip of the target policy smoothing noise"""
    actor_delay: int = default(1)
    """update actors and targets every this many critic updates"""
    critic_layer_norm: bool = default(True)
    """layer norm after every hidden layer of the critic"""
    huber_delta: float = default(1.0)
    """Huber critic loss with this delta (0 = squared error)"""
    grad_clip: float = default(1.0)
    """clip gradients to this global norm (0 = off)"""
    action_penalty: float = default(1.0)
    """weight of mean(pre_tanh_action^2) in the actor loss, against saturation (continuous)"""
    logit_penalty: float = default(0.0)
    """weight of mean(logits^2) in the actor loss (discrete), as the MADDPG paper's code
    regularises its policy's outputs"""
    gumbel_mode: Literal["hard", "soft"] = default("hard")
    """discrete actions: 'hard' acts with a sampled choice, trains the actor through a straight-through
    one-hot Gumbel-softmax sample and takes the target actors' greedy choices; 'soft' (the MADDPG paper's
    code) uses the soft sample softmax((logits + Gumbel noise) / T) for all three and hands it to the env
    (an env that takes probability vectors: the paper:* scenarios)"""
    grad_clip_scope: Literal["global", "tensor"] = default("global")
    """grad_clip applies to the global norm of an agent's gradients, or to each tensor's norm (the paper's
    code, tf.clip_by_norm per variable; needs --no-flat-params). With squared error the critic's threshold
    is halved per tensor: its loss is half the paper's mean squared error, so the clipped step is the same"""
    warmup_actions: Literal["random", "policy"] = default("random")
    """what acts before learning starts (warmup_env_steps): uniformly random actions, or the initial
    policy with its exploration (the paper's code acts with its policy from the first step)"""
    keep_best: bool = default(True)
    """with eval_episodes > 0, keep the best evaluated actors for eval and checkpoints; off keeps the
    latest (evaluations are still run and reported)"""
    n_step: int = default(3)
    """critic targets from n-step returns: the discounted rewards of n consecutive steps of one
    env, then the target critics' bootstrap (cut short where the episode ended); 1 = MADDPG's
    one-step target"""
    n_step_mix: bool = default(True)
    """with n_step > 1: the critic's target is the mean of the 1-, 2-, ..., n-step targets (a
    truncated lambda-return with equal weights): faster than one-step targets, with less of the
    n-step target's bias from other agents' exploratory actions"""
    lr_decay: Literal["linear", "late", "none"] = default("late")
    """learning-rate schedule: 'linear' anneals both rates to 0 at total_env_steps, 'late' holds them
    for the first half and then anneals to 0, 'none' keeps them"""
    noise_decay: Literal["linear", "late", "none"] = default("none")
    """exploration schedule, over update rounds as lr_decay: the exploration noise (continuous:
    the Gaussian's std; discrete: the Gumbel noise's scale, i.e. the sampling temperature) falls
    from 1x to noise_final x, 'linear' over the run or 'late' in its second half; 'none' keeps it"""
    noise_final: float = default(0.0)
    """the exploration noise's multiplier at the end of noise_decay, in [0, 1]"""
    explore_temperature: float = default(1.0)
    """discrete actions: acting samples softmax(logits / T) (the Gumbel noise scaled by T, on
    top of noise_decay's factor); 1 samples the policy's own softmax, below 1 sharper, 0 the
    greedy action. The actor's loss is unchanged (gumbel_temperature relaxes it)"""
    prng_impl: Literal["threefry2x32", "unsafe_rbg"] = default("threefry2x32")
    """random-number generator of the training loop's keys: 'unsafe_rbg' draws (and splits keys)
    with XLA's one-op RngBitGenerator, 'threefry2x32' is JAX's default, a rolled loop of about
    90 kernels per draw on CPU"""
    reward_scale: float = default(1.0)
    """multiply rewards by this in the critic target (Q then scales with it)"""
    scale_obs: bool = default(False)
    """divide network inputs by the env's typical observation magnitudes (env.obs_scale)"""
    critic_mode: str = default("joint")
    """what each agent's critic sees: 'joint' (MADDPG: every agent's observation and action),
    'local' (independent DDPG: its own only), or per team, e.g. 'adversary=local,agent=joint'"""
    ensemble_size: int = default(1)
    """K sub-policies per agent (Lowe et al. 2017, Section 4.3): every env draws one per team at each
    episode start, each sub-policy learns from the transitions it collected, the critics are shared;
    1 = one policy per agent"""
    infer_policies: bool = default(False)
    """each agent learns an approximation of every other agent's policy from their actions in the
    replay buffer, and its critic's targets take the approximations' actions instead of the other
    agents' target actors (Lowe et al. 2017, Section 4.2: MADDPG without access to the others' policies)"""
    infer_entropy: float = default(1e-3)
    """with infer_policies: weight of each approximation's entropy in its loss (the paper's lambda)"""
    infer_batch: Literal["latest", "uniform"] = default("latest")
    """with infer_policies: what the approximations learn from in each update round: the batch_size
    transitions written last (the paper's 'latest samples of each agent from the replay buffer', so
    they follow the policies as they are now) or the round's minibatch drawn uniformly from the buffer"""
    infer_lr: Literal["actor", "critic"] = default("actor")
    """with infer_policies: which learning rate the approximations take, the actors' or the critics'
    (each with its schedule, and as PBT moves it)"""
    flat_params: bool = default(True)
    """keep each agent's parameters (and their optimiser moments and targets) as one flat vector:
    the same values, in fewer and larger kernels per update"""
    final_layer_init: float = default(3e-3)
    """last layer weights and biases ~ U(-x, x) (0 = flax default)"""
    data_parallel: bool = default(False)
    """spread a single run's envs, buffer and batch over all devices, averaging gradients
    (for several GPUs; on a CPU the per-update synchronisation costs more than it saves)"""
    log_every: int = default(2048)
    """env steps between logged metrics rows (rounded up to whole vectorised steps)"""
    eval_episodes: int = default(16)
    """noise-free episodes that evaluate the actors every eval_every env steps; the best
    evaluated actors are kept for eval and checkpoints (0 = off: keep the last actors)"""
    eval_every: int = default(10_240)
    """env steps between noise-free evaluations (and between the host's progress reports)"""

    def __post_init__(self):
        resolve(self)
        validate(self)

    # -- derived --------------------------------------------------------------------------

    @property
    def num_iterations(self) -> int:
        """Vectorised env steps in the run."""
        return self.total_env_steps // self.num_envs

    @property
    def warmup_iterations(self) -> int:
        return min(math.ceil(self.warmup_env_steps / self.num_envs), self.num_iterations)

    @property
    def log_interval(self) -> int:
        """Iterations between logged rows: fixed by ``log_every``, not by the run's length,
        so a resumed run logs exactly the rows an uninterrupted one would."""
        return max(1, math.ceil(self.log_every / self.num_envs))

    @property
    def eval_interval(self) -> int:
        """Iterations between noise-free evaluations (policy selection): ``eval_every`` env
        steps rounded up to whole log intervals. Evaluations fall on multiples of it,
        counted from the run's start, so a resumed run evaluates where a straight one does."""
        k = self.log_interval
        return max(k, math.ceil(self.eval_every / self.num_envs / k) * k)

    @property
    def chunk_iterations(self) -> int:
        """Iterations per compiled chunk between host work: one evaluation interval."""
        return self.eval_interval

    def key(self, seed: int) -> jax.Array:
        """The training key of ``seed``: ``jax.random.key(seed)`` with this config's
        ``prng_impl`` (what ``make_train(config)(key, hparams)`` expects)."""
        return jax.random.key(seed, impl=self.prng_impl)

    def hparams(self) -> HParams:
        """This config's hyperparameters as float32 scalars."""
        return HParams(**{n: jnp.float32(getattr(self, n)) for n in HPARAM_NAMES})

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready: every field resolved (``env_kwargs`` with the env's defaults filled in)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["hidden_sizes"] = list(self.hidden_sizes)
        d["env_kwargs"] = dict(self.env_kwargs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown config field(s) {unknown}")
        d = dict(d)
        if not isinstance(d.get("env_kwargs", {}), dict):
            raise ConfigError("env_kwargs", f"must be a mapping, got {d['env_kwargs']!r}")
        if "hidden_sizes" in d and isinstance(d["hidden_sizes"], list):
            d["hidden_sizes"] = tuple(d["hidden_sizes"])
        for name, value in added_fields(d).items():
            d.setdefault(name, value)
        return cls(**d)


# Fields added after runs were saved, with the value that reproduces how those runs ran: a run
# saved before n_step_mix existed ran its n-step targets unmixed, one saved before the paper's
# extensions had one policy per agent and no inferred policies.
ADDED_FIELDS = {
    "n_step_mix": False,
    "ensemble_size": 1,
    "infer_policies": False,
    "infer_entropy": 1e-3,
    "infer_lr": "actor",
}


def added_fields(saved: dict) -> dict:
    """`ADDED_FIELDS`, and the fields whose value for a run saved before them depends on the
    run: one with inferred policies saved before ``infer_batch`` fitted them on the uniform
    minibatch; without inferred policies the field has no effect and takes today's default."""
    inferred = saved.get("infer_policies", False)
    return {**ADDED_FIELDS, "infer_batch": "uniform" if inferred else global_default("infer_batch")}


def changed_on_resume(saved: dict, now: dict) -> list[tuple[str, Any, Any]]:
    """``(name, saved value, new value)`` of every config field, and every env argument, in
    which ``now`` differs from ``saved`` (both as `Config.to_dict` gives them): what a
    resumed run may not change. Only ``total_env_steps`` may. A field ``saved`` predates
    counts as its `added_fields` value."""
    saved = {**{k: v for k, v in added_fields(saved).items() if k in now}, **saved}
    out = []
    for name in sorted(set(saved) | set(now)):
        if name == "total_env_steps":
            continue
        if name == "env_kwargs":
            a, b = saved.get(name) or {}, now.get(name) or {}
            out += [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif saved.get(name) != now.get(name):
            out.append((name, saved.get(name), now.get(name)))
    return out


CRITIC_MODES = ("joint", "local")


def parse_critic_mode(text: str) -> str | dict[str, str]:
    """``joint`` / ``local`` for every team, or ``{team: mode}`` from ``team=mode,...``.
    Raises ValueError saying what is allowed."""
    text = text.strip()
    if text in CRITIC_MODES:
        return text
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        team, sep, mode = item.partition("=")
        if not sep or not team or mode not in CRITIC_MODES:
            raise ValueError(f"expected 'joint', 'local' or team=joint|local[,team=...], got {text!r}")
        out[team] = mode
    if not out:
        raise ValueError(f"expected 'joint', 'local' or team=joint|local[,team=...], got {text!r}")
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_hparam(name: str, value) -> None:
    """Raise `ConfigError` unless ``value`` is allowed for hyperparameter ``name``."""
    if not _is_num(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    if name in ("actor_lr", "critic_lr", "gumbel_temperature") and not value > 0:
        raise ConfigError(name, f"must be > 0, got {value!r}")
    if name in ("gamma", "tau") and not 0 < value <= 1:
        raise ConfigError(name, f"must be in (0, 1], got {value!r}")
    if name == "noise_std" and value < 0:
        raise ConfigError(name, f"must be >= 0, got {value!r}")


# Fields that take one of a few words, and the words.
CHOICES = {
    "prng_impl": ("threefry2x32", "unsafe_rbg"),
    "lr_decay": ("linear", "late", "none"),
    "noise_decay": ("linear", "late", "none"),
    "gumbel_mode": ("hard", "soft"),
    "grad_clip_scope": ("global", "tensor"),
    "warmup_actions": ("random", "policy"),
    "infer_batch": ("latest", "uniform"),
    "infer_lr": ("actor", "critic"),
}


def validate(c: Config) -> None:
    """Check every field; raise `ConfigError` naming the first bad one."""
    for name in (
        "num_envs",
        "batch_size",
        "buffer_size",
        "updates_per_step",
        "total_env_steps",
        "actor_delay",
        "n_step",
        "ensemble_size",
    ):
        v = getattr(c, name)
        if not _is_int(v) or v < 1:
            raise ConfigError(name, f"must be an integer >= 1, got {v!r}")
    for name in ("warmup_env_steps", "seed", "eval_episodes"):
        v = getattr(c, name)
        if not _is_int(v) or v < 0:
            raise ConfigError(name, f"must be an integer >= 0, got {v!r}")
    if not _is_int(c.eval_every) or c.eval_every < 1:
        raise ConfigError("eval_every", f"must be an integer >= 1, got {c.eval_every!r}")
    if not _is_int(c.log_every) or c.log_every < 1:
        raise ConfigError("log_every", f"must be an integer >= 1, got {c.log_every!r}")
    if c.batch_size > c.buffer_size:
        raise ConfigError("batch_size", f"must be <= buffer_size ({c.buffer_size}), got {c.batch_size}")
    if c.n_step * c.num_envs > c.buffer_size:
        raise ConfigError(
            "n_step", f"must be <= buffer_size / num_envs ({c.buffer_size // c.num_envs}), got {c.n_step}"
        )
    if c.total_env_steps < c.num_envs:
        raise ConfigError("total_env_steps", f"must be >= num_envs ({c.num_envs}), got {c.total_env_steps}")
    if (
        not isinstance(c.hidden_sizes, tuple)
        or not c.hidden_sizes
        or not all(_is_int(h) and h >= 1 for h in c.hidden_sizes)
    ):
        raise ConfigError("hidden_sizes", f"must be one or more integers >= 1, got {c.hidden_sizes!r}")
    for name in HPARAM_NAMES:
        check_hparam(name, getattr(c, name))
    if not _is_num(c.reward_scale) or c.reward_scale <= 0:
        raise ConfigError("reward_scale", f"must be a finite number > 0, got {c.reward_scale!r}")
    nonneg = ("target_noise", "target_noise_clip", "huber_delta", "grad_clip", "final_layer_init")
    for name in (*nonneg, "action_penalty", "logit_penalty", "infer_entropy"):
        v = getattr(c, name)
        if not _is_num(v) or v < 0:
            raise ConfigError(name, f"must be a finite number >= 0, got {v!r}")
    if not isinstance(c.critic_mode, str):
        raise ConfigError("critic_mode", f"must be a string, got {c.critic_mode!r}")
    try:
        parse_critic_mode(c.critic_mode)
    except ValueError as e:
        raise ConfigError("critic_mode", str(e)) from None
    for name, allowed in CHOICES.items():
        if getattr(c, name) not in allowed:
            raise ConfigError(name, f"must be one of {list(allowed)}, got {getattr(c, name)!r}")
    if not _is_num(c.explore_temperature) or c.explore_temperature < 0:
        raise ConfigError("explore_temperature", f"must be a number >= 0, got {c.explore_temperature!r}")
    if not _is_num(c.noise_final) or not 0 <= c.noise_final <= 1:
        raise ConfigError("noise_final", f"must be a number in [0, 1], got {c.noise_final!r}")
    if c.grad_clip_scope == "tensor" and c.flat_params is True:
        raise ConfigError("grad_clip_scope", "'tensor' clips each tensor of an agent, which needs flat_params off")
    names = (
        "twin_critics",
        "critic_layer_norm",
        "scale_obs",
        "flat_params",
        "data_parallel",
        "n_step_mix",
        "keep_best",
        "infer_policies",
    )
    for name in names:
        if not isinstance(getattr(c, name), bool):
            raise ConfigError(name, f"must be true or false, got {getattr(c, name)!r}")
