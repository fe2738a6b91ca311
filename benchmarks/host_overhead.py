"""The user's command against the compiled program: what checkpoints, logging and other
host work cost the CLI, side by side from one invocation.

    python benchmarks/host_overhead.py [--cases spread,cartpole,plain1024]

Per case, the same members and config two ways, one after the other (never at once), each
``--reps`` times alternating, the medians reported:

- **program**: the benchmarks' way, ``run_chunks`` over the compiled chunks, metrics fetched
  after each, no files written; wall time from building the trainer (compile included).
- **CLI**: ``maddpg-jax train`` / ``sweep`` in a child process into a fresh run directory,
  with its defaults (checkpoints, metrics rows, plot, summary); wall time of the process,
  and the host share the run's own end-of-run line reports.

Cases: ``spread``: ``maddpg-jax sweep --env jaxmarl:MPE_simple_spread_v3 --seeds 3
--total-env-steps 2000000`` (the registry's defaults: 128 envs, a 1M-transition buffer per
member); ``cartpole``: the README's quick start, ``maddpg-jax train --env MultiCartPole-v0
--num-agents 2``; ``plain1024``: plain MADDPG at (E, B, U) = (1024, 1024, 1) with
``benchmarks/compare.py``'s settings, as env steps/s in steady state (compare.py's
measurement against the CLI's rows after its first learning chunk, the medians of ``--reps``
alternating runs of each), with and without the default noise-free evaluations
(compare.py's program does none). The CLI's rows also give its rate over its compiled chunks
alone (their ``compute_s``): the CLI's wall rate over that one is what host work costs it,
free of this machine's run-to-run variation.

Writes ``benchmarks/results/throughput/host_overhead.md`` and ``.json``; a run of some
``--cases`` replaces those cases' rows and keeps the others (each row has its date).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

from benchmarks.common import command_line, machine, program
from benchmarks.compare import PLAIN  # the same plain MADDPG as compare.py's
from maddpg_jax import Config
from maddpg_jax.loop import plan_chunks, run_chunks

PLAIN_SHAPE = dict(num_envs=1024, batch_size=1024, updates_per_step=1, buffer_size=1 << 17, warmup_env_steps=0)


def flags(fields: dict) -> list[str]:
    out = []
    for k, v in fields.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + flag[2:])
        else:
            out += [flag, str(v)]
    return out


def program_wall(config: Config, seeds: int) -> tuple[float, float]:
    """(seconds to train ``seeds`` members of ``config`` the benchmarks' way, compile
    included; seconds of its compiled chunks alone)."""
    t0 = time.perf_counter()
    trainer, runner, state, hp = program(config, seeds)
    chunks = []
    run_chunks(runner, state, hp, plan_chunks(config), lambda chunk: chunks.append(chunk.chunk_s))
    return time.perf_counter() - t0, sum(chunks)


def chunk_ends(run_dir: str) -> list[dict]:
    """A CLI run's metrics rows that end a chunk (they carry ``compute_s``), member 0's."""
    rows = [json.loads(x) for x in open(os.path.join(run_dir, "metrics.jsonl"))]
    return [r for r in rows if "compute_s" in r and r.get("member", 0) == 0]


def cli_chunks_s(run_dir: str) -> float:
    """Seconds of a CLI run's compiled chunks."""
    return sum(r["compute_s"] for r in chunk_ends(run_dir))


def cli(args: list[str]) -> tuple[float, str, str]:
    """(process wall seconds, run directory, the end-of-run line) of ``maddpg-jax ARGS --out TMP``."""
    out = tempfile.mkdtemp(prefix="host_overhead_")
    cmd = [sys.executable, "-m", "maddpg_jax.cli", *args, "--out", out, "--no-progress"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr[-2000:]}")
    line = next((x for x in p.stdout.splitlines() if x.startswith("wall ")), "")
    return wall, out, line


def host_share(line: str) -> float | None:
    m = re.search(r"\(([\d.]+)%\)", line)
    return float(m.group(1)) / 100 if m else None


def steady_rate(run_dir: str, num_envs: int, members: int = 1) -> tuple[float, float]:
    """Env steps/s from a run's metrics rows, from the end of its first learning chunk (the
    compile behind it) to its last row: ``(over the wall time, what the progress bar shows a
    user; over the compiled chunks' seconds alone)``."""
    ends = chunk_ends(run_dir)
    first, last = ends[0], ends[-1]
    steps = (last["env_steps"] - first["env_steps"]) * members
    return steps / (last["wall_s"] - first["wall_s"]), steps / sum(r["compute_s"] for r in ends[1:])


def case_sweep(name: str, config: Config, seeds: int, args: list[str], reps: int) -> dict:
    """``reps`` alternating runs of each side; the ratio of the medians (this machine's
    speed moves by several per cent from one run to the next)."""
    programs, program_chunks, walls, cli_chunks, lines = [], [], [], [], []
    for _ in range(reps):
        program, chunks = program_wall(config, seeds)
        programs.append(program)
        program_chunks.append(chunks)
        wall, out, line = cli(args)
        walls.append(wall)
        cli_chunks.append(cli_chunks_s(out))
        lines.append(line)
    med = lambda xs: float(np.median(xs))
    return {
        "case": name,
        "command": "maddpg-jax " + " ".join(args),
        "program_s": med(programs),
        "cli_s": med(walls),
        "ratio": med(walls) / med(programs),
        # The same compiled chunks on each side: how much of the ratio is the machine's
        # run-to-run variation rather than host work.
        "program_chunks_s": med(program_chunks),
        "cli_chunks_s": med(cli_chunks),
        "program_all": programs,
        "cli_all": walls,
        "host_share": float(np.median([host_share(x) for x in lines])),
        "cli_line": lines[-1],
    }


def case_plain(total: int, evals: bool, reps: int = 2) -> dict:
    """Medians of ``reps`` alternating measurements of each side (this machine's rate moves
    by 10-20% from one measurement to the next)."""
    from benchmarks.common import env_steps_per_second

    extra = {} if evals else {"eval_episodes": 0}
    config = Config(**PLAIN, **PLAIN_SHAPE, total_env_steps=10**9, eval_episodes=0)
    args = ["train", *flags({**PLAIN, **PLAIN_SHAPE, **extra, "total_env_steps": total})]
    programs, rates, compiled, shares = [], [], [], []
    for _ in range(reps):
        programs.append(env_steps_per_second(config, seconds=8.0)[0])
        wall, out, line = cli(args)
        rate, compiled_rate = steady_rate(out, PLAIN_SHAPE["num_envs"])
        rates.append(rate)
        compiled.append(compiled_rate)
        shares.append(host_share(line))
    program, rate = float(np.median(programs)), float(np.median(rates))
    return {
        "case": "plain1024" + ("" if evals else "_no_eval"),
        "command": "maddpg-jax " + " ".join(args),
        "program_steps_per_s": program,
        "cli_steps_per_s": rate,
        "ratio": program / rate,
        # The CLI's wall rate against its own compiled chunks' rate, run by run: host work
        # alone, without the variation between the two sides' runs.
        "cli_compiled_steps_per_s": float(np.median(compiled)),
        "cli_wall_over_compiled": float(np.median([c / r for c, r in zip(compiled, rates)])),
        "program_all": programs,
        "cli_all": rates,
        "cli_compiled_all": compiled,
        "host_share": float(np.median(shares)),
        "cli_line": line,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default="spread,cartpole,plain1024", help="comma list of spread, cartpole, plain1024")
    p.add_argument("--spread-steps", type=int, default=2_000_000)
    p.add_argument("--plain-steps", type=int, default=4_096_000)
    p.add_argument("--reps", type=int, default=2, help="alternating runs of each side per case")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "throughput"))
    a = p.parse_args()
    results = []
    for case in a.cases.split(","):
        if case == "spread":
            env = "jaxmarl:MPE_simple_spread_v3"
            config = Config(env=env, total_env_steps=a.spread_steps)
            args = ["sweep", "--env", env, "--seeds", "3", "--total-env-steps", str(a.spread_steps)]
            results.append(case_sweep("spread", config, 3, args, a.reps))
        elif case == "cartpole":
            config = Config(env="MultiCartPole-v0", env_kwargs={"num_agents": 2})
            args = ["train", "--env", "MultiCartPole-v0", "--num-agents", "2"]
            results.append(case_sweep("cartpole", config, 1, args, a.reps))
        elif case == "plain1024":
            results.append(case_plain(a.plain_steps, evals=False, reps=a.reps))
            results.append(case_plain(a.plain_steps, evals=True, reps=a.reps))
        else:
            raise SystemExit(f"--cases: unknown case {case!r}; known: spread, cartpole, plain1024")
        print(json.dumps(results[-1]), flush=True)
    for r in results:
        r.update(date=time.strftime("%Y-%m-%d"), reps=a.reps)
    path = os.path.join(a.out, "host_overhead.json")
    if os.path.exists(path):  # keep the cases not rerun
        done, old = {r["case"] for r in results}, json.load(open(path))
        for r in old["results"]:
            if r["case"] not in done:
                results.append({"date": old["date"], "reps": 1, **r})
    order = ["spread", "cartpole", "plain1024_no_eval", "plain1024"]
    results.sort(key=lambda r: order.index(r["case"]) if r["case"] in order else len(order))

    lines = [
        "# The CLI against the compiled program",
        "",
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. `{command_line('host_overhead.py', p, a)}`.",
        "",
        "Each side `reps` times, alternating; medians. "
        "Program: the members trained by `run_chunks` alone (no files), compile included. CLI: the command's "
        "whole process (checkpoints every 300 s in the background, metrics, plot, summary). Host share: the "
        "CLI's own end-of-run line (host seconds between chunks over the run's wall time). Compiled chunks: the "
        "seconds of the same chunks (compile included) on each side; their difference is this machine's "
        "run-to-run variation, not host work. For the rates the steady state is measured on each side; "
        "the last column is then the CLI's rate over its own compiled chunks' seconds, and its wall rate's "
        "ratio to that one (host work alone, within each CLI run).",
        "",
        "| case | date, reps | program | CLI | CLI / program | CLI host share | compiled chunks: program, CLI |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        share = "-" if r["host_share"] is None else f"{100 * r['host_share']:.1f}%"
        when = f"{r['date']}, {r['reps']}"
        if "program_s" in r:
            chunks = f"{r['program_chunks_s']:.1f} s, {r['cli_chunks_s']:.1f} s"
            walls = f"{r['program_s']:.1f} s | {r['cli_s']:.1f} s"
            lines.append(f"| {r['case']} | {when} | {walls} | {r['ratio']:.3f}x | {share} | {chunks} |")
        else:
            own = "-"
            if "cli_compiled_steps_per_s" in r:
                own = f"CLI {r['cli_compiled_steps_per_s']:,.0f} env steps/s, wall {r['cli_wall_over_compiled']:.3f}x"
            lines.append(
                f"| {r['case']} | {when} | {r['program_steps_per_s']:,.0f} env steps/s | {r['cli_steps_per_s']:,.0f} "
                f"env steps/s | {r['ratio']:.3f}x | {share} | {own} |"
            )
    lines += ["", "Commands:", ""] + [f"- {r['case']}: `{r['command']}`" for r in results]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "host_overhead.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(path, "w") as f:
        json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "results": results}, f, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
