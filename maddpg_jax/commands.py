"""The commands behind ``maddpg-jax`` (`maddpg_jax.cli` is the entry point): train,
eval, sweep and plot.

Flags are generated from `maddpg_jax.config.Config` (one flag per field, hyphens,
default and one line of help from the field's docstring). argparse rather than tyro:
bad input must end in exactly one line naming the flag and what is allowed (exit 2, no
traceback), and tyro reports errors as a multi-line panel; argparse's ``error`` is ours
to override, and it ships with Python.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import json
import math
import sys
import typing
from pathlib import Path

from maddpg_jax import envs
from maddpg_jax.api import check_out
from maddpg_jax.config import HPARAM_NAMES, Config, ConfigError, check_hparam, global_default
from maddpg_jax.errors import UsageError, WriteFault

# JAX computations start only after arguments are checked (bad input fails fast) and after
# CPU devices are configured (configure_host_devices must run before JAX's backend starts).


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _field_docs() -> dict[str, str]:
    """The string literal under each Config field, as its help text."""
    src = inspect.getsource(Config)
    body = ast.parse(src).body[0].body
    docs = {}
    for prev, node in zip(body, body[1:]):
        if isinstance(prev, ast.AnnAssign) and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docs[prev.target.id] = str(node.value.value)
    return docs


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,64, got {text!r}") from None


def _float_list(text: str) -> list[float]:
    items = [t.strip() for t in text.split(",")]
    try:
        values = [float(t) for t in items]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or comma-separated numbers like 1e-3,3e-4, got {text!r}"
        ) from None
    if not values or any(not math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _env_args() -> dict:
    """Every registered env's arguments by name: (the first EnvArg seen, envs that take it)."""
    args: dict = {}
    for name in envs.names():
        for a in envs.entry(name).args:
            args.setdefault(a.name, (a, []))[1].append(name)
    return args


def _parse_env_kwargs(text: str) -> dict:
    """``key=value,key=value`` -> dict, values typed by the env arguments of that name."""
    known = _env_args()
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected key=value[,key=value...], got {text!r}")
        arg = known.get(key, (None,))[0]
        kind = arg.type if arg is not None else str
        try:
            out[key] = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key}: expected {kind.__name__}, got {value!r}") from None
    return out


def _range(text: str) -> tuple[float, ...]:
    """``X`` (fixed) -> ``(x,)``; ``LOW:HIGH`` (a range PBT draws from) -> ``(low, high)``."""
    parts = text.split(":")
    try:
        values = [float(t) for t in parts]
    except ValueError:
        msg = f"expected a number or a range LOW:HIGH like 1e-4:1e-2, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if len(values) > 2 or any(not math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected a number or a range LOW:HIGH of finite numbers, got {text!r}")
    return tuple(values)


def _add_config_flags(p: argparse.ArgumentParser, sweep: bool, pbt: bool = False) -> None:
    docs = _field_docs()
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        name, default, hint = f.name, global_default(f.name), hints[f.name]
        if name == "env":
            p.add_argument(
                "--env",
                dest="env",
                default=None,
                metavar="NAME",
                help=f"environment, one of: {', '.join(envs.names())} (default: {default})",
            )
            continue
        if name == "env_kwargs":
            p.add_argument(
                "--env-kwargs",
                dest="env_kwargs",
                type=_parse_env_kwargs,
                default=None,
                metavar="K=V[,K=V...]",
                help="the env's own arguments, as an alternative to their flags",
            )
            continue
        help_ = f"{docs.get(name, '')} (default: {default})"
        kw = dict(dest=name, default=None, help=help_)
        if pbt and name in HPARAM_NAMES:
            kw["help"] = f"{docs.get(name, '')}: a value, or a range LOW:HIGH to draw and adapt (default: {default})"
            p.add_argument(_flag(name), type=_range, metavar="X|LOW:HIGH", **kw)
        elif sweep and name in HPARAM_NAMES:
            p.add_argument(_flag(name), type=_float_list, metavar="X[,Y...]", **kw)
        elif hint is bool:
            p.add_argument(_flag(name), action=argparse.BooleanOptionalAction, **kw)
        elif typing.get_origin(hint) is typing.Literal:
            p.add_argument(_flag(name), choices=typing.get_args(hint), **kw)
        elif name == "hidden_sizes":
            p.add_argument(_flag(name), type=_int_list, metavar="N[,N...]", **kw)
        else:
            p.add_argument(_flag(name), type=hint, **kw)
    g = p.add_argument_group("the env's own arguments (each env takes some of these; --env-kwargs is the same)")
    for name, (arg, takers) in _env_args().items():
        where = "all envs" if len(takers) == len(envs.names()) else ", ".join(takers)
        kw = dict(dest="envarg_" + name, default=None, help=f"{arg.help} (default: {arg.default}; {where})")
        if arg.choices:
            kw["choices"] = arg.choices
        g.add_argument(_flag(name), type=arg.type, **kw)


MEMBER_CHUNK_HELP = (
    "members vmapped together on a device, the rest looped over; changes speed (and activation memory), "
    "not results (default: all on a GPU/TPU; on a CPU 1 with several devices, 4 with one)"
)


def _add_pbt_parser(sub) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "pbt",
        help="population-based training: members that copy the best and perturb their hyperparameters",
        description="Members start from draws in the given ranges (LOW:HIGH; rates log-uniform). Every "
        "--interval env steps the bottom --fraction copy the parameters of members drawn from the top "
        "--fraction and perturb the hyperparameters they inherit. Lineage goes to OUT/pbt.jsonl.",
    )
    _add_config_flags(b, sweep=False, pbt=True)
    b.add_argument("--members", type=int, default=8, help="population size (default: 8)")
    b.add_argument(
        "--interval",
        type=int,
        default=50_000,
        help="env steps between exploit steps, rounded up to whole evaluation intervals (--eval-every) "
        "(default: 50000)",
    )
    b.add_argument("--fraction", type=float, default=0.25, help="bottom share replaced, in (0, 0.5] (default: 0.25)")
    b.add_argument(
        "--perturb",
        type=_float_list,
        default=[0.8, 1.25],
        metavar="F[,F...]",
        help="factors an inherited value is multiplied by (default: 0.8,1.25)",
    )
    b.add_argument(
        "--resample",
        type=float,
        default=0.25,
        help="probability that an inherited value is redrawn from its range instead (default: 0.25)",
    )
    b.add_argument("--out", default="runs/pbt", help="run directory (default: runs/pbt)")
    b.add_argument("--resume", action="store_true", help="continue the run in --out to --total-env-steps")
    b.add_argument("--member-chunk", type=int, default=None, help=MEMBER_CHUNK_HELP)
    return b


def _add_run_flags(sp: argparse.ArgumentParser) -> None:
    """Progress, logging and multi-process flags of every command that trains."""
    sp.add_argument("--no-progress", action="store_true", help="no progress bar (the end-of-run line still prints)")
    sp.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events to OUT/tb")
    sp.add_argument(
        "--checkpoint-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall seconds between checkpoints, written in the background while training goes on; one is "
        "always written at the end, on Ctrl-C / SIGTERM and before a stop on a fault; 0 = after every chunk "
        "(default: 300)",
    )
    sp.add_argument(
        "--wandb",
        default=None,
        metavar="PROJECT",
        help="also log to Weights & Biases project PROJECT (group: the env, name: the run directory; "
        "WANDB_MODE=offline works without an account)",
    )
    g = sp.add_argument_group("several processes / hosts (jax.distributed)")
    g.add_argument("--coordinator-address", default=None, help="HOST:PORT of process 0 (default: none)")
    g.add_argument("--num-processes", type=int, default=None, help="processes in the job (default: none)")
    g.add_argument("--process-id", type=int, default=None, help="this process's index (default: none)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="maddpg-jax", description="MADDPG in one compiled JAX program.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train one run", description="Train one run into --out.")
    _add_config_flags(t, sweep=False)
    t.add_argument("--out", default="runs/train", help="run directory (default: runs/train)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out to --total-env-steps")

    s = sub.add_parser(
        "sweep",
        help="train a grid of hyperparameters x seeds in one program",
        description="Every sweepable flag takes a comma list; the grid is their product x --seeds.",
    )
    _add_config_flags(s, sweep=True)
    s.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="seeds per grid point: members get seeds --seed, --seed + 1, ... (default: 1)",
    )
    s.add_argument("--out", default="runs/sweep", help="sweep directory (default: runs/sweep)")
    s.add_argument("--resume", action="store_true", help="continue the sweep in --out to --total-env-steps")
    s.add_argument(
        "--max-memory",
        type=float,
        default=None,
        help="refuse to start if the estimated state exceeds this many GiB (default: device memory)",
    )
    s.add_argument("--member-chunk", type=int, default=None, help=MEMBER_CHUNK_HELP)
    b = _add_pbt_parser(sub)
    for sp in (t, s, b):
        _add_run_flags(sp)

    e = sub.add_parser("eval", help="mean return of a saved policy, no exploration noise")
    e.add_argument("run_dir", help="a run directory written by train")
    e.add_argument("--episodes", type=int, default=100, help="episodes to run (default: 100)")
    e.add_argument("--member", type=int, default=0, help="which member of a sweep (default: 0)")
    e.add_argument("--seed", type=int, default=12345, help="evaluation seed (default: 12345)")
    e.add_argument("--gif", default=None, help="also draw one episode into this animated GIF")
    e.add_argument(
        "--sub-policy",
        type=int,
        default=None,
        help="a run with --ensemble-size K: every agent plays this sub-policy (default: one per episode and team)",
    )

    pl = sub.add_parser("plot", help="curves of one or more runs or sweeps in one PNG")
    pl.add_argument("run_dirs", nargs="+", help="run or sweep directories")
    pl.add_argument("--out", default="curves.png", help="PNG path (default: curves.png)")
    return p


# -- config from flags --------------------------------------------------------------------


def _given(args) -> dict:
    """The Config fields the user set, with the env's own flags gathered into env_kwargs."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    env_kwargs = dict(given.pop("env_kwargs", {}))
    for name in _env_args():
        value = getattr(args, "envarg_" + name)
        if value is not None:
            env_kwargs[name] = value
    if env_kwargs:
        given["env_kwargs"] = env_kwargs
    return given


def config_from_flags(values: dict) -> Config:
    """A Config from flag values: the same resolution as ``Config(**values)`` in Python
    (fields not given take the env's recommended defaults), with one-line errors."""
    try:
        config = Config(**values)
    except ConfigError as e:
        raise UsageError(f"{e.flag}: {e.message}") from None
    if "=" in config.critic_mode or config.gumbel_mode == "soft":  # facts of the env: check before compiling
        from maddpg_jax.acting import AgentSpec

        env = envs.make(config.env, **config.env_kwargs)[0]
        try:
            spec = AgentSpec.from_env(env, config.gumbel_mode)
        except ValueError as e:
            raise UsageError(f"--gumbel-mode: {e}") from None
        try:
            spec.critic_sees(config.critic_mode)
        except ValueError as e:
            raise UsageError(f"--critic-mode: {e}") from None
    return config


def _positive(name: str, value) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{_flag(name)}: must be an integer >= 1, got {value}")


def _resumed_config(out: Path, given: dict, command: str) -> tuple[Config, list[dict]]:
    """The saved run's config (with a new --total-env-steps if given) and its members."""
    from maddpg_jax.api import resumed

    base, _ = resumed(out, None, command)
    # The saved run with the flags given over it; resumed() refuses any change but the length.
    values = {**base.to_dict(), "hidden_sizes": base.hidden_sizes, **given}
    values["env_kwargs"] = {**base.env_kwargs, **given.get("env_kwargs", {})}
    return resumed(out, config_from_flags(values), command)


# -- commands -----------------------------------------------------------------------------


def _distributed(args) -> None:
    """Join a multi-process job when asked; must run before JAX starts its backend."""
    flags = (args.coordinator_address, args.num_processes, args.process_id)
    if all(v is None for v in flags):
        return
    if any(v is None for v in flags):
        raise UsageError("--coordinator-address, --num-processes and --process-id go together")
    _positive("num_processes", args.num_processes)
    if not 0 <= args.process_id < args.num_processes:
        raise UsageError(f"--process-id: must be in [0, {args.num_processes - 1}], got {args.process_id}")
    from maddpg_jax.parallel import initialize_distributed

    initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)


def _check_run_flags(args) -> None:
    if args.checkpoint_every is not None and not (math.isfinite(args.checkpoint_every) and args.checkpoint_every >= 0):
        raise UsageError(f"--checkpoint-every: must be a number of seconds >= 0, got {args.checkpoint_every:g}")


def cmd_train(args) -> int:
    _check_run_flags(args)
    out = Path(args.out)
    given = _given(args)
    check_out(out, args.resume)
    config = _resumed_config(out, given, "train")[0] if args.resume else config_from_flags(given)
    _distributed(args)
    from maddpg_jax.api import train

    return _status(lambda: train(config, out, **_session_flags(args)))


def _session_flags(args) -> dict:
    """The options of `maddpg_jax.api.train` / ``sweep`` that every training command's flags set."""
    return dict(
        resume=args.resume,
        progress=not args.no_progress,
        tensorboard=args.tensorboard,
        wandb_project=args.wandb,
        checkpoint_every=args.checkpoint_every,
    )


def _status(call) -> int:
    """Run ``call`` (a training function of `maddpg_jax.api`) and return the exit
    status: 0, or a stop's (its one line was printed by the run)."""
    from maddpg_jax.errors import RunStopped

    try:
        call()
    except RunStopped as e:
        return e.status
    return 0


def _run_session(args, out: Path, config: Config, members: list[dict], **options) -> int:
    """Train ``members`` into ``out`` through `maddpg_jax.api.run` with the flags
    every training command shares; ``options`` go to the session (member chunk, memory,
    PBT). Returns the exit status."""
    from maddpg_jax.api import run

    return run(out, config, members, **_session_flags(args), **options)[0]


def _grid(args, config: Config) -> list[dict]:
    lists = {n: (getattr(args, n) or [getattr(config, n)]) for n in HPARAM_NAMES}
    for n, values in lists.items():
        for v in values:
            try:
                check_hparam(n, v)
            except ConfigError as e:
                raise UsageError(f"{e.flag}: {e.message}") from None
    members = []
    for combo in itertools.product(*lists.values()):
        for s in range(args.seeds):
            members.append({"seed": config.seed + s, **dict(zip(lists, combo))})
    return members


def cmd_sweep(args) -> int:
    _check_run_flags(args)
    _positive("seeds", args.seeds)
    _positive("member_chunk", args.member_chunk)
    out = Path(args.out)
    given = _given(args)
    base = {k: v for k, v in given.items() if k not in HPARAM_NAMES}
    # The config records the first value of each list; members carry their own.
    firsts = {k: v[0] for k, v in given.items() if k in HPARAM_NAMES}
    check_out(out, args.resume)
    if args.resume:
        config, members = _resumed_config(out, base, "sweep")
    else:
        config = config_from_flags({**base, **firsts})
        members = _grid(args, config)
    _distributed(args)
    from maddpg_jax.api import sweep

    return _status(
        lambda: sweep(
            config, members, out, member_chunk=args.member_chunk, max_memory_gib=args.max_memory, **_session_flags(args)
        )
    )


def _pbt_config(args, given: dict):
    """The PBT settings from flags (the interval still in env steps), every bad value
    refused in one line before compiling."""
    from maddpg_jax.pbt import LOG_SCALE, PBTConfig, Range

    if args.members < 2:
        raise UsageError(f"--members: a population needs at least 2 members, got {args.members}")
    if not 0 < args.fraction <= 0.5:
        raise UsageError(f"--fraction: must be in (0, 0.5], got {args.fraction:g}")
    if math.floor(args.fraction * args.members) < 1:
        raise UsageError(
            f"--fraction: {args.fraction:g} of {args.members} members replaces none; raise --fraction or --members"
        )
    if any(f <= 0 for f in args.perturb):
        raise UsageError(f"--perturb: factors must be > 0, got {','.join(f'{f:g}' for f in args.perturb)}")
    if not 0 <= args.resample <= 1:
        raise UsageError(f"--resample: must be a probability in [0, 1], got {args.resample:g}")
    _positive("interval", args.interval)
    ranges = {}
    for name in HPARAM_NAMES:
        values = given.get(name)
        if values is None or len(values) == 1:
            continue
        low, high = values
        text = f"{low:g}:{high:g}"
        if low >= high:
            raise UsageError(f"{_flag(name)}: a range LOW:HIGH needs LOW < HIGH, got {text}")
        if LOG_SCALE[name] and low <= 0:
            raise UsageError(f"{_flag(name)}: is drawn log-uniform, so its range must be above 0, got {text}")
        for v in (low, high):
            try:
                check_hparam(name, v)
            except ConfigError as e:
                raise UsageError(f"{e.flag}: {e.message} (range {text})") from None
        ranges[name] = Range(low, high, LOG_SCALE[name])
    if not ranges:
        raise UsageError("pbt: give at least one hyperparameter a range LOW:HIGH, e.g. --actor-lr 1e-4:1e-2")
    return PBTConfig(ranges, args.interval, args.fraction, tuple(args.perturb), args.resample)


def cmd_pbt(args) -> int:
    from maddpg_jax import rundir
    from maddpg_jax.pbt import PBTConfig

    _check_run_flags(args)
    _positive("member_chunk", args.member_chunk)
    out = Path(args.out)
    given = _given(args)
    base = {k: v for k, v in given.items() if k not in HPARAM_NAMES}
    check_out(out, args.resume)
    members = None
    if args.resume:
        config, members = _resumed_config(out, base, "pbt")
        try:
            pbt = PBTConfig.from_dict(json.loads((out / rundir.CONFIG).read_text())["pbt"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UsageError(f"--resume: {out / rundir.CONFIG} holds no valid pbt section ({e!r})") from None
    else:
        pbt = _pbt_config(args, given)
        # The config records the low end of each range; members carry their own values.
        config = config_from_flags({**base, **{k: v[0] for k, v in given.items() if k in HPARAM_NAMES}})
        # Exploit steps end compiled chunks, which end on evaluation intervals.
        k = config.eval_interval
        pbt = dataclasses.replace(pbt, interval=max(1, math.ceil(args.interval / config.num_envs / k)) * k)
    _distributed(args)
    if members is None:
        from maddpg_jax.pbt import initial_members

        members = initial_members(config.seed, {n: getattr(config, n) for n in HPARAM_NAMES}, pbt, args.members)
    return _run_session(args, out, config, members, member_chunk=args.member_chunk, pbt=pbt)


def cmd_eval(args) -> int:
    _positive("episodes", args.episodes)
    from maddpg_jax.evaluation import evaluate

    s = evaluate(Path(args.run_dir), args.episodes, args.member, args.seed, args.gif, args.sub_policy)
    teams = s["team_returns"]
    per_team = "" if len(teams) < 2 else "; per team: " + ", ".join(f"{k} {v:.1f}" for k, v in teams.items())
    measured = "".join(f"; {k} {v:.3g}" for k, v in s.get("metrics", {}).items())
    print(
        f"{args.run_dir}: {s['episodes']} episodes, no exploration noise: mean return {s['mean_return']:.1f} "
        f"+- {s['std_return']:.1f} (min {s['min_return']:.0f}, max {s['max_return']:.0f}){per_team}{measured}"
    )
    if args.gif:
        print(f"wrote {args.gif}")
    return 0


def cmd_plot(args) -> int:
    from maddpg_jax import rundir
    from maddpg_jax.pbt import plot_schedules
    from maddpg_jax.plotting import plot_curves, series_by_member

    series, extra = {}, {"schedules": {}, "log_scale": set()}
    for d in args.run_dirs:
        try:
            schedules = plot_schedules(d)
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise UsageError(f"run_dirs: {d} has a pbt.jsonl but no valid pbt config ({e!r})") from None
        for name, lines in schedules.get("schedules", {}).items():
            prefix = f"{d} " if len(args.run_dirs) > 1 else ""
            extra["schedules"].setdefault(name, {}).update({prefix + k: v for k, v in lines.items()})
        extra["log_scale"] |= schedules.get("log_scale", set())
        rows = rundir.read_jsonl(Path(d) / rundir.METRICS)
        if not rows:
            raise UsageError(f"run_dirs: {d} has no {rundir.METRICS}")
        for label, xy in series_by_member(rows).items():
            series[d if label == "mean return" else f"{d} {label}"] = xy
    plot_curves(series, args.out, title="maddpg-jax", solved=None, **extra)
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    """Parse ``argv`` and run the command; a usage error is one line and exit status 2."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        from maddpg_jax.parallel import configure_host_devices

        configure_host_devices()
        commands = {"train": cmd_train, "sweep": cmd_sweep, "pbt": cmd_pbt, "eval": cmd_eval, "plot": cmd_plot}
        return commands[args.command](args)
    except UsageError as e:
        print(f"maddpg-jax: error: {e}", file=sys.stderr)
        return 2
    except WriteFault as e:
        print(f"maddpg-jax: error: {e}", file=sys.stderr)
        return e.status
    except OSError as e:  # a file outside a run's own writes (eval.json, a plot's PNG)
        from maddpg_jax.rundir import FileFault

        if not isinstance(e, FileFault):
            raise
        print(f"maddpg-jax: error: {e}", file=sys.stderr)
        return WriteFault.status
