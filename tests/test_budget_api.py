"""The public surface of corral.budget is what `__all__` says, and nothing is missing from it."""

from __future__ import annotations

import corral.budget


def test_all_names_exist_and_are_sorted() -> None:
    assert corral.budget.__all__ == sorted(corral.budget.__all__)
    for name in corral.budget.__all__:
        assert getattr(corral.budget, name) is not None
