"""Host side of a run: chunks of the compiled loop, with logs, checkpoints and plots between.

``train`` is a session of one member; ``sweep`` of many. Host code runs only between
compiled chunks; inside a chunk there is no host round trip.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from maddpg_jax import rundir
from maddpg_jax.config import HPARAM_NAMES, Config, HParams
from maddpg_jax.parallel import MemberRunner, fetch
from maddpg_jax.train import make_trainer

SOLVED = 475.0
LOGGED = ("mean_return", "critic_loss", "actor_loss", "q_mean", "episodes")
WINDOW_LOSSES = ("critic_loss", "actor_loss", "q_mean")  # the order of metrics["window_losses"]


class Interrupted(Exception):
    pass


def member_hparams(config: Config, members: list[dict]) -> HParams:
    """Stack every member's hyperparameters: each leaf [members] float32."""
    cols = {n: [float(m.get(n, getattr(config, n))) for m in members] for n in HPARAM_NAMES}
    return HParams(**{n: jnp.asarray(v, jnp.float32) for n, v in cols.items()})


def member_keys(members: list[dict]):
    return jnp.stack([jax.random.key(int(m["seed"])) for m in members])


def estimate_state_bytes(runner: MemberRunner, keys, hp) -> int:
    init = jax.vmap(runner.trainer.init)
    shapes = jax.eval_shape(lambda k, h: rundir.keys_to_data(init(k, h)), keys, hp)
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def device_memory_bytes() -> int | None:
    dev = jax.devices()[0]
    try:
        stats = dev.memory_stats()
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"]) * len(jax.devices())
    except Exception:  # CPU devices have no memory_stats
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def data_parallel_devices(config: Config, num_members: int) -> int:
    """Devices one run is spread over: all of them for a single member when the config
    asks for it and its envs, batch and buffer divide evenly; otherwise 1."""
    d = len(jax.devices())
    if num_members != 1 or not config.data_parallel or d == 1:
        return 1
    if any(getattr(config, n) % d for n in ("num_envs", "batch_size", "buffer_size")):
        return 1
    return d


def build(config: Config, members: list[dict], member_chunk: int | None = None):
    """(trainer, runner, members as placed): members over devices, or one data-parallel run.
    ``member_chunk``: see :class:`~maddpg_jax.parallel.MemberRunner`."""
    shards = data_parallel_devices(config, len(members))
    if shards > 1:
        trainer = make_trainer(config, data_axis="members", data_shards=shards)
        return trainer, MemberRunner(trainer, shards), members * shards
    trainer = make_trainer(config)
    return trainer, MemberRunner(trainer, len(members), member_chunk=member_chunk), members


class Session:
    def __init__(self, out: Path, config: Config, members: list[dict], resume: bool, progress: bool = True,
                 tensorboard: bool = False, max_memory_gib: float | None = None,
                 member_chunk: int | None = None):
        self.out, self.config, self.members = Path(out), config, members
        self.resume, self.progress, self.tensorboard = resume, progress, tensorboard
        self.max_memory_gib = max_memory_gib
        self.member_chunk = member_chunk
        self.sweep = len(members) > 1 or "actor_lr" in members[0]
        self._signal = None
        # In a multi-process job every process computes; process 0 alone writes files
        # (orbax coordinates the checkpoint itself and needs every process to call it).
        self.primary = jax.process_index() == 0

    # -- signals: finish the chunk, checkpoint, exit 130 / 143 -------------------------------

    def _on_signal(self, signum, frame):
        if self._signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._signal = signum
        print(f"\n{signal.Signals(signum).name}: finishing the current chunk and saving a checkpoint...",
              file=sys.stderr)

    def run(self) -> int:
        from maddpg_jax.cli import UsageError

        c = self.config
        if self.resume and not rundir.has_checkpoint(self.out):  # before any compile
            raise UsageError(f"--resume: {self.out} has no checkpoint to resume from")
        trainer, runner, placed = build(c, self.members, self.member_chunk)
        hp = member_hparams(c, placed)
        keys = member_keys(placed)
        need = estimate_state_bytes(MemberRunner(make_trainer(c), len(self.members)),
                                    member_keys(self.members), member_hparams(c, self.members))
        limit = self.max_memory_gib * 2**30 if self.max_memory_gib else device_memory_bytes()
        if limit is not None and need > limit:
            raise UsageError(
                f"--max-memory: the state needs about {need / 2**30:.2f} GiB ({len(self.members)} member(s); the "
                f"replay buffers take most) but only {limit / 2**30:.2f} GiB is available; lower --buffer-size, "
                f"--num-envs or the number of members")
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt = rundir.Checkpoints(self.out)
        hp_p, keys_p = runner.place(hp), runner.place(keys)
        state = runner.init(keys_p, hp_p)
        start_iter, wall0 = 0, 0.0
        if self.resume:
            step = ckpt.latest_step()
            if step is None:
                raise UsageError(f"--resume: {self.out} has no checkpoint to resume from")
            try:
                state, meta = ckpt.restore(step, state, c.to_dict())
            except rundir.CheckpointError as e:
                raise UsageError(f"--resume: {e} in {self.out}; not loaded")
            start_iter, wall0 = int(meta["iteration"]), float(meta["wall_s"])
            if start_iter >= c.num_iterations:
                print(f"{self.out} is already at {start_iter * c.num_envs} env steps; nothing to do")
                return 0
            if self.primary:
                # Keep the rows an uninterrupted run would have: up to the checkpoint, and not
                # the previous run's closing row when it fell between log intervals.
                rundir.truncate_metrics(self.out / rundir.METRICS, start_iter * c.num_envs,
                                        every_env_steps=c.log_interval * c.num_envs)
        elif self.primary:
            rundir.write_json(self.out / rundir.CONFIG, {"config": c.to_dict(), "members": self.members})
            rundir.atomic_write_text(self.out / rundir.METRICS, "")

        plan = self._plan(start_iter)
        bar = self._bar(start_iter)
        tb = self._tb_writer()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        t0 = time.perf_counter() - wall0
        it = start_iter
        status = 0
        try:
            for n, learn in plan:
                t_chunk = time.perf_counter()
                new_state, m = runner.run(state, hp_p, n, learn)
                m = fetch(m)
                now = time.perf_counter() - t0
                bad = np.asarray(m["nonfinite"])[: len(self.members)]
                if bad.any():
                    member, i = np.argwhere(bad)[0]
                    what = [k for k in ("critic_loss", "actor_loss", "q_mean") if not np.isfinite(m[k][member, i])]
                    print(f"\nstopped: non-finite {', '.join(what) or 'value'} at env step "
                          f"{int(m['env_steps'][member, i])} (member {member}); the last good checkpoint "
                          f"(env step {it * c.num_envs}) is kept in {self.out}", file=sys.stderr)
                    status = 3
                    break
                state = new_state
                rows = self._rows(m, it, n, now - (time.perf_counter() - t_chunk), now)
                if self.primary:
                    rundir.append_jsonl(self.out / rundir.METRICS, rows)
                it += n
                ckpt.save(it, state, {"iteration": it, "wall_s": now, "config": c.to_dict(),
                                      "state_devices": runner.size})
                self._report(bar, tb, rows, it, n, time.perf_counter() - t_chunk)
                if self._signal is not None:
                    code = 130 if self._signal == signal.SIGINT else 143
                    print(f"saved a checkpoint at env step {it * c.num_envs}; continue with:\n  maddpg-jax "
                          f"{'sweep' if self.sweep else 'train'} --out {self.out} --resume --total-env-steps "
                          f"{c.total_env_steps}", file=sys.stderr)
                    return code
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()
            ckpt.close()
        self._finish()
        return status

    # -- pieces ---------------------------------------------------------------------------

    def _plan(self, start: int) -> list[tuple[int, bool]]:
        """Chunks from ``start``: the warm-up, then learning chunks of ``chunk_iterations``."""
        c = self.config
        w, n, k = c.warmup_iterations, c.num_iterations, c.chunk_iterations
        plan = []
        it = start
        while it < n:
            learn = it >= w
            end = min(n, w if not learn else it + k)
            if not learn:
                end = min(end, it + k * 4)
            plan.append((end - it, learn))
            it = end
        return plan

    def _rows(self, m, it0: int, n: int, wall_start: float, wall_end: float) -> list[dict]:
        c = self.config
        k = c.log_interval
        rows = []
        for j in range(n):
            i = it0 + j + 1  # iterations done after this one
            if i % k and i != c.num_iterations:
                continue
            for mi in range(len(self.members)):
                row = {"env_steps": i * c.num_envs,
                       "wall_s": round(wall_start + (wall_end - wall_start) * (j + 1) / n, 3)}
                if self.sweep:
                    row["member"] = mi
                row["mean_return"] = rundir.to_python(m["mean_return"][mi, j])
                row["episodes"] = rundir.to_python(m["episodes"][mi, j])
                # Losses: means over the interval, accumulated on the device (see TrainState).
                for key, v in zip(WINDOW_LOSSES, m["window_losses"][mi, j]):
                    row[key] = rundir.to_python(v)
                rows.append(row)
        return rows

    def _bar(self, start_iter: int):
        if not self.progress or not self.primary:
            return None
        from tqdm import tqdm

        c = self.config
        return tqdm(total=c.num_iterations * c.num_envs, initial=start_iter * c.num_envs, unit="step",
                    unit_scale=True, dynamic_ncols=True, desc="train" if not self.sweep else "sweep")

    def _tb_writer(self):
        if not self.tensorboard or not self.primary:
            return None
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            from maddpg_jax.cli import UsageError

            raise UsageError("--tensorboard: needs tensorboardX (pip install tensorboardX)")
        return SummaryWriter(str(self.out / "tb"))

    def _report(self, bar, tb, rows, it, n, dt):
        c = self.config
        last = [r for r in rows if r["env_steps"] == rows[-1]["env_steps"]] if rows else []
        rets = [r["mean_return"] for r in last if r["mean_return"] is not None]
        if bar is not None:
            bar.update(n * c.num_envs)
            bar.set_postfix({"steps/s": f"{n * c.num_envs * len(self.members) / dt:,.0f}",
                             "mean_return": f"{np.mean(rets):.1f}" if rets else "-"}, refresh=True)
        if tb is not None:
            for r in rows:
                for key in LOGGED:
                    if r[key] is not None:
                        tag = key if not self.sweep else f"{key}/member{r['member']}"
                        tb.add_scalar(tag, r[key], r["env_steps"])

    def _finish(self):
        if not self.primary:
            return
        rows = rundir.read_jsonl(self.out / rundir.METRICS)
        series = {}
        for r in rows:
            if r["mean_return"] is None:
                continue
            name = f"member {r['member']}" if self.sweep else "mean return"
            xs, ys = series.setdefault(name, ([], []))
            xs.append(r["env_steps"])
            ys.append(r["mean_return"])
        from maddpg_jax.plotting import plot_curves

        c = self.config
        title = f"{c.env} {c.num_agents} agents, {c.action_type}" + (f", k={c.coupling:g}" if c.env.startswith("Multi") else "")
        plot_curves(series, self.out / rundir.CURVE, title=title, solved=SOLVED if c.env.startswith("Multi") else None)
        print(f"\nrun directory: {self.out}")
        print(f"  config:      {self.out / rundir.CONFIG}")
        print(f"  metrics:     {self.out / rundir.METRICS}")
        print(f"  curve:       {self.out / rundir.CURVE}")
        print(f"  checkpoints: {self.out / rundir.CHECKPOINTS}")
        if self.sweep:
            self._summary(rows)

    def _summary(self, rows):
        c = self.config
        summary = []
        for mi, m in enumerate(self.members):
            mine = [r for r in rows if r.get("member") == mi and r["mean_return"] is not None]
            solved = next((r["env_steps"] for r in mine if r["mean_return"] >= SOLVED), None)
            summary.append({
                "member": mi,
                "seed": m["seed"],
                **{n: float(m.get(n, getattr(c, n))) for n in HPARAM_NAMES},
                "final_mean_return": mine[-1]["mean_return"] if mine else None,
                "best_mean_return": max((r["mean_return"] for r in mine), default=None),
                "solved_at_env_steps": solved if c.env.startswith("Multi") else None,
            })
        rundir.atomic_write_text(self.out / rundir.SUMMARY,
                                 "".join(__import__("json").dumps(s, sort_keys=True) + "\n" for s in summary))
        print(f"  summary:     {self.out / rundir.SUMMARY}\n")
        order = sorted(summary, key=lambda s: -(s["final_mean_return"] or -1e9))
        cols = ["member", "seed", *HPARAM_NAMES, "final", "best", "solved_at"]
        print(" | ".join(cols))
        for s in order:
            vals = [s["member"], s["seed"], *[f"{s[n]:g}" for n in HPARAM_NAMES],
                    f"{s['final_mean_return']:.1f}" if s["final_mean_return"] is not None else "-",
                    f"{s['best_mean_return']:.1f}" if s["best_mean_return"] is not None else "-",
                    s["solved_at_env_steps"] if s["solved_at_env_steps"] is not None else "-"]
            print(" | ".join(str(v) for v in vals))


# -- eval -------------------------------------------------------------------------------------




def read_run_for(run_dir: Path):
    """(config, members) of ``run_dir``, with one-line usage errors; compiles nothing."""
    from maddpg_jax.cli import UsageError

    try:
        config, members = rundir.read_run(run_dir)
    except rundir.NoRunError:
        raise UsageError(f"run_dir: {run_dir} is not a run directory ({rundir.CONFIG} not found)")
    except ValueError as e:
        raise UsageError(f"run_dir: {e}")
    if not rundir.has_checkpoint(run_dir):
        raise UsageError(f"run_dir: {run_dir} has no checkpoint")
    return config, members


def load_run(run_dir: Path, config: Config, members: list[dict]):
    """(trainer, state) of the latest checkpoint in ``run_dir`` (see :func:`read_run_for`)."""
    from maddpg_jax.cli import UsageError

    ckpt = rundir.Checkpoints(run_dir)
    step = ckpt.latest_step()
    trainer, runner, placed = build(config, members)
    hp, keys = runner.place(member_hparams(config, placed)), runner.place(member_keys(placed))
    try:
        state, _ = ckpt.restore(step, runner.init(keys, hp), config.to_dict())
    except rundir.CheckpointError as e:
        raise UsageError(f"run_dir: {e} in {run_dir}; not loaded")
    finally:
        ckpt.close()
    return trainer, state


def evaluate(run_dir: Path, episodes: int, member: int, seed: int, gif: str | None) -> int:
    from maddpg_jax.cli import UsageError

    config, members = read_run_for(run_dir)
    if gif and config.env != "MultiCartPole-v0":
        raise UsageError("--gif: drawing is implemented for MultiCartPole-v0 runs only")
    if not 0 <= member < len(members):
        raise UsageError(f"--member: must be in [0, {len(members) - 1}], got {member}")
    trainer, state = load_run(run_dir, config, members)
    actor = jax.tree.map(lambda x: x[member], state.agents.actor)
    returns = episode_returns(trainer, actor, episodes, jax.random.key(seed))
    print(f"{run_dir}: {episodes} episodes, no exploration noise: mean return {returns.mean():.1f} "
          f"+- {returns.std():.1f} (min {returns.min():.0f}, max {returns.max():.0f})")
    if gif:
        from maddpg_jax.render import episode_gif

        frames = rollout_states(trainer, actor, jax.random.key(seed + 1))
        episode_gif(frames, trainer.env, trainer.env_params, gif)
        print(f"wrote {gif}")
    return 0


def _horizon(trainer) -> int:
    return int(getattr(trainer.env_params, "max_steps", 500))


def episode_returns(trainer, actor_params, episodes: int, key) -> np.ndarray:
    """Return of the first episode in each of ``episodes`` envs under the greedy policy."""
    import envs

    venv = envs.VecEnv(trainer.env, episodes)
    k_reset, k_run = jax.random.split(key)

    @jax.jit
    def run(key):
        obs, s = venv.reset(k_reset, trainer.env_params)

        def body(carry, k):
            obs, s, ret, alive = carry
            a = trainer.policy(actor_params, obs)
            obs, s, r, term, trunc, _ = venv.step(k, s, a, trainer.env_params)
            ret = ret + jnp.where(alive, r.mean(-1), 0.0)
            alive = alive & ~jnp.any(term | trunc, -1)
            return (obs, s, ret, alive), None

        init = (obs, s, jnp.zeros(episodes), jnp.ones(episodes, bool))
        return jax.lax.scan(body, init, jax.random.split(key, _horizon(trainer)))[0][2]

    return np.asarray(run(k_run))


def rollout_states(trainer, actor_params, key) -> list:
    """Cart states [A, 4] of one greedy MultiCartPole episode, first to last, for drawing."""
    env, p = trainer.env, trainer.env_params
    k_reset, k_run = jax.random.split(key)
    obs, s = env.reset(k_reset, p)

    @jax.jit
    def run(s, obs):
        def body(carry, k):
            s, obs, alive = carry
            a = trainer.policy(actor_params, obs)
            obs, s2, r, term, trunc, info = env.step(k, s, a, p)
            return (s2, obs, alive & ~jnp.any(term | trunc)), (s.carts, alive)

        return jax.lax.scan(body, (s, obs, jnp.bool_(True)), jax.random.split(k_run, _horizon(trainer)))[1]

    frames, alive = jax.device_get(run(s, obs))
    return [f for f, a in zip(frames, alive) if a]
