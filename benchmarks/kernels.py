"""Kernels per training iteration, counted from the compiled program, beside its time.

    python benchmarks/kernels.py [--num-envs 16] [--batch-size 256] [--updates-per-step 1]

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
measured on the same program, one member on one device.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
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


def count(comps: dict, name: str) -> Counter:
    """Kernels one execution of computation ``name`` launches, by kind."""
    total: Counter = Counter()
    for line in comps[name]:
        m = _INST.match(line)
        if not m or m.group(1) in FREE:
            continue
        op = m.group(1)
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
            branches = re.search(r"branch_computations=\{([^}]*)\}", line)
            names = [b.strip().lstrip("%") for b in branches.group(1).split(",")] if branches else []
            names += [n for n in (_attr(line, "true_computation"), _attr(line, "false_computation")) if n]
            counts = [count(comps, b) for b in names]
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
    for line in comps[entry]:
        m = _INST.match(line)
        if m and m.group(1) == "while" and trip_count(line) == trips:
            c = count(comps, _attr(line, "body"))
            c["total"] = sum(c[k] for k in (*KINDS, "other"))
            return c
    raise ValueError(f"no loop with {trips} trips in the entry computation")


SCAN_TRIPS = 7  # a trip count no inner loop has, to find the scan's own loop


def measure(config, seconds: float = 3.0) -> dict:
    """Kernels per iteration of ``config``'s compiled loop and its measured time."""
    import jax

    from maddpg_jax.train import make_trainer

    trainer = make_trainer(config)
    hp = config.hparams()
    state = jax.jit(trainer.init)(config.key(0), hp)
    compiled = trainer.run.lower(state, hp, SCAN_TRIPS, True).compile()
    kernels = loop_body_kernels(compiled.as_text(), SCAN_TRIPS)
    n = SCAN_TRIPS  # time the very program counted
    state, _ = jax.block_until_ready(compiled(state, hp))  # warm up
    reps, t0 = 0, time.perf_counter()
    while reps < 2 or time.perf_counter() - t0 < seconds:
        state, _ = jax.block_until_ready(compiled(state, hp))
        reps += 1
    us = (time.perf_counter() - t0) / (reps * n) * 1e6
    return {"kernels": dict(kernels), "us_per_iteration": us}


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
    lines = ["| variant | " + " | ".join(cols) + " | us / iteration |", "|---|" + "---:|" * (len(cols) + 1)]
    for name, r in rows.items():
        k = r["kernels"]
        lines.append(f"| {name} | " + " | ".join(str(k.get(c, 0)) for c in cols) + f" | {r['us_per_iteration']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description="Kernels per training iteration, by kind, beside its time.")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--updates-per-step", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0, help="time each variant runs for its timing")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides for both")
    a = p.parse_args()
    from benchmarks.common import machine, parse_set

    overrides = parse_set(a.set)
    rows = {
        k: measure(c, a.seconds) for k, c in variants(a.num_envs, a.batch_size, a.updates_per_step, **overrides).items()
    }
    print(f"(E, B, U) = ({a.num_envs}, {a.batch_size}, {a.updates_per_step}), 2 agents, {overrides or 'defaults'}; ")
    print(f"{machine()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
