"""The executor registry: executors come from the `corral.executors` entry points.

An entry point names a factory that takes the run's `ExecutorContext` and returns an
`Executor` (an executor class whose constructor takes the context is one); corral
registers `local` there itself.
"""

from __future__ import annotations

from corral import plugins
from corral.execute.executor import Executor, ExecutorContext

DEFAULT_EXECUTOR = "local"


def executor_names() -> list[str]:
    """Every registered executor, sorted."""
    return list(plugins.entries(plugins.EXECUTORS))


def create_executor(name: str, context: ExecutorContext) -> Executor:
    """A new executor `name` for the run `context` describes; PluginError when no plugin
    registers it or it does not make an executor."""
    ep = plugins.entries(plugins.EXECUTORS).get(name)
    if ep is None:
        raise plugins.unknown(plugins.EXECUTORS, name, executor_names())
    factory = plugins.load(ep, plugins.EXECUTORS, plugins.callable_check)
    executor = factory(context) if callable(factory) else None
    if not isinstance(executor, Executor):
        raise plugins.PluginError(
            f"executor plugin '{name}' ({ep.value}) made no executor",
            hint="an executor has run, output, __aenter__ and __aexit__ (corral.execute.executor)",
        )
    return executor
