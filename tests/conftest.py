import os

# Tests run on the CPU with one device unless a test sets up its own subprocess.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
