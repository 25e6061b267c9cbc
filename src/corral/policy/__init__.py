"""Policy before execution: Rego policies (the OPA language) checked against a flow
before anything runs.

    verdict = evaluate(loaded, plan, policies=["policies/"])    # allowed? denials, warnings
    document = flow_input(loaded, plan)                         # what policies see as `input`

Refusing a run when a policy denies (and recording the refusal) is the use case
`corral.app.policy.admit`, which every run goes through before anything starts.

The Rego interpreter is regorus, installed with `pip install 'corral[policy]'`; nothing
here imports it until a policy is actually read. See docs/policy.md.
"""

from corral.policy.document import flow_input
from corral.policy.engine import Finding, Outcome, PolicyFiles, PolicySet
from corral.policy.gate import ENV_VAR, Verdict, evaluate, policy_paths

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
