"""The executor conformance checks (corral.testing.conformance), run against the local
executor on real processes and against the fake executor on virtual time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.execute.executor import Executor, ExecutorContext
from corral.execute.local import LocalExecutor
from corral.execute.registry import create_executor
from corral.testing import FakeExecutor, VirtualTimeLoop, run_virtual
from corral.testing.conformance import CHECKS, ConformanceError, NamedCheck, run_all


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_local_executor(check: NamedCheck, tmp_path: Path) -> None:
    asyncio.run(check(LocalExecutor, tmp_path))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_fake_executor(check: NamedCheck, tmp_path: Path) -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        await check(lambda context: FakeExecutor(context=context), tmp_path)

    run_virtual(main)


def test_the_registry_makes_the_local_executor(tmp_path: Path) -> None:
    executor = create_executor("local", ExecutorContext("r", tmp_path))
    assert isinstance(executor, LocalExecutor) and executor.context is not None


class _Careless(FakeExecutor):
    """An executor that forgets to stop what it runs: the checks must say so."""

    async def run(self, request, publish, stop):  # type: ignore[no-untyped-def]  # test double
        stop.request = lambda *args, **kwargs: None  # type: ignore[method-assign]  # ignores stops
        return await super().run(request, publish, stop)


def test_the_checks_catch_a_careless_executor(tmp_path: Path) -> None:
    async def main(loop: VirtualTimeLoop) -> dict[str, str]:
        def make(context: ExecutorContext) -> Executor:
            return _Careless(context=context)

        return await run_all(make, tmp_path)

    failures = run_virtual(main, max_iterations=50_000)
    assert "stop_request" in failures and "hard_stop_kills_at_once" in failures
    assert isinstance(ConformanceError("x"), AssertionError)
