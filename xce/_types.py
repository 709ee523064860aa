"""The type aliases of xce's signatures.

An array is any object of a library that array-api-compat understands (NumPy, PyTorch,
CuPy, JAX, Dask, array-api-strict); the standard has no common base class to name, so the
alias is ``Any`` and the docstrings say what is expected of it.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

__all__ = ["Array", "Namespace", "Reduction", "Scalar", "Validate"]

Array: TypeAlias = Any
Namespace: TypeAlias = Any
# A scalar hyperparameter: a Python number or a 0-d array (maybe traced or requiring grad).
Scalar: TypeAlias = float | Any
Reduction: TypeAlias = Literal["mean", "sum", "none", "sum_and_count"]
Validate: TypeAlias = Literal["auto"] | bool
