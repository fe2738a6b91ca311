"""What a command costs before and after its compiled program: start-up imports, ``--help``,
``eval``, and a short run's fixed cost against its bare program.

    python benchmarks/startup.py [--before PATH_TO_AN_OLDER_CHECKOUT]

For this checkout (and, with ``--before``, an older checkout of the project run with the same
interpreter and packages, its tree first on ``PYTHONPATH``), one after the other:

- ``python -X importtime -c "import maddpg_jax.cli"``: the import's total, and the heavy
  packages a ``train`` command's process imports (orbax, matplotlib, tensorboardX, wandb,
  JaxMARL) with their cumulative import times;
- ``maddpg-jax --help`` and ``maddpg-jax eval RUN --episodes 10`` (a tiny CartPole run),
  wall time of the process, median of ``--reps``;
- one seed of simple_spread (JaxMARL's port, its registry defaults), 400k env steps:
  ``maddpg-jax train`` (the process) against ``jax.jit(make_train(config))`` on the same
  config in one process (build, compile and run, timed from after ``import jax``; and that
  whole process, which like the command starts Python and imports JAX), median of ``--reps``
  alternating.

Writes ``benchmarks/results/throughput/startup.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import command_line, machine

HEAVY = ("orbax", "matplotlib", "tensorboardX", "wandb", "jaxmarl", "optax", "flax", "jax")
SPREAD = ["--env", "jaxmarl:MPE_simple_spread_v3", "--total-env-steps", "400000"]
CLI = "import sys; from maddpg_jax.cli import main; sys.argv[0] = 'maddpg-jax'; sys.exit(main())"
PROGRAM = """
import time, jax
t0 = time.perf_counter()
from maddpg_jax import Config
from maddpg_jax.training import make_train
c = Config(env="jaxmarl:MPE_simple_spread_v3", total_env_steps=400_000)
state, m = jax.jit(make_train(c))(c.key(0), c.hparams())
jax.block_until_ready(m)
print(time.perf_counter() - t0)
"""


def env_for(tree: str | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = (tree or ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# Every process runs in a scratch folder: ``python -c`` puts its working directory first on
# sys.path, which would put this checkout ahead of the one measured.
CWD = tempfile.gettempdir()


def run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=CWD)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)[:300]}\n{p.stderr[-2000:]}")
    return p


def timed(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    run(argv, env)
    return time.perf_counter() - t0


def import_times(argv: list[str], env: dict) -> dict[str, float]:
    """Each package's import seconds in ``python -X importtime ARGV``: the largest cumulative
    time among its modules' lines, which is the outermost import of it, wherever it nests."""
    p = run([sys.executable, "-X", "importtime", *argv], env)
    out: dict[str, float] = {}
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            name = m.group(2).split(".")[0]
            out[name] = max(out.get(name, 0.0), int(m.group(1)) / 1e6)
    return out


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def measure(tree: str | None, reps: int, work: str) -> dict:
    env = env_for(tree)
    py = [sys.executable, "-c"]
    cli_import = import_times(["-c", "import maddpg_jax.cli"], env)["maddpg_jax"]
    tiny = os.path.join(work, "tiny")
    run(py + [CLI, "train", "--total-env-steps", "2048", "--num-envs", "8", "--out", tiny, "--no-progress"], env)
    heavy = import_times(["-c", CLI, "train", "--total-env-steps", "512", "--num-envs", "8", "--out", tiny + "2"], env)
    out = {
        "cli_import_s": cli_import,
        "train_imports_s": {k: round(v, 3) for k, v in heavy.items() if k in HEAVY},
        "help_s": median([timed(py + [CLI, "--help"], env) for _ in range(reps)]),
        "eval_s": median([timed(py + [CLI, "eval", tiny, "--episodes", "10"], env) for _ in range(reps)]),
    }
    cli, program, process = [], [], []
    for i in range(reps):
        d = os.path.join(work, f"spread{i}")
        cli.append(timed(py + [CLI, "train", *SPREAD, "--out", d, "--no-progress"], env))
        t0 = time.perf_counter()
        p = run(py + [PROGRAM], env)
        process.append(time.perf_counter() - t0)
        program.append(float(p.stdout.strip().splitlines()[-1]))
    out["spread_cli_s"], out["spread_program_s"], out["spread_program_process_s"] = cli, program, process
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default=None, help="an older checkout of the project, measured first")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/throughput/startup.md")
    a = p.parse_args(argv)
    command = command_line("startup.py", p, a)
    trees = ([("before", a.before)] if a.before else []) + [("this checkout", None)]
    results = {}
    for name, tree in trees:
        with tempfile.TemporaryDirectory() as work:
            results[name] = measure(tree, a.reps, work)
        print(name, results[name], flush=True)
    rev = lambda tree: subprocess.run(
        ["git", "-C", tree or ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "## Start-up, `--help`, `eval` and a short run's fixed cost",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Command: `{command}`. "
        f"Medians of {a.reps} [range]; each process started afresh (JAX's compilation cache off); "
        "the 400k runs alternate train and program, and each pair's difference and ratio is taken "
        "before the median (the program alone varied by up to 15% between processes).",
        "",
        "| | " + " | ".join(f"{n} ({rev(t)})" for n, t in trees) + " |",
        "|---|" + "---:|" * len(trees),
    ]
    row = lambda label, f: lines.append(f"| {label} | " + " | ".join(f(results[n]) for n, _ in trees) + " |")
    row("`import maddpg_jax.cli` (-X importtime total)", lambda r: f"{r['cli_import_s']:.3f} s")
    row("`maddpg-jax --help` (process)", lambda r: f"{r['help_s']:.2f} s")
    row("`maddpg-jax eval RUN --episodes 10` (process, tiny CartPole run)", lambda r: f"{r['eval_s']:.2f} s")
    for pkg in HEAVY:
        row(
            f"`train` imports {pkg}",
            lambda r, pkg=pkg: f"{r['train_imports_s'][pkg]:.2f} s" if pkg in r["train_imports_s"] else "not imported",
        )

    def spread(xs, unit="s", digits=1):
        return f"{median(xs):.{digits}f} {unit} [{min(xs):.{digits}f}, {max(xs):.{digits}f}]"

    ratios = lambda r: [a / b for a, b in zip(r["spread_cli_s"], r["spread_program_s"])]
    row("simple_spread 400k, `maddpg-jax train` (process)", lambda r: spread(r["spread_cli_s"]))
    row(
        "simple_spread 400k, `jax.jit(make_train(config))` (build, compile, run)",
        lambda r: spread(r["spread_program_s"]),
    )
    row(
        "fixed cost: train − program, each pair",
        lambda r: spread([a - b for a, b in zip(r["spread_cli_s"], r["spread_program_s"])]),
    )
    row("train / program, each pair", lambda r: spread(ratios(r), "x", 3))
    row(
        "the program's process (Python, `import jax` included)",
        lambda r: spread(r["spread_program_process_s"]),
    )
    row(
        "train / the program's process, each pair",
        lambda r: spread([a / b for a, b in zip(r["spread_cli_s"], r["spread_program_process_s"])], "x", 3),
    )
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
