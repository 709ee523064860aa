"""Memory for the torch CPU kernels: the row chunks they walk, and full-size arrays with
transparent huge pages advised, as NumPy advises them for its own buffers."""

from __future__ import annotations

import torch

from .. import _config

__all__ = ["advise_huge_pages", "chunks", "empty_like"]

_madvise = None  # libc's madvise, found on first use; False where there is none


def empty_like(x):
    """``torch.empty_like(x)``; on the CPU, from ``_config.HUGE_PAGE_MIN_BYTES``, with huge
    pages advised: for the full-size arrays the kernels return (gradients, entries). torch's
    CPU allocator gives no such advice (unless THP_MEM_ALLOC_ENABLE is set), so a fresh buffer
    would be faulted in and zeroed by the kernel 4 KiB at a time."""
    out = torch.empty_like(x)
    if out.is_cpu:
        storage = out.untyped_storage()
        if storage.nbytes() >= _config.HUGE_PAGE_MIN_BYTES:
            advise_huge_pages(storage.data_ptr(), storage.nbytes())
    return out


def advise_huge_pages(address, size):
    """madvise(MADV_HUGEPAGE) over the whole pages of [address, address + size); a hint: any
    failure leaves the memory as it was."""
    global _madvise
    import mmap

    if _madvise is None:
        _madvise = False
        if hasattr(mmap, "MADV_HUGEPAGE"):  # Linux
            import ctypes

            try:
                madvise = ctypes.CDLL(None, use_errno=True).madvise
            except (OSError, AttributeError):
                pass
            else:
                madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                madvise.restype = ctypes.c_int
                _madvise = madvise
    page = mmap.PAGESIZE
    start = -(-address // page) * page
    end = (address + size) // page * page
    if _madvise and end > start:
        _madvise(start, end - start, mmap.MADV_HUGEPAGE)


def chunks(x, chunk_bytes=None):
    """Row ranges to evaluate ``x`` (rows, C) in, of about ``chunk_bytes`` (default
    ``_config.TORCH_CHUNK_BYTES``) each: one range on GPUs (each launch costs more than the
    cache saves) or for small inputs."""
    n_rows = x.shape[0]
    chunk_bytes = chunk_bytes or _config.TORCH_CHUNK_BYTES
    step = n_rows if not x.is_cpu else chunk_bytes // (x.shape[1] * x.element_size())
    step = max(1, step)  # an empty batch on a GPU must not make a zero step
    return [(lo, min(lo + step, n_rows)) for lo in range(0, n_rows, step)] or [(0, 0)]
