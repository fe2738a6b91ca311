"""Run many sweep members (seeds x hyperparameters) as one program across devices.

Members are independent, so they are split over a 1-D ``Mesh`` of devices with
``shard_map`` (each device runs its own members, no communication: vmapped on an
accelerator, in small vmapped chunks on a CPU, see `default_member_chunk`). Plain
``NamedSharding`` propagation through the vmapped scan was measured 1.6x *slower* than one
device on a 2-core CPU (it inserted collectives), ``shard_map`` 1.6x faster.

On CPU, XLA runs one device's program on about one core, so `configure_host_devices`
exposes one CPU device per core (unless the user's ``XLA_FLAGS`` already says how many).
It must run before JAX creates its backend: call it before the first JAX computation.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np

DEVICE_FLAG = "--xla_force_host_platform_device_count"


def configure_host_devices(count: int | None = None) -> None:
    """Ask XLA for ``count`` (default: one per core) CPU devices, respecting XLA_FLAGS."""
    flags = os.environ.get("XLA_FLAGS", "")
    if DEVICE_FLAG in flags:
        return
    count = count or os.cpu_count() or 1
    os.environ["XLA_FLAGS"] = f"{flags} {DEVICE_FLAG}={count}".strip()


def devices_for(num_members: int, devices=None) -> list:
    """The devices to spread ``num_members`` over: all of them, or fewer when there are
    fewer members than devices."""
    import jax

    devices = list(devices if devices is not None else jax.devices())
    return devices[: max(1, min(len(devices), num_members))]


def padded_size(num_members: int, num_devices: int) -> int:
    """Members rounded up to a multiple of the device count (extra members are dropped)."""
    return -(-num_members // num_devices) * num_devices


def pad_members(tree: Any, size: int) -> Any:
    """Repeat the last member along axis 0 until the leading axis is ``size``."""
    import jax
    import jax.numpy as jnp

    def pad(x):
        n = x.shape[0]
        return x if n == size else jnp.concatenate([x, jnp.repeat(x[-1:], size - n, axis=0)])

    return jax.tree.map(pad, tree)


LOOP_STATE_LIMIT = 64 * 2**20  # bytes of one member's training state (replay buffer mostly)


def default_member_chunk(devices, member_state_bytes: int = 0) -> int:
    """Members vmapped together on one device, the rest looped over (see MemberRunner).

    Accelerators: all of them (a GPU wants wide batches). CPU: one at a time when there are
    several devices, 4 with one, unless a member's state exceeds ``LOOP_STATE_LIMIT``: then
    all. Measured on a 2-core CPU at (E, B, U) = (16, 256, 1), 32
    members: vmapping all 16 per device gave 12,164 env steps/s, looping one at a time
    22,792; on one device, all vmapped 9,684 and chunks of 4 11,051 (one at a time 9,491).
    Aggregate env steps/s fell as members were added when all were vmapped (activations of
    every member in each batched op outgrow the 2 MiB L2) and stay flat when chunked.
    But the loop slices each member's state out and stacks it back at every call, replay
    buffer included: with a 1M-transition buffer (MPE simple_spread, 520 MB a member) that
    cost 2.9 s a chunk, and 40 iterations of 5 members took 3.98 s looped against 1.08 s
    vmapped (100k transitions: 1.01 against 1.09 s; AMD EPYC, 2 cores).
    """
    if devices[0].platform != "cpu" or member_state_bytes > LOOP_STATE_LIMIT:
        return 2**31 - 1
    return 1 if len(devices) > 1 else 4


def state_bytes(trainer) -> int:
    """Bytes of one member's training state (shapes only: nothing is allocated)."""
    import jax

    shapes = jax.eval_shape(trainer.init, trainer.config.key(0), trainer.config.hparams())
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes) if hasattr(x, "dtype") and x.shape)


class MemberRunner:
    """``init`` and ``run`` of a `Trainer` over a member axis.

    Args:
        trainer: from `maddpg_jax.make_trainer`.
        num_members: members the caller cares about; padded to a multiple of the devices.
        devices: defaults to all of ``jax.devices()`` (at most ``num_members`` of them).
        member_chunk: members vmapped together on a device, in a loop over its members
            (``None``: `default_member_chunk`). Changes speed, not results (beyond
            float32 rounding).
    """

    def __init__(self, trainer, num_members: int, devices=None, member_chunk: int | None = None):
        from jax.sharding import Mesh, NamedSharding
        from jax.sharding import PartitionSpec as P

        self.trainer = trainer
        self.num_members = num_members
        self.devices = devices_for(num_members, devices)
        self.size = padded_size(num_members, len(self.devices))
        if member_chunk is not None and (not isinstance(member_chunk, int) or member_chunk < 1):
            raise ValueError(f"member_chunk must be an integer >= 1 or None (automatic), got {member_chunk!r}")
        if member_chunk is None:
            # A member's state size matters only to a CPU device looping over several members.
            several = self.size > len(self.devices) and self.devices[0].platform == "cpu"
            member_chunk = default_member_chunk(self.devices, state_bytes(trainer) if several else 0)
        self.member_chunk = member_chunk
        self.mesh = Mesh(np.array(self.devices), ("members",))
        self.sharding = NamedSharding(self.mesh, P("members"))
        self._spec = P("members")
        self._compiled: dict = {}
        self.init = self._wrap(trainer.init)

    def _wrap(self, fn: Callable, donate: bool = False, shared: int = 0, members: int = 2) -> Callable:
        """``fn`` over the members: the arguments lead with the member axis, except the
        last ``shared`` ones, which every member gets whole (replicated scalars); with
        ``shared``, ``fn`` takes ``members`` member-axis arguments before them."""
        import jax
        from jax.sharding import PartitionSpec as P

        local_members, chunk = self.size // len(self.devices), self.member_chunk
        if local_members == 1:
            # Squeeze rather than vmap over a size-1 axis. Same values, but XLA:CPU (jaxlib
            # 0.10) lowers the layer norm's backward reductions with a size-1 batch axis to
            # library fusions that made the whole iteration 1.6x slower (5.4 against 3.4 ms
            # at the default E64 B128 U4; 2.52 against 1.64 ms at E16 B256 U1).
            def local(*args):
                n = len(args) - shared
                out = fn(*jax.tree.map(lambda x: x[0], args[:n]), *args[n:])
                return jax.tree.map(lambda x: x[None], out)
        elif chunk >= local_members:

            def local(*args):
                return jax.vmap(fn, in_axes=(0,) * (len(args) - shared) + (None,) * shared)(*args)
        else:
            # A loop over chunks of members, each chunk vmapped: results as vmap's, but the
            # working set (activations of every member in a batched op) stays in cache.
            def local(*args):
                n = len(args) - shared
                return jax.lax.map(lambda a: fn(*a, *args[n:]), args[:n], batch_size=chunk if chunk > 1 else None)

        in_specs = self._spec if not shared else (self._spec,) * members + (P(),) * shared
        mapped = jax.shard_map(local, mesh=self.mesh, in_specs=in_specs, out_specs=self._spec)
        return jax.jit(mapped, donate_argnums=(0,) if donate else ())

    def place(self, tree: Any) -> Any:
        """Pad the member axis and shard it over the devices.

        Every process passes the same full host value; each builds only the shards of its
        own devices (``make_array_from_callback``), so this works across hosts too.
        """
        import jax

        def put(x):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, self.sharding, lambda idx: host[idx])

        return jax.tree.map(put, pad_members(tree, self.size))

    def abstract_init(self, keys, hparams):
        """The state ``init(keys, hparams)`` would make, without compiling or running it
        (tracing only): arrays as ``jax.ShapeDtypeStruct`` placed as the runner places the
        state, keys as placeholder keys of ``keys``' impl. What a checkpoint restore needs as
        its ``like`` (`maddpg_jax.rundir.Checkpoints.restore`); compiling the init for it took
        most of ``eval``'s time."""
        import jax
        import jax.numpy as jnp

        impl = jax.random.key_impl(keys)

        def leaf(x):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                data = jax.eval_shape(jax.random.key_data, x)
                zeros = jnp.zeros(data.shape, data.dtype, device=self.sharding)
                return jax.random.wrap_key_data(zeros, impl=impl)
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.sharding)

        return jax.tree.map(leaf, self.init.lower(keys, hparams).out_info)

    @functools.cache
    def _run(self, num_iterations: int, learn: bool, select: bool = False, donate: bool = False):
        run = self.trainer.run.__wrapped__
        return self._wrap(lambda s, h: run(s, h, num_iterations, learn, select), donate)

    def run(self, state, hparams, num_iterations: int, learn: bool, select: bool = False, donate: bool = False):
        """(state, metrics [members, num_iterations]) after ``num_iterations`` steps.

        ``donate``: the input ``state``'s buffers are given to the output (the caller must
        not use ``state`` again). Without it, XLA must copy the whole state, replay buffer
        included, into fresh memory at every call: with a 1M-transition buffer per member
        that copy doubled a chunk's time (MPE simple_spread, 5 members, AMD EPYC 2 cores)
        and it doubles the state's peak memory on any device."""
        compiled = self._compiled.get((num_iterations, learn, select, donate))
        if compiled is not None:
            return compiled(state, hparams)
        return self._run(num_iterations, learn, select, donate)(state, hparams)

    def _by_length(self, num_iterations: int, learn: bool) -> bool:
        """Whether the host loop's chunk runs through ``trainer.run_upto`` (one program for
        every length) rather than ``trainer.run`` (one per length). Learning chunks shorter
        than a full one do on every device, which spares a run the compilations of its
        first and last chunks. On a CPU full ones do too: the loop with a traced trip count
        ran as fast as the scan there (measured, default config: 1.32-1.38 against
        1.34-1.61 s per 160 iterations) and then a run compiles one learning program.
        XLA:GPU runs a loop whose trip count it cannot know by copying the condition to the
        host on every trip (not measured here), so on accelerators full chunks keep the
        scan."""
        full = self.trainer.config.chunk_iterations
        return learn and num_iterations <= full and (num_iterations < full or self.devices[0].platform == "cpu")

    @functools.cache
    def _run_upto(self, donate: bool):
        return self._wrap(self.trainer.run_upto.__wrapped__, donate, shared=2)

    def run_chunk(
        self, state, hparams, num_iterations: int, learn: bool, select: bool, donate: bool = False, fetched=False
    ):
        """`run` as the host loop calls it (same values), through one compiled
        program for chunks of any length where `_by_length` says so. ``fetched``: the
        metrics as host numpy (`fetch`), cut to the chunk's rows on the host, which spares
        a chunk of a new length the compilation of a slice per metric on the device."""
        import jax

        if not self._by_length(num_iterations, learn):
            state, metrics = self.run(state, hparams, num_iterations, learn, select, donate)
            return state, fetch(metrics) if fetched else metrics
        fn = self._compiled.get(("upto", donate)) or self._run_upto(donate)
        # numpy scalars: the same host value on every process, replicated by jit.
        state, metrics = fn(state, hparams, np.int32(num_iterations), np.bool_(select))
        if fetched:
            metrics = fetch(metrics)
        return state, jax.tree.map(lambda x: x[:, :num_iterations], metrics)

    def compile_chunk(self, state, hparams, num_iterations: int, learn: bool, select: bool, donate: bool = False):
        """Compile what `run_chunk` with these arguments will run (once for every
        chunk that goes through ``run_upto``)."""
        if not self._by_length(num_iterations, learn):
            return self.compile(state, hparams, num_iterations, learn, select, donate)
        if ("upto", donate) not in self._compiled:
            lowered = self._run_upto(donate).lower(state, hparams, np.int32(0), np.bool_(False))
            self._compiled[("upto", donate)] = lowered.compile()
        return self._compiled[("upto", donate)]

    def compile(self, state, hparams, num_iterations: int, learn: bool, select: bool = False, donate: bool = False):
        """Compile ahead of time (so the caller can time compilation apart from running);
        `run` with the same arguments then uses this executable (jit's own cache would
        not see it). Returns the executable (for its ``memory_analysis``, say)."""
        fn = self._run(num_iterations, learn, select, donate)
        compiled = fn.lower(state, hparams).compile()
        self._compiled[(num_iterations, learn, select, donate)] = compiled
        return compiled


def fetch(tree: Any) -> Any:
    """Device arrays -> host numpy, gathering shards from every process when there are
    several (every process gets the whole value)."""
    import jax

    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def initialize_distributed(
    coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """``jax.distributed.initialize`` for a multi-process run (arguments, or JAX's usual
    environment variables / cluster auto-detection when ``None``). On CPU, collectives go
    through gloo, so several local processes (or hosts) form one set of devices."""
    import jax

    # Only CPU collectives read this; asking for the backend here would start it too early.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
