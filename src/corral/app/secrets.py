"""A run's secrets: the Redactor that keeps them out of everything the run writes."""

from __future__ import annotations

from collections.abc import Mapping

from corral.config.loaded import LoadedFlow
from corral.plan import Plan
from corral.plan.templates import is_template
from corral.redact import Redactor, name_patterns


def run_redactor(loaded: LoadedFlow, plan: Plan, environ: Mapping[str, str]) -> Redactor:
    """What a run redacts: the secret-named values of corral's environment and the
    literal values of the jobs' secret `env:` entries (the flow file is stored with the
    run, so those must go before its first event). Values expanded or rendered at launch
    are learnt then (`RequestBuilder`)."""
    redactor = Redactor(name_patterns(environ, loaded.spec.secret_names))
    redactor.add_environ(environ)
    for job in plan.jobs.values():
        marked = job.spec.secret_env
        for name, value in job.spec.env.items():
            if redactor.is_secret(name, marked) and not is_template(value) and "${" not in value:
                redactor.add(value)
    return redactor
