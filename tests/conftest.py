"""The ``loss`` fixture: one parameter per row of the table of losses (``tests/matrix.py``)."""

from __future__ import annotations

import matrix
import pytest


@pytest.fixture(params=matrix.losses())
def loss(request):
    """A row of ``xce._table.LOSSES`` (a ``matrix.Loss``); its known failure on the backend
    under test, if any, marks the test as a strict xfail."""
    row = request.param
    if "backend" in request.fixturenames:
        matrix.mark_known_failure(request, row.info, request.getfixturevalue("backend"))
    return row
