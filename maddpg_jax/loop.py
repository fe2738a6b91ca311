"""The one host loop: compiled chunks of the training loop, with a callback between them.

The CLI, the benchmarks and the tests all run training through `run_chunks` (the
idea of brax's ``progress_fn``). Inside a chunk there is no host round trip; between chunks
the callback logs, checkpoints, draws progress or stops the run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from maddpg_jax.config import Config
from maddpg_jax.parallel import MemberRunner


@dataclasses.dataclass
class Chunk:
    """What the callback sees after each chunk."""

    start: int  # iterations done before the chunk
    num_iterations: int  # iterations in the chunk
    learn: bool  # False for the random-action warm-up
    state: Any  # the training state after the chunk (members on the leading axis)
    metrics: Any  # host numpy Metrics, every field [members, num_iterations, ...]
    wall_s: float  # seconds since the run started (plus the resumed run's earlier seconds)
    chunk_s: float  # seconds this chunk took: dispatch to its metrics on the host (compile included)
    hparams: Any = None  # the members' hyperparameters for the next chunk (after ``adapt``)
    host_s: float = 0.0  # host seconds between the previous chunk's metrics and this chunk's dispatch

    @property
    def end(self) -> int:
        return self.start + self.num_iterations


def plan_chunks(config: Config, start: int = 0) -> list[tuple[int, bool, bool]]:
    """``(iterations, learn, select)`` chunks from iteration ``start`` to the end of the run:
    the random-action warm-up (in chunks of at most 4 evaluation intervals), then learning
    chunks that end on multiples of ``config.eval_interval`` counted from iteration 0 (the
    last may end short). ``select``: the chunk ends on such a multiple, so policy selection
    runs after it (when ``eval_episodes > 0``). The same plan from any chunk boundary gives
    the same boundaries, which is what makes resume exact; ``make_train`` follows it too."""
    w, n, k = config.warmup_iterations, config.num_iterations, config.eval_interval
    plan, it = [], start
    while it < n:
        learn = it >= w
        end = min(n, (it // k + 1) * k) if learn else min(w, it + 4 * k)
        plan.append((end - it, learn, learn and end % k == 0))
        it = end
    return plan


def compile_chunks(runner: MemberRunner, state, hparams, plan) -> None:
    """Compile every distinct chunk of ``plan`` ahead of time (so callers can time
    compilation apart from running)."""
    for n, learn, select in sorted(set(plan)):
        runner.compile_chunk(state, hparams, n, learn, select, donate=True)


def run_chunks(
    runner: MemberRunner,
    state,
    hparams,
    plan,
    on_chunk: Callable[[Chunk], bool | None] | None = None,
    start: int = 0,
    wall_offset: float = 0.0,
    clock=time.perf_counter,
    adapt: Callable[[Chunk], tuple] | None = None,
):
    """Run ``plan`` (from `plan_chunks`) from iteration ``start``.

    After each chunk, ``adapt(chunk) -> (state, hparams)`` (population-based training's
    exploit step, `maddpg_jax.pbt`) may replace the state and hyperparameters the run
    goes on with; then ``on_chunk(chunk)`` is called; returning ``False`` stops the loop.
    ``state`` is donated to the first chunk and each chunk's state to the next (no copy of
    the replay buffer per chunk): use only the last chunk's. Returns ``(last chunk or None,
    whether the plan ran to its end)``. The caller decides
    from the chunk what to keep (a chunk with non-finite losses, say, is not checkpointed).
    """
    t0 = clock() - wall_offset
    it, chunk = start, None
    last = clock()  # when the host last had the device's results
    for n, learn, select in plan:
        t_chunk = clock()
        state, metrics = runner.run_chunk(state, hparams, n, learn, select, donate=True, fetched=True)
        now = clock()
        chunk = Chunk(it, n, learn, state, metrics, now - t0, now - t_chunk, hparams, t_chunk - last)
        last = now
        if adapt is not None:
            state, hparams = adapt(chunk)
            chunk.state, chunk.hparams = state, hparams
        it += n
        if on_chunk is not None and on_chunk(chunk) is False:
            return chunk, False
    return chunk, True
