import os
import tempfile

# Tests run on the CPU with one device unless a test sets up its own subprocess.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Many tests compile the same small programs, in this process and in the CLI subprocesses
# they start: JAX's persistent compilation cache, shared by the whole run (both xdist
# workers and their subprocesses, which inherit the environment), compiles each once.
# Measured: a tiny CLI run took 11.7 s cold and 4.6 s with the cache warm.
_run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getppid())
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"maddpg-jax-tests-{_run}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# The suite's cost is XLA compiling small programs, not running them: LLVM's optimisation
# passes took about two thirds of a tiny trainer's compile (37 s against 13 s at level 0
# on a 2-core AMD EPYC). Tests check values, not speed, so they compile at level 0 (and
# with XLA:CPU's faster-compiling elemental emitters, tests/flags.py); every process of the
# run (subprocesses inherit it) compiles the same way, so runs compared with each other
# agree exactly as before. Benchmarks and users keep XLA's default.
from tests.flags import XLA_TEST_FLAGS  # noqa: E402

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_TEST_FLAGS).strip()

# The test processes themselves have one CPU device, whichever test runs first: some tests
# call cli.main in this process, and the CLI asks XLA for one device per core before JAX
# starts (configure_host_devices), which would otherwise decide the device count of every
# later test in the worker. Starting the backend here fixes it at one.
import jax  # noqa: E402

jax.devices()


# pytest-xdist (--dist loadfile) hands whole files to its two workers in collection order,
# so a heavy file collected last can leave one worker running it alone. Collecting the
# heaviest files first (their measured seconds, most first) keeps both workers busy to the
# end: longest-first scheduling.
HEAVY_FIRST = (  # seconds per file in a run of the whole suite (206 tests, 2-core AMD EPYC)
    "test_hardening",  # 178
    "test_parts",  # 161
    "test_cli",  # 122
    "test_scale",  # 114
    "test_maddpg",  # 110
    "test_onramp",  # 107
    "test_jaxmarl",  # 93
    "test_pbt",  # 67
    "test_registry",  # 49
    "test_benchmarks",  # 34
)


def pytest_collection_modifyitems(items):
    def rank(item):
        stem = item.path.stem
        return HEAVY_FIRST.index(stem) if stem in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)  # stable: tests keep their order within a file
