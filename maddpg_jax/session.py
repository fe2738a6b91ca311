"""A run directory's host side, the short loop that wires its parts: the run's files
(`maddpg_jax.runfiles`: lock, config, metrics rows, summary), checkpoints
(`maddpg_jax.rundir.Checkpoints`), reporting (`maddpg_jax.reporting`) and signals
(`maddpg_jax.signals`); it stops cleanly on signals, write faults and non-finite members.

``Session(out, config, members).run()`` trains one member (``train``) or many (``sweep``)
through `maddpg_jax.loop.run_chunks`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path

import numpy as np

from maddpg_jax import envs, rundir
from maddpg_jax import members as members_lib
from maddpg_jax.config import HPARAM_NAMES, Config
from maddpg_jax.errors import UsageError, WriteFault
from maddpg_jax.loop import Chunk, plan_chunks, run_chunks
from maddpg_jax.reporting import Reporter, member_label, print_table, result_line, summarize
from maddpg_jax.runfiles import RunFiles, metric_rows
from maddpg_jax.signals import StopSignals
from maddpg_jax.training import LOSS_NAMES

# Seconds of wall time between checkpoints (besides the run's end, a signal and a stop on a
# fault). A checkpoint holds the whole state, replay buffers included: a 3-member
# simple_spread sweep's is 2 GB, about 9 s of writing on a 2-core CPU, so writing one per
# chunk (every 10,240 env steps) took 85% of such a run's wall time. Every 5 minutes bounds
# the work a SIGKILL can lose to 5 minutes and the writing to a few per cent of the run.
CHECKPOINT_EVERY_S = 300.0
TIMING_KEYS = ("compute_s", "host_s")  # per-chunk timing on a chunk's last rows (not part of the results)


def _import_ahead() -> None:
    """Import what a run needs only after its first chunks (orbax for checkpoints, matplotlib
    for the learning curve), run in a thread while the first programs compile: XLA's compiler
    releases the GIL, so the imports (0.7 s in line on a 2-core AMD EPYC) overlap it. A failed
    import is left for the import in line to report."""
    with contextlib.suppress(Exception):
        import orbax.checkpoint  # noqa: F401

        import maddpg_jax.plotting  # noqa: F401


class Session:
    """One run directory being trained. ``members``: see `maddpg_jax.members`."""

    def __init__(
        self,
        out: Path,
        config: Config,
        members: list[dict],
        resume: bool,
        progress: bool = True,
        tensorboard: bool = False,
        max_memory_gib: float | None = None,
        member_chunk: int | None = None,
        wandb_project: str | None = None,
        pbt=None,
        checkpoint_every: float = CHECKPOINT_EVERY_S,
    ):
        self.out, self.config, self.members = Path(out), config, members
        self.checkpoint_every = checkpoint_every  # wall seconds between checkpoints (0: after every chunk)
        self.pbt = pbt  # a maddpg_jax.pbt.PBTConfig: population-based training
        self.resume, self.progress, self.tensorboard = resume, progress, tensorboard
        self.wandb_project = wandb_project
        self.max_memory_gib, self.member_chunk = max_memory_gib, member_chunk
        self.sweep = len(members) > 1 or "actor_lr" in members[0]
        self.command = "pbt" if pbt is not None else "sweep" if self.sweep else "train"
        self.entry = envs.entry(config.env)
        self.signals = StopSignals()
        self.summary: list[dict] = []  # one row per member once the run has finished
        # In a multi-process job every process computes; process 0 alone writes files
        # (orbax coordinates the checkpoint itself and needs every process to call it).
        import jax

        self.primary = jax.process_index() == 0
        self.files = RunFiles(self.out, self.primary)

    def _warn(self, message: str) -> None:
        if self.primary:
            print(f"maddpg-jax: {self.out}: {message}", file=sys.stderr, flush=True)

    def _check_memory(self, shapes) -> None:
        """Refuse a state (``shapes``: its abstract leaves) larger than the devices' memory
        (or ``--max-memory``), before anything is allocated."""
        need = members_lib.state_bytes(shapes)
        limit = self.max_memory_gib * 2**30 if self.max_memory_gib else members_lib.device_memory_bytes()
        if limit is not None and need > limit:
            raise UsageError(
                f"--max-memory: the state needs about {need / 2**30:.2f} GiB ({len(self.members)} member(s); the "
                f"replay buffers take most) but only {limit / 2**30:.2f} GiB is available; lower --buffer-size, "
                f"--num-envs or the number of members"
            )

    def _saved(self, state, hp):
        """What a checkpoint holds: the training state, and with PBT the members' current
        hyperparameters too (they change as the run goes)."""
        return rundir.checkpoint_tree(state, hp, self.pbt is not None)

    def _start(self, ckpt, runner, state, hp):
        """(state, hparams, start iteration, wall seconds so far): restored when resuming,
        else fresh files written."""
        c = self.config
        if not self.resume:
            return state, hp, 0, 0.0
        try:
            restored, meta, _ = ckpt.restore_newest(
                self._saved(state, hp),
                c.to_dict(),
                warn=self._warn,
                set_aside=self.out / rundir.DAMAGED if self.primary else None,
            )
        except rundir.CheckpointError as e:
            raise UsageError(f"--resume: {e} in {self.out}; not loaded") from None
        if self.pbt is not None:
            state, hp = restored["train"], restored["hparams"]
        else:
            state = restored
        start = int(meta["iteration"])
        self.files.rewind(c, start, self.pbt is not None)
        return state, hp, start, float(meta["wall_s"])

    def run(self) -> int:
        """Train to ``config.total_env_steps``. Returns the exit status: 0 done, 3 stopped on
        a non-finite loss, 130 / 143 stopped by SIGINT / SIGTERM after a checkpoint."""
        if self.resume and not rundir.has_checkpoint(self.out):  # before any compile
            hint = "; the same command without --resume starts over" if rundir.unfinished_steps(self.out) else ""
            raise UsageError(f"--resume: {rundir.no_checkpoint_reason(self.out)}{hint}")
        # One writer per directory, taken before anything is written (process 0 writes the
        # files of a multi-process run, so it alone holds the lock).
        self.files.lock()
        try:
            return self._run()
        except rundir.FileFault as e:
            raise WriteFault(self._fault_line(e)) from None
        finally:
            self.files.release()

    def _fault_line(self, fault) -> str:
        """One line for a write that failed: the file, the OS's reason, the last good
        checkpoint (unfinished checkpoint directories are removed first)."""
        ckpt = getattr(self, "_ckpt", None)
        if ckpt is not None and self.primary:
            ckpt.discard_unfinished()
        last = ckpt.committed if ckpt is not None else None
        kept = (
            f"the last good checkpoint (env step {last * self.config.num_envs}) is kept in {ckpt.path / str(last)}; "
            f"continue with --resume once there is room"
            if last is not None
            else "no checkpoint was written yet; the same command starts again in this directory"
        )
        return f"cannot write {fault.path}: {fault.reason}; {kept}"

    def _run(self) -> int:
        c = self.config
        self.trainer, runner, placed = members_lib.build(c, self.members, self.member_chunk)
        keys, hp = members_lib.place(runner, c, placed)
        # Traced once: its shapes for the memory check, then compiled and run.
        init = runner.init.lower(keys, hp)
        self._check_memory(init.out_info)
        threading.Thread(target=_import_ahead, name="maddpg-jax-imports", daemon=True).start()
        fresh = init.compile()(keys, hp)
        if not self.resume:  # before orbax lists the directory's steps (see RunFiles.start)
            self.files.start(c, self.members, rundir.env_facts(self.trainer), self.pbt, self._warn)
        ckpt = self._ckpt = rundir.Checkpoints(self.out, asynchronous=True)
        try:
            state, hp, start, wall0 = self._start(ckpt, runner, fresh, hp)
            if start >= c.num_iterations:
                print(f"{self.out} is already at {start * c.num_envs} env steps; nothing to do")
                return 0
            return self._loop(ckpt, runner, state, hp, start, wall0)
        finally:
            ckpt.close()

    def _chunk_rows(self, chunk: Chunk) -> list[dict]:
        """The chunk's ``metrics.jsonl`` rows: its last logged step's with the chunk's compute
        and host seconds, a frozen member's with the env step it diverged at."""
        rows = metric_rows(
            self.config,
            self.trainer.spec,
            chunk.metrics,
            chunk.start,
            chunk.num_iterations,
            len(self.members),
            self.sweep,
            chunk.wall_s - chunk.chunk_s,
            chunk.wall_s,
        )
        for row in rows[-len(self.members) :] if rows else []:  # the chunk's last logged step
            row.update(compute_s=round(chunk.chunk_s, 4), host_s=round(chunk.host_s, 4))
        for row in rows:  # a frozen member's rows say since when
            at = self.diverged.get(row.get("member", 0), {}).get("diverged_at_env_steps")
            if at is not None and row["env_steps"] >= at:
                row["diverged_at_env_steps"] = at
        return rows

    def _loop(self, ckpt, runner, state, hp, start: int, wall0: float) -> int:
        c = self.config
        from maddpg_jax.background import Background

        self.background = Background()
        reporter = Reporter(self, start)
        self.status, self.last_good = 0, start
        self.diverged: dict[int, dict] = {}  # member -> diverged_at_env_steps, diverged_quantity
        self.host_s = 0.0  # host seconds between chunks, this process's run of them
        saved_at = wall0  # wall seconds at the last checkpoint (or the start)
        self.signals.install()

        def on_chunk(chunk: Chunk) -> bool:
            nonlocal saved_at
            self.host_s += chunk.host_s
            all_diverged = self._diverged(chunk)
            rows = self._chunk_rows(chunk)
            self.background.submit(self.files.append, rows)
            due = (
                chunk.end == c.num_iterations
                or self.signals.received is not None
                or all_diverged  # the members' last finite states, kept for eval and load_policy
                or chunk.wall_s - saved_at >= self.checkpoint_every
            )
            if due:
                # Asynchronous: the state is copied off the device here and written while the
                # next chunk runs (the previous write is waited for first).
                ckpt.save(chunk.end, self._saved(chunk.state, chunk.hparams), self._meta(runner, chunk))
                saved_at = chunk.wall_s
            self.last_good = ckpt.committed if ckpt.committed is not None else start
            reporter.chunk(rows, chunk)
            if all_diverged:
                self.status = 3
                print(self._all_diverged_line(chunk), file=sys.stderr)
                return False
            return self.signals.received is None

        adapt = None
        if self.pbt is not None:
            from maddpg_jax.pbt import Exploiter

            adapt = Exploiter(self, runner).adapt
        try:
            last, finished = run_chunks(runner, state, hp, plan_chunks(c, start), on_chunk, start, wall0, adapt=adapt)
            t_end = time.perf_counter()
            self.background.flush()  # every metrics row is on disk
            if finished or self.status == 3:
                from maddpg_jax.parallel import fetch

                # The summary and the plot are drawn while the last checkpoint is written.
                # Every process takes part in the gather; process 0 alone writes the summary.
                self._finish(fetch(last.hparams if last is not None else hp))
            ckpt.wait()  # the last checkpoint is on disk before the run says it is done
            self.last_good = ckpt.committed if ckpt.committed is not None else start
        finally:
            self.signals.restore()
            self.background.close()  # what is queued is written before the loggers close
            reporter.close()
        if self.signals.received is not None and self.status == 0:
            print(
                f"saved a checkpoint at env step {self.last_good * c.num_envs}; continue with:\n  maddpg-jax "
                f"{self.command} --out {self.out} --resume --total-env-steps "
                f"{c.total_env_steps}",
                file=sys.stderr,
            )
            return self.signals.status
        if self.primary and last is not None and (finished or self.status == 3):
            self.host_s += time.perf_counter() - t_end
            print(self._timing_line(time.perf_counter() - t_end + last.wall_s - wall0))
        return self.status

    def _all_diverged_line(self, chunk: Chunk) -> str:
        last = max(d["diverged_at_env_steps"] for d in self.diverged.values())
        return (
            f"\nstopped: every member went non-finite (the last at env step {last}); their last finite states "
            f"are checkpointed at env step {chunk.end * self.config.num_envs} in {self.out}"
        )

    def _meta(self, runner, chunk: Chunk) -> dict:
        """A checkpoint's JSON beside the state: where the run is, and how the state is split."""
        return {
            "iteration": chunk.end,
            "wall_s": chunk.wall_s,
            "config": self.config.to_dict(),
            "state_devices": runner.size,
            "members": len(self.members),
            "data_parallel": runner.num_members != len(self.members),
        }

    def _timing_line(self, wall: float) -> str:
        """Where this process's ``wall`` seconds of the run went: chunks against host work."""
        return (
            f"wall {wall:.1f} s: compiled chunks (compile included) {wall - self.host_s:.1f} s, host work "
            f"{self.host_s:.1f} s ({100 * self.host_s / max(wall, 1e-9):.1f}%)"
        )

    def _diverged(self, chunk: Chunk) -> bool:
        """Note the members that went non-finite in ``chunk`` (one line each: the member,
        the quantity, the env step; the program froze them there and the others train on).
        Returns whether every member now has."""
        m = chunk.metrics
        at = np.asarray(m.diverged_at)[: len(self.members)]  # [members, iterations]
        for member in range(len(self.members)):
            hits = np.flatnonzero(at[member] >= 0)
            if member in self.diverged or not hits.size:
                continue
            i = hits[0]
            what = ", ".join(k for k in LOSS_NAMES if not np.isfinite(getattr(m, k)[member, i])) or "parameters"
            self.diverged[member] = {"diverged_at_env_steps": int(at[member, i]), "diverged_quantity": what}
            who = f"member {member} ({member_label(self.config, self.members[member])})" if self.sweep else "the run"
            others = "; the other members train on" if len(self.members) > 1 else ""
            print(
                f"\n{who}: non-finite {what} at env step {int(at[member, i])}: frozen at its last finite state{others}",
                file=sys.stderr,
            )
        return len(self.diverged) == len(self.members)

    # -- the end ----------------------------------------------------------------------------

    def plot(self) -> None:
        """(Re)write the learning curve from ``metrics.jsonl``: one series per member,
        labelled with the member's seed and hyperparameters."""
        from maddpg_jax.plotting import plot_curves, series_by_member

        c = self.config
        rows = self.files.rows()
        labels = {m: member_label(c, member) for m, member in enumerate(self.members)} if self.sweep else None
        extra = {}
        if self.pbt is not None:  # members change hyperparameters: their schedules are drawn below
            from maddpg_jax.pbt import plot_schedules

            labels, extra = None, plot_schedules(self.out)
        spec = self.trainer.spec
        title = f"{c.env} ({spec.num_agents} agents, {'discrete' if spec.discrete else 'continuous'})"
        plot_curves(
            series_by_member(rows, labels),
            self.out / rundir.CURVE,
            title=title,
            solved=self.entry.solved_return,
            **extra,
        )

    def _finish(self, hp):
        if not self.primary:
            return
        self.plot()
        rows = self.files.rows()
        members = self.members
        if self.pbt is not None:  # the hyperparameters each member ended with
            final = {n: np.asarray(getattr(hp, n)) for n in HPARAM_NAMES}
            members = [{**m, **{n: float(final[n][i]) for n in HPARAM_NAMES}} for i, m in enumerate(members)]
        summary = summarize(self.config, members, rows, self.entry.solved_return)
        for m, entry in enumerate(summary):  # null for members that trained to the end
            entry.update(self.diverged.get(m, {"diverged_at_env_steps": None, "diverged_quantity": None}))
        self.summary = summary
        self.files.finish(summary, self.sweep)
        if self.sweep:
            print_table(summary)
        finite = [s for s in summary if s["diverged_at_env_steps"] is None] or summary
        best = max(finite, key=lambda s: -1e18 if s["final_mean_return"] is None else s["final_mean_return"])
        print(result_line(best, self.sweep))
