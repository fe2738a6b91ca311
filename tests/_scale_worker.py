"""Subprocess worker for test_scale.py (each mode needs its own XLA/distributed setup).

python _scale_worker.py devices OUT            # 4 forced CPU devices, 4 members
python _scale_worker.py alone OUT MEMBER       # 1 device, that member alone
python _scale_worker.py dist OUT PID PORT      # one of 2 processes x 2 devices
python _scale_worker.py dp OUT                 # one data-parallel run over 2 devices
"""

import json
import os
import sys

from flags import xla_flags  # tests/flags.py: this script's directory is on sys.path

mode, out = sys.argv[1], sys.argv[2]
count = {"devices": 4, "alone": 1, "dist": 2, "dp": 2}[mode]
os.environ["XLA_FLAGS"] = xla_flags(count)
os.environ["JAX_PLATFORMS"] = "cpu"

from maddpg_jax.parallel import MemberRunner, fetch, initialize_distributed

if mode == "dist":
    initialize_distributed(f"127.0.0.1:{sys.argv[4]}", 2, int(sys.argv[3]))

import jax
import numpy as np

from maddpg_jax import Config, make_trainer
from maddpg_jax.members import build, member_hparams, member_keys

config = Config(
    num_envs=8,
    batch_size=32,
    buffer_size=2048,
    updates_per_step=1,
    total_env_steps=640,
    warmup_env_steps=160,
    hidden_sizes=(16, 16),
)
MEMBERS = [
    {"seed": 0, "critic_lr": 1e-3},
    {"seed": 1, "critic_lr": 1e-3},
    {"seed": 0, "critic_lr": 3e-2},
    {"seed": 1, "critic_lr": 3e-2},
]
members = [MEMBERS[int(sys.argv[3])]] if mode == "alone" else MEMBERS


def data_parallel_update_matches(dp_trainer, host_state):
    """One update round on two devices, each with half of a batch (gradients averaged over
    the devices), against one device's update on the whole batch: equal to float rounding.
    Plain settings (no target noise) so that no random draw depends on the batch size."""
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    from maddpg_jax import buffer as rb
    from maddpg_jax.update import update_on_batch

    single = make_trainer(dp_trainer.config)
    agents = jax.tree.map(lambda x: x[0], host_state.agents)
    device0 = jax.tree.map(lambda x: jnp.asarray(x[0]), host_state.buffer)
    full = rb.sample(device0, jax.random.key(7), dp_trainer.config.batch_size)
    hp, keys = dp_trainer.config.hparams(), jax.random.split(jax.random.key(8))
    args = (jnp.int32(0), keys[0], keys[1], hp)
    want, _ = jax.jit(lambda a, b: update_on_batch(single.learner, a, b, *args))(agents, full)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:2]), ("members",))
    # Device d gets batch rows [d*B/2, (d+1)*B/2); parameters are replicated.
    got, _ = jax.jit(
        jax.shard_map(
            lambda a, b: update_on_batch(dp_trainer.learner, a, b, *args),
            mesh=mesh,
            in_specs=(P(), P("members")),
            out_specs=P(),
            check_vma=False,
        )
    )(agents, full)
    moved = [
        np.abs(np.asarray(w) - np.asarray(a)).max()
        for w, a in zip(jax.tree.leaves(want.actor), jax.tree.leaves(agents.actor))
    ]
    close = all(np.allclose(w, g, rtol=1e-4, atol=1e-6) for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)))
    return bool(close and max(moved) > 1e-5)


if mode == "dp":
    # Plain settings: the update-equivalence check needs no target noise.
    config = config.replace(data_parallel=True, target_noise=0.0)
    trainer, runner, members = build(config, [{"seed": 0}])
    assert runner.size == 2, runner.size
else:
    trainer = make_trainer(config)
    runner = MemberRunner(trainer, len(members))
hp = runner.place(member_hparams(config, members))
state = runner.init(runner.place(member_keys(members)), hp)
w, n = config.warmup_iterations, config.num_iterations
state, m1 = runner.run(state, hp, w, False)
state, m2 = runner.run(state, hp, n - w, True)
m1, m2 = fetch(m1), fetch(m2)
result = {
    "devices": len(runner.devices),
    "processes": jax.process_count(),
    "buffer_devices": len(state.buffer.data.obs.sharding.device_set),
    "actor_devices": len(jax.tree.leaves(state.agents.actor)[0].sharding.device_set),
    "spec": str(state.buffer.data.obs.sharding.spec),
    "metrics": {
        k: np.concatenate([getattr(m1, k), getattr(m2, k)], axis=1)[: len(members)].tolist()
        for k in ("mean_return", "critic_loss", "actor_loss")
    },
}
if mode == "dp":
    host = fetch(state)
    result["params_equal_across_devices"] = all(np.array_equal(x[0], x[1]) for x in jax.tree.leaves(host.agents))
    result["buffers_differ"] = not np.array_equal(host.buffer.data.obs[0], host.buffer.data.obs[1])
    result["buffer_rows_per_device"] = int(host.buffer.size[0])
    result["update_matches_single_device"] = data_parallel_update_matches(trainer, host)
if jax.process_index() == 0:
    with open(out, "w") as f:
        json.dump(result, f)
