"""Pure graph work on `needs`: levels (graphlib) and, when that fails, every cycle named."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from graphlib import TopologicalSorter

Needs = Mapping[str, Sequence[str]]


def levels(needs: Needs, index: Mapping[str, int]) -> list[list[str]]:
    """Jobs grouped so each level needs only earlier levels; plan order inside a level.

    A job's level is 1 + the highest level of its needs (the longest path to it), which
    is what graphlib's get_ready/done batches give. Raises graphlib.CycleError.
    """
    found = _levels_in_order(needs, index)
    if found is not None:
        return found
    sorter = TopologicalSorter(needs)
    sorter.prepare()
    result: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=index.__getitem__)
        result.append(ready)
        sorter.done(*ready)
    return result


def _levels_in_order(needs: Needs, index: Mapping[str, int]) -> list[list[str]] | None:
    """`levels` in one pass when every job needs only jobs before it in plan order (as
    flows are mostly written: a 10,000-job DAG in a fraction of graphlib's time); None
    when one needs a later job, an unknown one or itself (graphlib then decides)."""
    level: dict[str, int] = {}
    result: list[list[str]] = []
    for name in sorted(needs, key=index.__getitem__):
        depth = 0
        for need in needs[name]:
            above = level.get(need)
            if above is None:
                return None
            if above >= depth:
                depth = above + 1
        level[name] = depth
        if depth == len(result):
            result.append([name])
        else:
            result[depth].append(name)
    return result


def _components(needs: Needs) -> list[list[str]]:
    """Strongly connected components with more than one job (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in needs:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = needs.get(node, ())
            if child < len(edges):
                work.append((node, child + 1))
                nxt = edges[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:  # returning to the parent: pass the low-link up
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def find_cycles(needs: Needs, order: Mapping[str, int]) -> list[list[str]]:
    """One cycle per tangle, as a path `[a, b, c, a]` where each job needs the next.

    Each cycle starts at its job that comes first in the flow, so messages are stable.
    """
    cycles = []
    for component in _components(needs):
        members = set(component)
        start = min(component, key=order.__getitem__)
        parent: dict[str, str] = {}
        queue = deque([start])
        last = None
        while queue and last is None:
            node = queue.popleft()
            for nxt in needs.get(node, ()):
                if nxt == start:
                    last = node
                    break
                if nxt in members and nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        assert last is not None  # a strongly connected component always closes
        path = [last]
        while path[-1] != start:
            path.append(parent[path[-1]])
        cycles.append([*reversed(path), start])
    cycles.sort(key=lambda cycle: order[cycle[0]])
    return cycles


def dependents_map(
    needs: Mapping[str, Iterable[str]], order: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Who needs whom, each list in `order` (plan order)."""
    found: dict[str, list[str]] = {}
    for name in order:
        for need in needs[name]:
            found.setdefault(need, []).append(name)
    return {name: tuple(names) for name, names in found.items()}


def closure(start: Iterable[str], step: Callable[[str], Iterable[str]]) -> frozenset[str]:
    """Everything reachable from `start` through `step`, not counting `start` itself
    unless a path leads back to it."""
    seen: set[str] = set()
    queue = deque(start)
    while queue:
        for nxt in step(queue.popleft()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return frozenset(seen)
