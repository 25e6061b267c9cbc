"""Events as corral may write them: secrets replaced by `***` (corral.redact) before the
bus hands an event to the history, the joblog, the summary or the terminal."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from corral.events.types import Event, JobOutput, JobStarted
from corral.redact import Redactor


def redacting(redactor: Redactor) -> Callable[[Event], Event]:
    """The bus transform of one run. Output lines are left alone: they go to the job's
    log as printed (a job that prints a secret has it in its log, as it asked)."""

    def transform(event: Event) -> Event:
        if isinstance(event, JobOutput):
            return event
        if isinstance(event, JobStarted):
            env = event.spec.get("env")
            if isinstance(env, dict):
                spec = dict(event.spec)
                spec["env"] = redactor.env(env, spec.get("secret_env") or ())
                event = dataclasses.replace(event, spec=spec)
        return redactor.value(event)

    return transform
