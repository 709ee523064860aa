"""A ``da.store`` target that the workers of a ``dask.distributed`` cluster write themselves:
a NumPy memmap on the local disk, opened by path in each task (the object pickles as its
path, shape and dtype, never as the data). tests/test_dask_cluster.py stores a gradient larger
than any worker's memory into it, block by block."""

from __future__ import annotations

import numpy as np

__all__ = ["MemmapTarget", "peak_rss"]


class MemmapTarget:
    """``target[rows, cols] = block`` writes the block into the float64 file ``path`` of shape
    ``shape``; the file must exist (``create`` makes it)."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype: str = "float64") -> None:
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)

    @classmethod
    def create(cls, path: str, shape: tuple[int, ...], dtype: str = "float64") -> MemmapTarget:
        np.memmap(path, dtype=dtype, mode="w+", shape=shape).flush()  # the file, full size
        return cls(path, shape, dtype)

    def open(self, mode: str = "r") -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=mode, shape=self.shape)

    def __setitem__(self, key, block) -> None:
        out = self.open("r+")
        out[key] = block
        # No flush: the pages are shared through the page cache with the process that reads
        # the file, and an msync per block would only slow the run down.
        del out  # unmaps: a worker keeps no page of the file


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux and macOS units differ)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
