"""`plan.graph.levels`: the one-pass levels of a flow written in order are graphlib's."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.plan import graph


def _graphlib_levels(needs: dict[str, list[str]], index: dict[str, int]) -> list[list[str]]:
    sorter = TopologicalSorter(needs)
    sorter.prepare()
    found = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=index.__getitem__)
        found.append(ready)
        sorter.done(*ready)
    return found


@st.composite
def _flows(draw: st.DrawFn) -> dict[str, list[str]]:
    """Jobs in a shuffled order, most needing earlier ones, some a later one (or itself)."""
    names = draw(st.permutations([f"j{i}" for i in range(draw(st.integers(1, 25)))]))
    forward = draw(st.booleans())
    needs = {}
    for i, name in enumerate(names):
        pool = names if forward else names[:i]
        needs[name] = draw(st.lists(st.sampled_from(pool), max_size=4)) if pool else []
    return needs


@given(_flows())
def test_levels_are_graphlib_s(needs: dict[str, list[str]]) -> None:
    index = {name: i for i, name in enumerate(needs)}
    try:
        expected: object = _graphlib_levels(needs, index)
    except CycleError:
        expected = CycleError
    try:
        found: object = graph.levels(needs, index)
    except CycleError:
        found = CycleError
    assert found == expected


def test_a_need_on_a_later_job_is_left_to_graphlib() -> None:
    needs = {"a": ["b"], "b": [], "c": ["a", "b"]}
    index = {name: i for i, name in enumerate(needs)}
    assert graph._levels_in_order(needs, index) is None
    assert graph.levels(needs, index) == [["b"], ["a"], ["c"]]
    assert graph._levels_in_order({"a": [], "b": ["a"]}, {"a": 0, "b": 1}) == [["a"], ["b"]]
    with pytest.raises(CycleError):
        graph.levels({"a": ["a"]}, {"a": 0})
