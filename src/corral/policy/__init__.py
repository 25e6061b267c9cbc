"""Policy before execution: Rego policies (the OPA language) checked against a flow
before anything runs.

    verdict = evaluate(loaded, plan, policies=["policies/"])    # what `corral policy check` does
    enforce(loaded, plan, record=HistoryRecorder(...))           # what every run does first

The Rego interpreter is regorus, installed with `pip install 'corral[policy]'`; nothing
here imports it until a policy is actually read. See docs/policy.md.
"""

from corral.policy.document import flow_input
from corral.policy.engine import Finding, Outcome, PolicyFiles, PolicySet
from corral.policy.gate import ENV_VAR, Recorder, Verdict, enforce, evaluate, policy_paths
from corral.policy.refusal import HistoryRecorder

__all__ = [
    "ENV_VAR",
    "Finding",
    "HistoryRecorder",
    "Outcome",
    "PolicyFiles",
    "PolicySet",
    "Recorder",
    "Verdict",
    "enforce",
    "evaluate",
    "flow_input",
    "policy_paths",
]
