"""The run directory: config.json, metrics.jsonl, checkpoints/ (orbax), plots.

Every file is written so that a crash at any moment leaves the previous version readable:
whole files are written to a temporary name and renamed (atomic on POSIX); metrics rows
are appended whole and fsynced, and a torn last line (a crash mid-append) is dropped on
read and on resume; checkpoints are orbax's, which commit by renaming a finished
temporary directory.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.jsonl"
PBT = "pbt.jsonl"  # population-based training: one row per member replaced
EVAL = "eval.json"
CHECKPOINTS = "checkpoints"
DAMAGED = "damaged_checkpoints"  # checkpoints that failed to read, set aside on resume
CURVE = "learning_curve.png"
# 2: per-team episode statistics in the state; 3: flat parameters; 4: diverged_at; 5: checksums
FORMAT_VERSION = 5
CHECKSUMS = "checksums.json"  # in each checkpoint's directory: every file's size and SHA-256


class FileFault(OSError):
    """Writing ``path`` failed; ``reason`` is the OS's (``No space left on device``...)."""

    def __init__(self, path: Path | str, error: BaseException):
        from maddpg_jax.errors import os_reason

        self.path = Path(path)
        self.reason = os_reason(error) or (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        super().__init__(f"cannot write {self.path}: {self.reason}")


def publish(tmp: str, path: Path | str) -> None:
    """Give a finished temporary file the usual permissions and rename it into place.

    ``mkstemp`` creates files readable by their owner only; results should be readable
    like any other file the user writes (0666 less the umask).
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed into place); a write
    that fails raises `FileFault` and leaves the previous version and no temporary."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, FileFault):
            raise FileFault(path, e) from e
        raise


def write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_jsonl(path: Path | str) -> list[dict]:
    """Rows of a JSONL file; a torn (unparseable) last line is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # a crash mid-append
            raise ValueError(f"{path}: line {i + 1} is not JSON") from None
    return rows


def append_jsonl(path: Path | str, rows: Iterable[dict]) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    if not text:
        return
    try:
        with open(path, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:  # a torn last line is dropped on read and on resume
        raise FileFault(path, e) from e


def truncate_metrics(path: Path | str, max_env_steps: int, every_env_steps: int = 1) -> None:
    """Keep only whole rows with ``env_steps <= max_env_steps`` that fall on a multiple of
    ``every_env_steps`` (atomic rewrite)."""
    rows = [
        r
        for r in read_jsonl(path)
        if r.get("env_steps", 0) <= max_env_steps and r.get("env_steps", 0) % every_env_steps == 0
    ]
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


class NoRunError(ValueError):
    """The directory has no config.json."""


def read_run(run_dir: Path | str):
    """``(Config, members)`` from a run directory's config.json.

    Raises `NoRunError` when there is none, ``ValueError`` saying what is wrong when
    it cannot be used (not JSON, unknown or bad fields, members not a list of seeds).
    """
    from maddpg_jax.config import Config

    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise NoRunError(f"{CONFIG} not found in {run_dir}")
    try:
        saved = json.loads(path.read_text())
        config = Config.from_dict(saved["config"])
        members = saved["members"]
        if not (
            isinstance(members, list)
            and members
            and all(isinstance(m, dict) and isinstance(m.get("seed"), int) for m in members)
        ):
            raise ValueError("members must be a non-empty list of objects with an integer seed")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a valid run config ({e})") from None
    return config, members


def read_run_as(run_dir: Path | str, flag: str):
    """`read_run`, its errors as one `UsageError` line that
    starts with ``flag`` (the argument that named ``run_dir``)."""
    from maddpg_jax.errors import UsageError

    try:
        return read_run(run_dir)
    except NoRunError:
        raise UsageError(f"{flag}: no run in {run_dir} ({CONFIG} not found)") from None
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from None


def env_facts(trainer) -> dict:
    """What the env of a run really is, for config.json: agents, teams, spaces, horizon."""
    env, spec = trainer.env, trainer.spec
    return {
        "agents": list(env.agents),
        "teams": {name: [env.agents[i] for i in idx] for name, idx in spec.teams},
        "obs_sizes": list(env.obs_sizes),
        "action_type": env.action_type,
        "act_sizes": list(env.act_sizes),
        "horizon": env.horizon(trainer.env_params),
    }


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def keys_to_data(tree):
    """Typed PRNG keys -> their uint32 data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def data_to_keys(tree, like):
    return jax.tree.map(
        lambda x, ref: jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref)) if _is_key(ref) else x, tree, like
    )


def is_pbt_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` was made by ``pbt`` (it writes its lineage file from the start)."""
    return (Path(run_dir) / PBT).exists()


def checkpoint_tree(state, hparams, pbt: bool):
    """What a run's checkpoint holds: the training state, and for a ``pbt`` run the members'
    current hyperparameters beside it (they change as the run goes), as ``{"train", "hparams"}``."""
    return {"train": state, "hparams": hparams} if pbt else state


def _check_all_read(step: int, state) -> None:
    """Raise `CheckpointError` where a restored ``state`` still holds abstract leaves: a
    partial read leaves what the checkpoint lacks as it was given, so another state's
    checkpoint (a pbt run's read as a train run's) must not pass as read."""
    missing = [
        jax.tree_util.keystr(path)
        for path, x in jax.tree_util.tree_leaves_with_path(state)
        if isinstance(x, jax.ShapeDtypeStruct)
    ]
    if missing:
        raise CheckpointError(
            f"checkpoint {step} holds another state's layout (it lacks {', '.join(missing[:3])}"
            f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''})"
        )


def _drop_empty(tree):
    """Zero-size leaves (MPE simple's communication state) as ``None``: orbax refuses to
    save them, and they hold nothing to save."""
    return jax.tree.map(lambda x: None if x.size == 0 else x, tree)


def _fill_empty(restored, like):
    """Put ``like``'s zero-size leaves back where `_drop_empty` left ``None`` (made, where
    ``like`` is abstract)."""

    def fill(ref, x):
        if x is not None:
            return x
        if isinstance(ref, jax.ShapeDtypeStruct):
            return jax.numpy.zeros(ref.shape, ref.dtype, device=ref.sharding)
        return ref

    return jax.tree.map(fill, like, restored, is_leaf=lambda x: x is None)


def _is_buffer(x) -> bool:
    from maddpg_jax.buffer import BufferState

    return isinstance(x, BufferState)


def _map_buffers(fn, tree, *rest):
    """``tree`` with ``fn(buffer, *the same buffer of each of rest)`` in place of each replay
    buffer (`maddpg_jax.buffer.BufferState`); ``rest``: trees of ``tree``'s structure."""
    return jax.tree.map(lambda x, *r: fn(x, *r) if _is_buffer(x) else x, tree, *rest, is_leaf=_is_buffer)


def filled_rows(state) -> int | None:
    """Rows of the replay buffers in ``state`` that any member (or data-parallel device) has
    written: the largest ``size``. The rest are the zeros they were created with (a buffer
    fills from row 0 and wraps only once full). ``None`` when ``state`` holds no buffer."""
    from maddpg_jax.parallel import fetch

    sizes = [b.size for b in jax.tree.leaves(state, is_leaf=_is_buffer) if _is_buffer(b)]
    return max(int(np.max(s)) for s in fetch(sizes)) if sizes else None


@functools.cache
def _slice_rows(axis: int, rows: int):
    return jax.jit(lambda data: jax.tree.map(lambda x: jax.lax.slice_in_dim(x, 0, rows, axis=axis), data))


def trim_buffers(state, rows: int):
    """``state`` with each replay buffer's data cut to its first ``rows`` rows (the row axis
    follows the leading member / device axes, as many as ``size`` has). The cut rows are
    copied on the device until the caller drops them."""

    def trim(b):
        axis = b.size.ndim
        if rows >= jax.tree.leaves(b.data)[0].shape[axis]:
            return b
        return b.replace(data=_slice_rows(axis, rows)(b.data))

    return _map_buffers(trim, state)


def _like_rows(like, rows: int):
    """``like`` (a live state) with each replay buffer's data leaves as abstract arrays of
    ``rows`` rows, the shape a trimmed checkpoint holds."""

    def cut(b):
        axis = b.size.ndim

        def leaf(x):
            shape = x.shape[:axis] + (min(rows, x.shape[axis]),) + x.shape[axis + 1 :]
            return jax.ShapeDtypeStruct(shape, x.dtype, sharding=x.sharding)

        return b.replace(data=jax.tree.map(leaf, b.data))

    return _map_buffers(cut, like)


def _pad_rows(state, like):
    """``state``'s replay buffers padded with zero rows to ``like``'s capacity (the row axis
    only: the member axis may differ, see `_replace_members`)."""

    def pad(b, ref):
        axis = b.size.ndim

        def leaf(x, r):
            if x.shape[axis] == r.shape[axis]:
                return x
            widths = [(0, 0)] * x.ndim
            widths[axis] = (0, r.shape[axis] - x.shape[axis])
            return jax.jit(lambda a: jax.numpy.pad(a, widths), out_shardings=x.sharding)(x)

        return b.replace(data=jax.tree.map(leaf, b.data, ref.data))

    return _map_buffers(pad, state, like)


def committed_steps(run_dir: Path | str) -> list[int]:
    """The steps of the checkpoints orbax committed in ``run_dir``, newest first, read from
    the directory's names (orbax commits a step by renaming its finished temporary directory
    to the step number; imports nothing, creates nothing)."""
    path = Path(run_dir) / CHECKPOINTS
    if not path.is_dir():
        return []
    return sorted((int(p.name) for p in path.iterdir() if p.name.isdigit() and p.is_dir()), reverse=True)


def unfinished_steps(run_dir: Path | str) -> list[int]:
    """Committed checkpoints without their checksums, newest first: the process ended
    between orbax's commit and the checksums (a SIGKILL, a power cut), so their bytes can
    never be proven intact. Such a checkpoint is not a finished one."""
    path = Path(run_dir) / CHECKPOINTS
    return [s for s in committed_steps(run_dir) if not (path / str(s) / CHECKSUMS).exists()]


def has_checkpoint(run_dir: Path | str) -> bool:
    """Whether ``run_dir`` holds a finished checkpoint: committed, with its checksums."""
    unfinished = set(unfinished_steps(run_dir))
    return any(s not in unfinished for s in committed_steps(run_dir))


def no_checkpoint_reason(run_dir: Path | str) -> str:
    """Why ``run_dir`` has no finished checkpoint, for a one-line refusal."""
    cut = unfinished_steps(run_dir)
    if not cut:
        return f"{run_dir} has no checkpoint"
    return (
        f"{run_dir} has no finished checkpoint: checkpoint {cut[0]} was cut off before its checksums were "
        f"written, so its bytes cannot be proven intact"
    )


def set_aside_unfinished(run_dir: Path | str, warn) -> None:
    """Move the committed checkpoints without checksums to ``DAMAGED`` (kept, not deleted),
    saying so through ``warn(message)``: a new run in ``run_dir`` must not build on them or
    have orbax count them among its own. Only the directory's writer may call this."""
    run_dir = Path(run_dir)
    for step in unfinished_steps(run_dir):
        target = run_dir / DAMAGED / str(step)
        if target.exists():
            target = run_dir / DAMAGED / f"{step}.{os.getpid()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(run_dir / CHECKPOINTS / str(step), target)
        warn(f"checkpoint {step} was cut off before its checksums (cannot be proven intact); moved to {target}")


# The checkpoint directories this process writes to (as given and absolute): an error record
# that names one is about a write of ours.
_WRITING: set[str] = set()


def _orbax_error_record(record: logging.LogRecord) -> bool:
    """Whether ``record`` is an error about one of this process's checkpoint writes: logged
    by orbax's own modules (through absl's logger), or an orbax task's or TensorStore
    future's exception that nothing retrieved (asyncio's logger, when it is collected), told
    by a frame of orbax's in its traceback or by its text naming a directory in `_WRITING`."""
    if record.levelno < logging.ERROR:
        return False
    inside = f"{os.sep}orbax{os.sep}"
    if inside in record.pathname:
        return True
    error = record.exc_info[1] if record.exc_info else None
    tb = error.__traceback__ if error is not None else None
    while tb is not None:
        if inside in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    text = f"{record.getMessage()} {error}"
    return any(path in text for path in _WRITING)


class _DropOrbaxErrors(logging.Filter):
    """On absl's and asyncio's loggers: drops the error records of a failed checkpoint write
    (reported once per thread, task and future that saw it, each with a traceback); the
    caller reports the fault once, in one line (`FileFault`). Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _orbax_error_record(record)


def _is_closed_loop_echo(unraisable) -> bool:
    """After a failed write, TensorStore's threads still complete the write's other futures
    and call back into orbax's asyncio loop, which has closed: Python reports each callback's
    ``RuntimeError('Event loop is closed')`` as unraisable. These are echoes of the one fault."""
    e = unraisable.exc_value
    return type(e) is RuntimeError and str(e) == "Event loop is closed"


def _quiet_failed_writes(path: Path) -> None:
    """Before a checkpoint write into ``path`` (readers never call it): orbax's error
    records and the closed-loop echoes of a failed write are dropped at their source (absl's
    and asyncio's loggers; ``sys.unraisablehook``, chained to the hook before it), and
    nothing else."""
    import sys

    _WRITING.update({str(Path(path)), str(Path(path).absolute())})
    for name in ("absl", "asyncio"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropOrbaxErrors) for f in logger.filters):
            logger.addFilter(_DropOrbaxErrors())
    previous = sys.unraisablehook
    if getattr(previous, "_drops_closed_loop_echoes", False):
        return

    def hook(unraisable):
        if not _is_closed_loop_echo(unraisable):
            previous(unraisable)

    hook._drops_closed_loop_echoes = True
    sys.unraisablehook = hook


def _raise_file_fault(path: Path, error: Exception):
    """A checkpoint write that failed on an OS error (orbax and TensorStore wrap it) as a
    `FileFault`; anything else as it was."""
    from maddpg_jax.errors import os_reason

    if os_reason(error) is not None:
        raise FileFault(path, error) from error
    raise error


def _replace_members(state, like, members: int):
    """``state``'s first ``members`` members, padded (the last repeated, as
    `maddpg_jax.parallel.pad_members` does) to ``like``'s leading size and placed with
    ``like``'s shardings: a sweep saved on one device count, opened on another."""

    def put(x, ref):
        host = np.asarray(x)[:members]
        if host.shape[0] < ref.shape[0]:
            host = np.concatenate([host, np.repeat(host[-1:], ref.shape[0] - host.shape[0], axis=0)])
        return jax.make_array_from_callback(host.shape, ref.sharding, lambda idx: host[idx])

    return jax.tree.map(put, state, like)


class CheckpointError(ValueError):
    """A checkpoint that must not be loaded; the message says why."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint whose files cannot be read (truncated, flipped bytes, missing): an older
    one beside it may still be intact."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)  # hashlib releases the GIL on large blocks: the training loop runs on
    return h.hexdigest()


def write_checksums(step_dir: Path) -> None:
    """Record every file of a committed checkpoint (size and SHA-256) in ``CHECKSUMS``, so
    that a later load can prove the bytes are the ones written (orbax checks the structure of
    a checkpoint, not its array data)."""
    files = {
        str(p.relative_to(step_dir)): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(step_dir.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    }
    atomic_write_text(step_dir / CHECKSUMS, json.dumps({"algorithm": "sha256", "files": files}, indent=0))


def checksum_problem(step_dir: Path) -> str | None:
    """Why the checkpoint in ``step_dir`` cannot be proven intact, or None when every file
    has its recorded size and SHA-256."""
    try:
        files = json.loads((step_dir / CHECKSUMS).read_text())["files"]
    except FileNotFoundError:
        return "its checksums are missing (the write was cut off before them), so its bytes cannot be verified"
    except (OSError, ValueError, KeyError, TypeError):
        return "its checksums are unreadable"
    for name, want in files.items():
        path = step_dir / name
        try:
            if path.stat().st_size != want["size"]:
                return f"file {name} has {path.stat().st_size} bytes, {want['size']} were written"
            if _sha256(path) != want["sha256"]:
                return f"file {name} differs from the bytes written (checksum mismatch)"
        except OSError:
            return f"file {name} is missing or unreadable"
    return None


class Checkpoints:
    """Orbax-managed checkpoints of the training state under ``DIR/checkpoints``.

    Each checkpoint holds the whole state (parameters, optimiser states, the replay buffer's
    written rows, env states, keys) plus a small JSON ``meta`` (iteration, wall seconds,
    format, the buffer rows written; a restore pads the rest with zeros), and once
    committed a ``checksums.json`` of every file's size and SHA-256 (written in a background
    thread, off the training path). Every load verifies them first: a checkpoint whose bytes
    differ is damaged, whatever orbax would read from it. Of the two kept, the older is
    deleted only once its successor is committed, and every save first waits for the previous
    checkpoint's checksums, so the newest verified checkpoint outlives any failure.

    ``asynchronous`` (the training loop's way): `save` returns once the state has
    been copied off the device and orbax writes it in a background thread while the next
    chunk runs; the next `save`, `wait` or `close` waits for it and
    raises what the write raised. A checkpoint is visible only once orbax has committed it
    (renamed its finished temporary directory), so a crash mid-write leaves the previous one.
    """

    def __init__(self, run_dir: Path | str, max_to_keep: int = 2, asynchronous: bool = False):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.path = Path(run_dir).absolute() / CHECKPOINTS
        # The state is written uncompressed: zstd saved 7% of a replay buffer's bytes (float
        # observations compress poorly) and cost 40% more time (0.86 GB: 3.7 s against 2.6 s
        # on a 2-core AMD EPYC). Compressed checkpoints still read: the codec is in their
        # metadata.
        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        state_handler = ocp.PyTreeCheckpointHandler(use_compression=False)
        registry.add("state", ocp.args.PyTreeSave, state_handler)
        registry.add("state", ocp.args.PyTreeRestore, state_handler)
        registry.add("meta", ocp.args.JsonSave)
        registry.add("meta", ocp.args.JsonRestore)
        self.manager = ocp.CheckpointManager(
            self.path,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=asynchronous),
            handler_registry=registry,
        )
        self.asynchronous = asynchronous
        self.pending: int | None = None  # the step being written in the background
        # Finishing a write (orbax's commit, then the checksums) runs here when asynchronous.
        self._finisher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="checksums")
        self._finishing: concurrent.futures.Future | None = None
        self.committed: int | None = self.manager.latest_step()  # the newest step known finished

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """Finished checkpoints' steps, newest first."""
        return sorted(self.manager.all_steps(), reverse=True)

    def restore_newest(self, like, config: dict | None = None, warn=None, set_aside: Path | None = None):
        """`restore` of the newest checkpoint that reads: a damaged one is reported
        through ``warn(message)`` (one line) and the next older one tried; with
        ``set_aside`` (a writer's directory) the damaged ones are moved there once an intact
        one has loaded, so that the run's next checkpoints follow the one it resumed from and
        nothing the user saved is deleted. Returns
        ``(state, meta, step)``; raises `CheckpointError` when none is intact, or
        at once when one is intact but of another config or format (an older one would
        be of the same)."""
        errors = []
        for step in self.steps():
            try:
                state, meta = self.restore(step, like, config)
            except DamagedCheckpoint as e:
                errors.append(str(e))
                if warn is not None:
                    warn(f"{e}; trying the one before it")
                continue
            if errors and set_aside is not None:
                set_aside.mkdir(parents=True, exist_ok=True)
                for bad in self.steps():
                    if bad > step:
                        target = set_aside / str(bad)
                        if target.exists():  # set aside before: keep both
                            target = set_aside / f"{bad}.{os.getpid()}"
                        os.replace(self.path / str(bad), target)
                        if warn is not None:
                            warn(f"checkpoint {bad} moved to {target}")
                self.manager.reload()
                self.committed = self.manager.latest_step()
            return state, meta, step
        if errors:
            raise CheckpointError(f"no intact checkpoint ({'; '.join(errors)})")
        raise CheckpointError("no checkpoint")

    def save(self, step: int, state, meta: dict) -> None:
        """Write ``state`` as checkpoint ``step`` (in the background when asynchronous:
        first waiting for the previous write, which is then committed)."""
        ocp = self._ocp
        _quiet_failed_writes(self.path)
        meta = dict(meta, format_version=FORMAT_VERSION)
        # Only the replay buffers' written rows: a run that has not filled its buffer writes
        # (and later checksums and reads) that part of it alone.
        rows = filled_rows(state)
        if rows is not None:
            state, meta["buffer_rows"] = trim_buffers(state, rows), rows
        self.wait()
        self.pending = step
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.PyTreeSave(_drop_empty(keys_to_data(state))), meta=ocp.args.JsonSave(meta)
                ),
            )
            del state  # the trimmed rows' copy on the device goes once orbax has copied them off
        except Exception as e:
            self.pending = None
            _raise_file_fault(self.path / str(step), e)
        if self.asynchronous:
            self._finishing = self._finisher.submit(self._finish, step)
        else:
            self.wait()

    def _finish(self, step: int) -> None:
        self.manager.wait_until_finished()
        write_checksums(self.path / str(step))

    def wait(self) -> None:
        """Wait for a background write and its checksums; raises what it raised (the
        previous checkpoint stays the newest committed one)."""
        if self.pending is None:
            return
        step, self.pending = self.pending, None
        finishing, self._finishing = self._finishing, None
        try:
            finishing.result() if finishing is not None else self._finish(step)
        except Exception as e:
            _raise_file_fault(self.path / str(step), e)
        self.committed = step

    def restore(self, step: int, like, config: dict | None = None):
        """Restore onto the shapes, dtypes and shardings of ``like`` (a live state, or one
        of ``jax.ShapeDtypeStruct`` leaves and placeholder keys: `MemberRunner.abstract_init`).

        Raises `CheckpointError` saying why when the checkpoint has another format
        version, was written by another config (``config``: this run's, as a dict;
        ``total_env_steps`` may differ), or cannot be read (truncated, corrupted).
        """
        ocp = self._ocp
        try:
            meta = dict(self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        except Exception as e:
            raise DamagedCheckpoint(f"checkpoint {step} is damaged or truncated ({type(e).__name__})") from e
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {step} has format {meta.get('format_version')!r}; "
                f"this version reads format {FORMAT_VERSION}"
            )
        problem = checksum_problem(self.path / str(step))
        if problem is not None:
            raise DamagedCheckpoint(f"checkpoint {step} is damaged: {problem}")
        if config is not None and "config" in meta:
            from maddpg_jax.config import changed_on_resume

            differ = [name for name, _, _ in changed_on_resume(meta["config"], config)]
            if differ:
                raise CheckpointError(
                    f"checkpoint {step} was written by another config (differs in {', '.join(differ)})"
                )
        like_data = keys_to_data(like)
        rows = meta.get("buffer_rows")  # absent: the whole buffer was written
        saved_like = like_data if rows is None else _like_rows(like_data, int(rows))
        want = jax.tree.leaves(like_data)[0].shape[0]
        saved = int(meta.get("state_devices", want))
        if saved != want and (meta.get("data_parallel") or "members" not in meta):
            raise CheckpointError(
                f"checkpoint {step} holds a {'data-parallel run' if meta.get('data_parallel') else 'state'} split "
                f"{saved} ways; this process would split it {want} ways: run with the same number of devices "
                f"(XLA_FLAGS / visible GPUs)"
            )
        if saved == want:  # straight onto the devices, each process reading its own shards
            abstract = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), _drop_empty(saved_like)
            )
        else:  # another device count: the members' state to one device, then padded and placed anew
            one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
            abstract = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct((saved, *x.shape[1:]), x.dtype, sharding=one), _drop_empty(saved_like)
            )

        def read(partial: bool):
            restore_args = ocp.checkpoint_utils.construct_restore_args(abstract)
            item = ocp.args.PyTreeRestore(abstract, restore_args=restore_args, partial_restore=partial)
            return self.manager.restore(step, args=ocp.args.Composite(state=item))

        try:
            try:
                out = read(partial=False)
            except ValueError as e:
                # A checkpoint written before a state field that is None unless a feature is
                # on (ensembles' sub_policy, inferred policies, a transition's index) lacks
                # that entry: restore the entries it has; the None fields stay None below.
                if "tree structures do not match" not in str(e):
                    raise
                out = read(partial=True)
        except Exception as e:
            raise DamagedCheckpoint(
                f"checkpoint {step} is damaged, truncated or of another shape ({type(e).__name__})"
            ) from e
        state = _fill_empty(out["state"], like_data)
        _check_all_read(step, state)
        if rows is not None:
            state = _pad_rows(state, like_data)
        if saved != want:
            state = _replace_members(state, like_data, int(meta["members"]))
        return data_to_keys(state, like), meta

    def discard_unfinished(self) -> None:
        """Remove orbax's temporary directories of writes that failed (only the run
        directory's writer may call this: it holds the lock, so none is in progress)."""
        import shutil

        for tmp in self.path.glob("*.orbax-checkpoint-tmp*"):
            shutil.rmtree(tmp, ignore_errors=True)

    def close(self):
        """Finish and release orbax's threads. A write that failed was raised by
        `wait` already; closing after it must not raise it again over the report."""
        self.pending = None
        with contextlib.suppress(Exception):
            if self._finishing is not None:
                self._finishing.result()
        self._finisher.shutdown(wait=True)
        with contextlib.suppress(Exception):
            self.manager.close()


def to_python(x):
    x = np.asarray(x)
    if x.dtype == bool:
        return bool(x)
    if np.issubdtype(x.dtype, np.integer):
        return int(x)
    v = float(x)
    return None if not np.isfinite(v) else round(v, 6)
