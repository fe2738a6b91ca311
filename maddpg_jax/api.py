"""Training into a run directory from Python: what ``maddpg-jax train`` and ``maddpg-jax
sweep`` do, as functions (the CLI calls them).

    from maddpg_jax import Config, train, sweep
    summary = train(Config(total_env_steps=100_000), out="runs/demo")
    rows = sweep(Config(total_env_steps=100_000), members=4, out="runs/seeds")

Both write the run directory the CLI writes (``config.json``, ``metrics.jsonl``,
checkpoints, the learning curve; a sweep also ``summary.jsonl``), resume with
``resume=True``, and refuse what the CLI refuses, raising
`UsageError` with the CLI's one-line message.
"""

from __future__ import annotations

from pathlib import Path

from maddpg_jax.config import HPARAM_NAMES, Config, ConfigError, changed_on_resume, check_hparam
from maddpg_jax.errors import RunStopped, UsageError


def check_out(out: Path, resume: bool) -> None:
    """A new run may reuse a directory that holds no checkpoint (an earlier start that was
    interrupted or failed before its first one); one with a checkpoint needs ``resume``."""
    from maddpg_jax import rundir

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} is a file, not a directory")
    if not resume and rundir.has_checkpoint(out):
        raise UsageError(f"--out: {out} already holds a run; pass --resume to continue it or choose another --out")


def resumed(out: Path, config: Config | None, command: str) -> tuple[Config, list[dict]]:
    """The saved run's config, with ``config.total_env_steps`` when a config is given (every
    other field must match the saved one), and its members."""
    from maddpg_jax import rundir

    saved, members = rundir.read_run_as(out, "--resume")
    pbt_run = rundir.is_pbt_run(out)
    if pbt_run != (command == "pbt"):
        made_by = "pbt" if pbt_run else "train or sweep"
        raise UsageError(f"--resume: {out} was made by {made_by}; continue it with that command")
    if config is None:
        return saved, members
    for name, old, new in changed_on_resume(saved.to_dict(), config.to_dict())[:1]:
        raise UsageError(
            f"--{name.replace('_', '-')}: cannot change on --resume (the run has {old!r}, got {new!r}); "
            f"only --total-env-steps may change"
        )
    return saved.replace(total_env_steps=config.total_env_steps), members


def check_members(config: Config, members) -> list[dict]:
    """``members`` as a list of member dicts: an int ``n`` is ``n`` seeds from
    ``config.seed``; each dict needs an integer ``seed`` and may set sweepable
    hyperparameters (`HPARAM_NAMES`)."""
    from maddpg_jax import members as members_lib

    if isinstance(members, int) and not isinstance(members, bool):
        if members < 1:
            raise UsageError(f"--seeds: must be an integer >= 1, got {members}")
        return members_lib.seed_members(config, members)
    if not isinstance(members, (list, tuple)) or not members:
        raise UsageError(f"members: expected a number of seeds or a non-empty list of dicts, got {members!r}")
    out = []
    for i, m in enumerate(members):
        if not isinstance(m, dict) or not isinstance(m.get("seed"), int) or isinstance(m.get("seed"), bool):
            raise UsageError(f"members[{i}]: expected a dict with an integer 'seed', got {m!r}")
        unknown = sorted(set(m) - {"seed", *HPARAM_NAMES})
        if unknown:
            raise UsageError(f"members[{i}]: unknown key(s) {unknown}; allowed: seed, {', '.join(HPARAM_NAMES)}")
        for name in HPARAM_NAMES:
            if name in m:
                try:
                    check_hparam(name, m[name])
                except ConfigError as e:
                    raise UsageError(f"members[{i}].{name}: {e.message}") from None
        out.append(dict(m))
    return out


def run(
    out: Path | str,
    config: Config,
    members: list[dict],
    *,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
    wandb_project: str | None = None,
    checkpoint_every: float | None = None,
    **options,
) -> tuple[int, list[dict]]:
    """Train ``members`` of ``config`` into ``out``: ``(exit status, summary rows)``, the
    status the CLI exits with (0 done, 3 stopped on non-finite values, 130 / 143 stopped by
    SIGINT / SIGTERM after a checkpoint). ``options`` go to
    `Session` (``member_chunk``, ``max_memory_gib``, ``pbt``)."""
    from maddpg_jax.session import CHECKPOINT_EVERY_S, Session

    if checkpoint_every is None:
        checkpoint_every = CHECKPOINT_EVERY_S
    if not isinstance(checkpoint_every, (int, float)) or not checkpoint_every >= 0:
        raise UsageError(f"--checkpoint-every: must be a number of seconds >= 0, got {checkpoint_every!r}")
    session = Session(
        Path(out),
        config,
        members=members,
        resume=resume,
        progress=progress,
        tensorboard=tensorboard,
        wandb_project=wandb_project,
        checkpoint_every=float(checkpoint_every),
        **options,
    )
    status = session.run()
    return status, session.summary


def _stopped(status: int, out: Path) -> None:
    if status == 3:
        raise RunStopped(status, f"stopped on non-finite values; the last good checkpoint is kept in {out}")
    if status in (130, 143):
        raise RunStopped(status, f"stopped by a signal after a checkpoint; continue with resume=True in {out}")


def train(
    config: Config,
    out: Path | str = "runs/train",
    *,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
    wandb_project: str | None = None,
    checkpoint_every: float | None = None,
) -> dict:
    """Train one run into ``out``, as ``maddpg-jax train`` does.

    Args:
        config: what to train (``config.seed`` is the run's seed).
        out: the run directory; a new run needs one that holds no checkpoint.
        resume: continue the run in ``out`` to ``config.total_env_steps`` (every other
            field of ``config`` must equal the saved one).
        progress: a progress bar between chunks.
        tensorboard: also write TensorBoard events to ``out/tb``.
        wandb_project: also log to this Weights & Biases project.
        checkpoint_every: wall seconds between checkpoints (default 300; 0 = every chunk).

    Returns:
        dict: The run's summary, with ``seed``, the hyperparameters, ``final_mean_return``,
        ``best_mean_return`` and ``solved_at_env_steps`` (env steps, or None).

    Raises:
        UsageError: what the CLI refuses (a directory that holds a run, a resume without a
            checkpoint, a changed config on resume, too little memory), one line.
        RunStopped: the run stopped early (non-finite values, or SIGINT / SIGTERM after a
            checkpoint); ``status`` is the CLI's exit status.
        WriteFault: a file of the run could not be written (a full disk, a read-only
            folder): one line naming the file, the reason and the last good checkpoint.
    """
    out = Path(out)
    check_out(out, resume)
    members = [{"seed": config.seed}]
    if resume:
        config, members = resumed(out, config, "train")
    status, summary = run(
        out,
        config,
        members,
        resume=resume,
        progress=progress,
        tensorboard=tensorboard,
        wandb_project=wandb_project,
        checkpoint_every=checkpoint_every,
    )
    _stopped(status, out)
    return summary[0] if summary else {}


def sweep(
    config: Config,
    members: int | list[dict],
    out: Path | str = "runs/sweep",
    *,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
    wandb_project: str | None = None,
    checkpoint_every: float | None = None,
    member_chunk: int | None = None,
    max_memory_gib: float | None = None,
) -> list[dict]:
    """Train several members in one compiled program into ``out``, as ``maddpg-jax sweep``.

    Args:
        config: the shared settings; members take their seeds and any sweepable
            hyperparameters they set from ``members``, the rest from here.
        members: a number of seeds (``config.seed``, ``config.seed + 1``, ...) or a list of
            dicts, each ``{"seed": int}`` plus any of ``actor_lr``, ``critic_lr``,
            ``gamma``, ``tau``, ``noise_std``, ``gumbel_temperature``.
        out: the sweep directory; a new sweep needs one that holds no checkpoint.
        resume: continue the sweep in ``out`` (``members`` is then ignored: the saved ones
            go on).
        progress: a progress bar between chunks.
        tensorboard: also write TensorBoard events to ``out/tb``.
        wandb_project: also log to this Weights & Biases project.
        checkpoint_every: wall seconds between checkpoints (default 300; 0 = every chunk).
        member_chunk: members vmapped together on a device (speed, not results).
        max_memory_gib: refuse to start if the state would exceed this many GiB.

    Returns:
        list[dict]: One summary row per member (the rows of ``summary.jsonl``).

    Raises:
        UsageError: as `train`.
        RunStopped: as `train`.
        WriteFault: as `train`.
    """
    out = Path(out)
    check_out(out, resume)
    if member_chunk is not None and (not isinstance(member_chunk, int) or member_chunk < 1):
        raise UsageError(f"--member-chunk: must be an integer >= 1, got {member_chunk!r}")
    if resume:
        config, members = resumed(out, config, "sweep")
    else:
        members = check_members(config, members)
        if len(members) == 1 and not any(n in members[0] for n in HPARAM_NAMES):
            # A sweep directory even of one member (summary.jsonl, member fields).
            members = [{**members[0], **{n: getattr(config, n) for n in HPARAM_NAMES}}]
    status, summary = run(
        out,
        config,
        members,
        resume=resume,
        progress=progress,
        tensorboard=tensorboard,
        wandb_project=wandb_project,
        checkpoint_every=checkpoint_every,
        member_chunk=member_chunk,
        max_memory_gib=max_memory_gib,
    )
    _stopped(status, out)
    return summary
