"""Every tuning setting of the fast paths, read from the environment in one place.

Each setting has one environment variable and one default, read once when xce is imported (an
environment lookup on every call would cost as much as a small loss itself). Code reads them as
attributes of this module when it runs (``_config.BLOCK_BYTES``), so a test changes a setting
with one ``monkeypatch.setattr(_config, ...)``. The measurements behind the defaults are in
BENCHMARKS.md, "Tuning settings: why these defaults".
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the CPUs this process may run on
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_OFF = ("", "0", "false", "no")

# The switch for test runs and benchmarks: any value but "", 0, false or no turns every native
# fast path off, the plain-call lanes too, leaving the generic array-API code alone.
FAST_PATHS_ENABLED = os.environ.get("XCE_DISABLE_FAST_PATHS", "").strip().lower() in _OFF

# ---- Every eager backend ----

# Logits per row block of a generic kernel: its several block-sized temporaries stay in cache,
# and the peak memory beyond the outputs stays bounded.
ROW_BLOCK_BYTES = _int("XCE_ROW_BLOCK_BYTES", 1024 * 1024)

# Sample weights and ``where`` masks are applied to a plain lane's per-sample answer, which for
# ``value_and_grad`` costs a pass over the gradient: up to this size of logits that pass costs
# less than the full path's Python layers (about 300 µs a call), beyond it the full path, which
# folds the weights into its kernel's one write of the gradient, is the faster.
WEIGHTED_LANE_BYTES = _int("XCE_WEIGHTED_LANE_BYTES", 1024 * 1024)

# ---- NumPy ----

# Threads that share the row blocks; NumPy releases the GIL inside ufuncs, so they run in
# parallel.
NUM_THREADS = _int("XCE_NUM_THREADS", 0) or _usable_cpus()
# Logits per block of the sparse kernel: larger than L2, because with small blocks the GIL
# hand-offs around every ufunc, not the arithmetic, set the pace; L3 still holds a block.
BLOCK_BYTES = _int("XCE_BLOCK_BYTES", 2 * 1024 * 1024)
# The sparse kernel with the gradient writes the gradient's rows as well as reading the
# logits: half the block keeps both in cache.
GRAD_BLOCK_BYTES = _int("XCE_GRAD_BLOCK_BYTES", 1024 * 1024)
# The soft-target and binary kernels read two inputs and keep up to six block-sized buffers
# live: blocks this small keep them all in L2.
SMALL_BLOCK_BYTES = _int("XCE_SMALL_BLOCK_BYTES", 512 * 1024)
# Below this many logits a hand-off to the thread pool costs more than a second core saves.
PARALLEL_MIN_ELEMENTS = _int("XCE_PARALLEL_MIN_ELEMENTS", 1 << 18)
# The sparse kernel forms its per-row terms this many rows at a time: few calls, yet
# temporaries of only a few MB when N is large and C small.
FINISH_ROWS = _int("XCE_FINISH_ROWS", 1 << 16)
# Plain sparse calls on logits up to this size take the short lane, where the blocked kernel's
# bookkeeping (per-row terms, scratch, error state) would cost more than its arithmetic.
SMALL_LANE_BYTES = _int("XCE_SMALL_LANE_BYTES", 32 * 1024)
# Calls on probabilities (from_logits=False) on logits up to this size take the NumPy lane of
# whole-array calls instead of the full path's generic kernels (at (256, 1000) float32 1.4-4.6×
# faster with the Python layers saved; at 4 MiB the generic kernels' threads caught up).
PROBABILITIES_LANE_BYTES = _int("XCE_PROBABILITIES_LANE_BYTES", 1024 * 1024)
# A load that follows a store to the same low address bits waits for the store as if they
# overlapped, so an array that ``exp`` writes from ``x`` is moved ALIAS_SHIFT bytes further
# when it starts less than ALIAS_WINDOW bytes past ``x`` modulo ALIAS_BYTES (covering glibc's
# 16-byte heap header after an array of whole MiB, and the classic 4 KiB aliasing).
ALIAS_BYTES = _int("XCE_ALIAS_BYTES", 4096)
ALIAS_WINDOW = _int("XCE_ALIAS_WINDOW", 512)
ALIAS_SHIFT = _int("XCE_ALIAS_SHIFT", 1024)
# Only data read from memory stalls; below this size the placement check (an address lookup
# costs more than it saves) is skipped.
ALIAS_MIN_BYTES = _int("XCE_ALIAS_MIN_BYTES", 1 << 20)

# ---- torch, CPU ----

# Logits per row chunk of the softmax kernels: each chunk's log-softmax temporary stays in
# cache and is reused by torch's allocator, instead of one fresh (N, C) buffer per call.
TORCH_CHUNK_BYTES = _int("XCE_TORCH_CHUNK_BYTES", 8 * 1024 * 1024)
# Logits per row chunk of the binary kernel, which makes about a dozen torch calls per chunk
# on six chunk-sized buffers: at 1 MiB those calls' dispatch showed (forward at (4096, 32000)
# float32 1.05-1.15× slower than at 2 MiB on the 2-core AMD host, and with the gradient up
# to 1.7× with the default allocator); larger chunks gained nothing more.
TORCH_ELEMENTWISE_CHUNK_BYTES = _int("XCE_TORCH_ELEMENTWISE_CHUNK_BYTES", 2 * 1024 * 1024)
# Below this many logits a call's time is its torch calls, not arithmetic: the binary lane
# takes a short run of whole-array calls instead of the chunked kernel (the soft-target lane
# makes its one whole-array call up to TORCH_CHUNK_BYTES).
TORCH_SMALL_ELEMENTS = _int("XCE_TORCH_SMALL_ELEMENTS", 1 << 16)
# Up to this many entries, CPU tensors outside any graph are checked, and the soft-target and
# binary losses computed, by NumPy on views of their memory (xce._fast._torch._host): a torch
# call on a tiny tensor costs several µs of dispatch, a NumPy call about one.
TORCH_HOST_ELEMENTS = _int("XCE_TORCH_HOST_ELEMENTS", 4096)
# From this size a buffer the torch kernels return gets transparent huge pages advised, as
# NumPy does for its own buffers; torch's CPU allocator does not, and a fresh buffer is then
# faulted in and zeroed 4 KiB at a time.
HUGE_PAGE_MIN_BYTES = _int("XCE_HUGE_PAGE_MIN_BYTES", 4 * 1024 * 1024)
