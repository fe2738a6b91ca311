"""Kernels per training iteration, counted from the compiled program, beside its time.

    python benchmarks/kernels.py [--num-envs 16] [--batch-size 256] [--updates-per-step 1]
    python benchmarks/kernels.py --profile 12   # and where the time goes, from a profile

On an accelerator every kernel is a launch of a few microseconds, so at MADDPG's batch
sizes the number of kernels an iteration runs, not its arithmetic, sets the iteration rate.
This compiles ``run`` (a ``lax.scan`` of iterations) for the plain MADDPG settings and for
the defaults (twin critics, layer norm, Huber loss, target smoothing, policy selection),
finds the scan's loop in the optimised HLO and counts what one trip of its body launches:
fusions, copies, dots, custom calls and other unfused ops (and, among the fusions, how many
only move data: slices, copies, transposes), with nested loops (threefry's
rolled random-bit loops on CPU, the update rounds' scan) multiplied by their trip counts
and a conditional counted by its largest branch. Bookkeeping ops that launch nothing
(parameters, constants, tuples, bitcasts) are not counted. The time per iteration is
measured on the same program, one member on one device, beside XLA's count of its
floating-point operations.

``--profile N`` also traces the program with ``jax.profiler`` and sums each of the loop's
kernels' measured time: per group (matmuls, copies, fusions that only move data, other
fusions, other ops) and the N slowest, each with the source op it came from.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all", "opt-barrier"}
# A fusion of nothing but these only moves data (cuts a weight out of a flat vector,
# transposes, relays out): counted apart as "moves" (a sub-count, also among the fusions).
MOVES = FREE | {"slice", "copy", "transpose", "reshape", "broadcast", "concatenate"}
KINDS = ("fusion", "copy", "dot", "custom-call")
_COMP = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
_INST = re.compile(r"^\s+(?:ROOT )?%[\w.\-]+ = .*? ([a-z][\w\-]*)\(")


def computations(hlo: str) -> tuple[dict[str, list[str]], str]:
    """``({name: instruction lines}, entry name)`` of an HLO module's text."""
    comps, entry, name = {}, None, None
    for line in hlo.splitlines():
        m = _COMP.match(line)
        if m and not line.startswith(" "):
            name = m.group(1)
            comps[name] = []
            if line.startswith("ENTRY"):
                entry = name
        elif name is not None and line.startswith(" "):
            comps[name].append(line)
    return comps, entry


def _attr(line: str, key: str) -> str | None:
    m = re.search(rf"{key}=%?([\w.\-]+)", line)
    return m.group(1) if m else None


def trip_count(line: str) -> int | None:
    m = re.search(r'"known_trip_count":\{"n":"(\d+)"', line)
    return int(m.group(1)) if m else None


def launched(lines: list[str]):
    """``(op, line)`` of each instruction in ``lines`` that is not bookkeeping (see FREE)."""
    for line in lines:
        m = _INST.match(line)
        if m and m.group(1) not in FREE:
            yield m.group(1), line


def scan_body(comps: dict, entry: str, trips: int) -> str:
    """The body computation of the entry computation's loop with ``trips`` trips."""
    for op, line in launched(comps[entry]):
        if op == "while" and trip_count(line) == trips:
            return _attr(line, "body")
    raise ValueError(f"no loop with {trips} trips in the entry computation")


def branches(line: str) -> list[str]:
    """The computations a ``conditional`` instruction's ``line`` may run."""
    listed = re.search(r"branch_computations=\{([^}]*)\}", line)
    names = [b.strip().lstrip("%") for b in listed.group(1).split(",")] if listed else []
    return names + [n for n in (_attr(line, "true_computation"), _attr(line, "false_computation")) if n]


def count(comps: dict, name: str) -> Counter:
    """Kernels one execution of computation ``name`` launches, by kind."""
    total: Counter = Counter()
    for op, line in launched(comps[name]):
        if op == "while":
            trips = trip_count(line) or 1
            body = count(comps, _attr(line, "body"))
            cond = count(comps, _attr(line, "condition"))
            for k, v in body.items():
                total[k] += v * trips
            for k, v in cond.items():
                total[k] += v * (trips + 1)
            total["loop trips"] += trips
            # kernels launched inside nested loops, of all kinds (a sub-count, also in the kinds)
            total["in loops"] += sum(body[k] for k in (*KINDS, "other")) * trips
            total["in loops"] += sum(cond[k] for k in (*KINDS, "other")) * (trips + 1)
        elif op == "conditional":
            counts = [count(comps, b) for b in branches(line)]
            total.update(max(counts, key=lambda c: sum(c.values()), default=Counter()))
            total["other"] += 1  # the predicate's own launch
        elif op == "call":
            total.update(count(comps, _attr(line, "to_apply")))
        else:
            total[op if op in KINDS else "other"] += 1
            if op == "fusion" and only_moves(comps.get(_attr(line, "calls"), [])):
                total["moves"] += 1
    return total


def only_moves(lines: list[str]) -> bool:
    """Whether a fused computation's instructions only move data (see MOVES)."""
    ops = [m.group(1) for m in map(_INST.match, lines) if m]
    return bool(ops) and set(ops) <= MOVES


def loop_body_kernels(hlo: str, trips: int) -> Counter:
    """Kernels of one trip of the entry computation's loop with ``trips`` trips (the scan
    over iterations), by kind; ``total`` is their sum, ``in loops`` how many of them run
    inside nested loops and ``loop trips`` those loops' trips."""
    comps, entry = computations(hlo)
    c = count(comps, scan_body(comps, entry, trips))
    c["total"] = sum(c[k] for k in (*KINDS, "other"))
    return c


SCAN_TRIPS = 7  # a trip count no inner loop has, to find the scan's own loop


def _compiled(config, options: dict | None = None):
    """``(compiled scan of SCAN_TRIPS iterations, its state, hparams)`` of ``config``,
    compiled with XLA ``options`` (debug options by name, e.g. ``xla_cpu_...``)."""
    import jax

    from maddpg_jax.training import make_trainer

    trainer = make_trainer(config)
    hp = config.hparams()
    state = jax.jit(trainer.init)(config.key(0), hp)
    compiled = trainer.run.lower(state, hp, SCAN_TRIPS, True).compile(options or {})
    state, _ = jax.block_until_ready(compiled(state, hp))  # warm up
    return compiled, state, hp


def _timed(compiled, state, hp, seconds: float) -> tuple[float, int]:
    """``(µs per iteration, calls)`` of ``compiled`` run for at least ``seconds``."""
    import jax

    reps, t0 = 0, time.perf_counter()
    while reps < 2 or time.perf_counter() - t0 < seconds:
        state, _ = jax.block_until_ready(compiled(state, hp))
        reps += 1
    return (time.perf_counter() - t0) / (reps * SCAN_TRIPS) * 1e6, reps


def measure(config, seconds: float = 3.0, options: dict | None = None, profiled: bool = False) -> dict:
    """Kernels per iteration of ``config``'s compiled loop, its measured time, and XLA's
    count of its floating-point operations (MFLOP per iteration: XLA's cost analysis counts
    a loop's body once, whatever its trip count). ``options``: XLA compile options. With
    ``profiled``, also where the time goes (:func:`profile_compiled`, of the same compiled
    program) as ``"profile"``, or why there is none as ``"profile_error"`` (a backend whose
    trace this does not read)."""
    import jax

    compiled, state, hp = _compiled(config, options)
    kernels = loop_body_kernels(compiled.as_text(), SCAN_TRIPS)
    us, _ = _timed(compiled, state, hp, seconds)  # time the very program counted
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older jax: one per device
    out = {"kernels": dict(kernels), "us_per_iteration": us, "mflop": (cost or {}).get("flops", 0.0) / 1e6}
    if profiled:
        call = lambda: jax.block_until_ready(compiled(state, hp))
        try:
            out["profile"] = profile_compiled(compiled.as_text(), call, seconds)
        except Exception as e:
            out["profile_error"] = f"{type(e).__name__}: {e}"
    return out


# -- where the time goes: a profile of the same program ----------------------------------------

GROUPS = ("matmul", "copy", "moves", "other fusion", "other")
CONTROL = {"while", "conditional", "call"}  # their trace events enclose their bodies' kernels
_SOURCE = re.compile(r'op_name="([^"]*)"')
SCAFFOLD = ("jit(", "while", "body", "closed_call", "checkpoint")  # op_name parts that say nothing


def loop_instructions(hlo: str, trips: int) -> dict[str, tuple[str, str]]:
    """``{instruction name: (group, source)}`` of every kernel one trip of the loop with
    ``trips`` trips launches, nested loops' and branches' included. ``group`` is one of
    GROUPS (``matmul``: a dot, or a fusion with a dot or convolution in it); ``source`` the
    tail of the op's ``op_name`` (the JAX code it came from, e.g. ``Critic/Dense_1/dot_general``)."""
    comps, entry = computations(hlo)
    out: dict[str, tuple[str, str]] = {}

    def walk(name: str) -> None:
        for op, line in launched(comps[name]):
            if op == "while":
                walk(_attr(line, "body"))
                walk(_attr(line, "condition"))
            elif op == "conditional":
                for b in branches(line):
                    walk(b)
            elif op == "call":
                walk(_attr(line, "to_apply"))
            if op in CONTROL:
                continue
            inst = re.match(r"^\s+(?:ROOT )?%([\w.\-]+) =", line).group(1)
            called = comps.get(_attr(line, "calls"), [])
            # A fusion with a dot in it is a matmul, named after its dot's source; any other
            # op after its own (or, without one, the first of its fused ops that has one).
            dots = [x for o, x in launched(called) if o in ("dot", "convolution")]
            if op == "dot" or (op == "fusion" and dots):
                group = "matmul"
            elif op == "copy":
                group = "copy"
            elif op == "fusion":
                group = "moves" if only_moves(called) else "other fusion"
            else:
                group = "other"
            source = next(filter(None, map(_SOURCE.search, [*dots, line, *called])), None)
            path = source.group(1).split("/") if source else []
            parts = [p for p in path if not p.startswith(SCAFFOLD)]
            out[inst] = (group, "/".join(parts[-3:]) or op)

    walk(scan_body(comps, entry, trips))
    return out


def kernel_times(instructions: dict, events: list[dict], iterations: int) -> dict[str, float]:
    """µs per iteration of each of ``instructions`` (names), summed over a trace's complete
    (``"ph": "X"``) ``events`` named after them and divided by the ``iterations`` traced.
    Checked against XLA:CPU's traces; on a GPU, kernels that libraries launch (cuBLAS
    matmuls) carry their own names and are missed."""
    # XLA:GPU names a fusion's kernel after it with "_" for "." (fusion.12 -> fusion_12).
    names = {**{n.replace(".", "_"): n for n in instructions}, **{n: n for n in instructions}}
    times: dict[str, float] = {}
    for e in events:
        name = names.get(e.get("name")) if e.get("ph") == "X" else None
        if name is not None:
            times[name] = times.get(name, 0.0) + float(e.get("dur", 0.0)) / iterations
    return times


def profile_compiled(hlo: str, call, seconds: float = 2.0) -> dict:
    """Where one iteration's time goes: ``{"us_per_iteration", "kernel_us", "groups": {group:
    µs}, "kernels": [(µs, name, group, source), ...] slowest first}``, from a
    ``jax.profiler`` trace of ``call()`` (one blocking run of the compiled program whose
    optimised HLO is ``hlo``, a loop of SCAN_TRIPS iterations) repeated for ``seconds``.
    ``kernel_us`` (the kernels' summed time) can exceed the wall time where XLA runs
    independent kernels at once; tracing itself slows the wall time."""
    import jax

    instructions = loop_instructions(hlo, SCAN_TRIPS)
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d)
        reps, t0 = 0, time.perf_counter()
        while reps < 2 or time.perf_counter() - t0 < seconds:
            call()
            reps += 1
        us = (time.perf_counter() - t0) / (reps * SCAN_TRIPS) * 1e6
        jax.profiler.stop_trace()
        traces = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)
        if not traces:
            raise RuntimeError("jax.profiler wrote no trace.json.gz")
        with gzip.open(traces[0]) as f:
            events = json.load(f)["traceEvents"]
    times = kernel_times(instructions, events, reps * SCAN_TRIPS)
    if not times:  # a backend whose trace names its kernels otherwise (a GPU's cuBLAS, say)
        raise RuntimeError("no event of the trace is named after one of the loop's kernels")
    groups = {g: 0.0 for g in GROUPS}
    for name, t in times.items():
        groups[instructions[name][0]] += t
    rows = sorted(((t, n, *instructions[n]) for n, t in times.items()), reverse=True)
    return {"us_per_iteration": us, "kernel_us": sum(times.values()), "groups": groups, "kernels": rows}


def profile_table(name: str, p: dict, top: int) -> str:
    """Markdown: ``p``'s (from :func:`profile`) time per group, then its ``top`` slowest kernels."""
    total = p["kernel_us"] or 1.0
    lines = [
        f"{name}: {p['us_per_iteration']:.0f} µs per iteration (wall), {p['kernel_us']:.0f} µs in its kernels",
        "",
        "| group | µs / iteration | share |",
        "|---|---:|---:|",
    ]
    lines += [f"| {g} | {t:.0f} | {100 * t / total:.0f}% |" for g, t in p["groups"].items()]
    lines += ["", "| µs | kernel | group | source |", "|---:|---|---|---|"]
    lines += [f"| {t:.1f} | {n} | {g} | {s} |" for t, n, g, s in p["kernels"][:top]]
    return "\n".join(lines)


def variants(num_envs: int, batch_size: int, updates: int, **overrides) -> dict:
    """The two configs compared: plain MADDPG and the defaults (2-agent coupled CartPole),
    both with ``overrides``."""
    from benchmarks.compare import PLAIN
    from maddpg_jax import Config

    base = dict(num_envs=num_envs, batch_size=batch_size, updates_per_step=updates, buffer_size=1 << 16)
    return {
        "plain": Config(**{**base, **PLAIN, "eval_episodes": 0, **overrides}),
        "default": Config(**{**base, **overrides}),
    }


def table(rows: dict) -> str:
    cols = ["total", *KINDS, "other", "moves", "in loops", "loop trips"]
    head = "| variant | " + " | ".join(cols) + " | us / iteration | MFLOP / iteration |"
    lines = [head, "|---|" + "---:|" * (len(cols) + 2)]
    for name, r in rows.items():
        k = r["kernels"]
        cells = " | ".join(str(k.get(c, 0)) for c in cols)
        lines.append(f"| {name} | {cells} | {r['us_per_iteration']:.0f} | {r.get('mflop', 0.0):.1f} |")
    return "\n".join(lines)


def main() -> None:
    from maddpg_jax.config import STABILISERS_OFF

    p = argparse.ArgumentParser(description="Kernels per training iteration, by kind, beside its time.")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--updates-per-step", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0, help="time each variant runs for its timing")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides for both")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="also profile each: time per group, N slowest")
    p.add_argument(
        "--without",
        nargs="*",
        default=[],
        choices=sorted(STABILISERS_OFF),
        metavar="STABILISER",
        help=f"also the defaults with each of these turned off, one at a time ({', '.join(sorted(STABILISERS_OFF))})",
    )
    p.add_argument("--xla", nargs="*", default=[], metavar="OPTION=VALUE", help="XLA compile options for all")
    a = p.parse_args()
    from benchmarks.common import machine, parse_set

    overrides = parse_set(a.set)
    options = dict(item.split("=", 1) for item in a.xla)
    configs = variants(a.num_envs, a.batch_size, a.updates_per_step, **overrides)
    for field in a.without:
        off = {field: STABILISERS_OFF[field]}
        configs[f"default, {field}={off[field]}"] = configs["default"].replace(**off)
    rows = {k: measure(c, a.seconds, options, profiled=a.profile > 0) for k, c in configs.items()}
    settings = f"{overrides or 'defaults'}" + (f", XLA options {options}" if options else "")
    print(f"(E, B, U) = ({a.num_envs}, {a.batch_size}, {a.updates_per_step}), 2 agents, {settings}; ")
    print(f"{machine()}\n")
    print(table(rows))
    for k, r in rows.items():
        if "profile" in r:
            print("\n" + profile_table(k, r["profile"], a.profile))
        elif "profile_error" in r:
            print(f"\n{k}: no profile ({r['profile_error']})")


if __name__ == "__main__":
    main()
