"""Policy before execution: Rego policies (the OPA language) checked against a flow
before anything runs.

    verdict = evaluate(loaded, plan, policies=["policies/"])    # allowed? denials, warnings
    document = flow_input(loaded, plan)                         # what policies see as `input`

Refusing a run when a policy denies (and recording the refusal) is the use case
`corral.app.policy.admit`, which every run goes through before anything starts.

The Rego interpreter is regorus, installed with `pip install 'corral[policy]'`; nothing
here imports it until a policy is actually read. See docs/policy.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from corral.policy.gate import ENV_VAR, Verdict, evaluate, policy_paths

if TYPE_CHECKING:
    from corral.policy.document import flow_input
    from corral.policy.engine import Finding, Outcome, PolicyFiles, PolicySet

# every run imports this package to learn whether a policy applies; the engine and the
# input document are imported on first use (PEP 562), so a run without policies skips them
_LAZY = {
    "flow_input": "corral.policy.document",
    "Finding": "corral.policy.engine",
    "Outcome": "corral.policy.engine",
    "PolicyFiles": "corral.policy.engine",
    "PolicySet": "corral.policy.engine",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ENV_VAR",
    "Finding",
    "Outcome",
    "PolicyFiles",
    "PolicySet",
    "Verdict",
    "evaluate",
    "flow_input",
    "policy_paths",
]
