"""Which Rego the pinned interpreter (regorus, the `policy` extra) speaks, and which it
lacks: the list in docs/policy.md is this file's LACKING, checked both ways, so a
regorus upgrade that changes either fails here until the docs say so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

regorus = pytest.importorskip("regorus")

DOCS = Path(__file__).resolve().parent.parent / "docs" / "policy.md"

# each body defines `ok`, which must come out true
SUPPORTED = {
    "rego.v1 keywords (if, contains, in, every)": "ok if { every x in [1, 2] { x > 0 } }",
    "some ... in": "ok if { some x in [1, 2]; x == 2 }",
    "comprehensions": 'ok if { {x | some x in [1, 2]} == {1, 2}; [k | some k, _ in {"a": 1}] }',
    "with (input, data, functions)": 'f := input.x\nok if { f == 5 with input as {"x": 5} }',
    "else": "v := 1 if false else := 2\nok if v == 2",
    "functions and default": "default d := 3\nf(x) := x * 2\nok if { f(2) == 4; d == 3 }",
    "partial and ref-head rules": 'p[k] := 1 if some k in ["a"]\na.b := 1\nok if p.a == a.b',
    "sprintf and strings": 'ok if { sprintf("%s-%d", ["a", 1]) == "a-1"; lower("A") == "a" }',
    "regex and glob": 'ok if { regex.match("^a+$", "aa"); glob.match("c-*", [], "c-x") }',
    "json and yaml": 'ok if { json.unmarshal(json.marshal({"a": 1})).a == 1; yaml.marshal(1) }',
    "object, array, set builtins": 'ok if { object.get({}, "a", 2) == 2; array.concat([1], [2]) }',
    "units, semver, time": 'ok if { units.parse("1k") == 1000; semver.compare("1.2.0", "1.10.0") }',
    "graph.reachable and walk": 'ok if { graph.reachable({"a": ["b"], "b": []}, ["a"]) }',
    "json.match_schema": 'ok if { [m, _] := json.match_schema({"a": 1}, {"type": "object"}); m }',
    "net.cidr_contains": 'ok if net.cidr_contains("10.0.0.0/8", "10.1.2.3")',
    "base64, hex, urlquery": 'ok if { base64.encode("a") == "YQ=="; hex.encode("a") == "61" }',
    "uuid and rand": 'ok if { uuid.rfc4122("x") != ""; rand.intn("x", 10) >= 0 }',
}

# each of these is in OPA and missing (or silently undefined) in the pinned regorus
LACKING = {
    "crypto.*": 'ok if crypto.sha256("a") != ""',
    "http.send": 'ok if http.send({"method": "get", "url": "http://127.0.0.1:9/"})',
    "rego.metadata.rule / rego.metadata.chain": "ok if rego.metadata.rule()",
    "io.jwt.*": 'ok if io.jwt.decode("a.b.c")',
    "strings.render_template": 'ok if strings.render_template("{{.a}}", {"a": 1}) == "1"',
    "net.lookup_ip_addr": 'ok if net.lookup_ip_addr("localhost")',
    "net.cidr_merge": 'ok if net.cidr_merge(["10.0.0.0/8"])',
    "regex.globs_match": 'ok if regex.globs_match("a.*", "a.+")',
    "providers.aws.sign_req": "ok if providers.aws.sign_req({}, {}, 0)",
    'template strings ($"...")': 'ok if $"a{1}" == "a1"',
    "deprecated built-ins (all, any, cast_array, ...)": "ok if all([true])",
    "arbitrary-precision numbers": "ok if 0.1 + 0.2 == 0.3",
}


def evaluate(body: str) -> object:
    engine = regorus.Engine()
    engine.add_policy("t.rego", "package t\nimport rego.v1\n" + body + "\n")
    engine.set_input({})
    result = json.loads(engine.eval_query_as_json("data.t.ok"))
    values = [e["value"] for r in result.get("result", []) for e in r["expressions"]]
    return values[0] if values else None


@pytest.mark.parametrize("body", SUPPORTED.values(), ids=list(SUPPORTED))
def test_supported(body: str) -> None:
    assert evaluate(body) is True


@pytest.mark.parametrize("body", LACKING.values(), ids=list(LACKING))
def test_lacking(body: str) -> None:
    try:
        outcome = evaluate(body)
    except RuntimeError:
        return  # unknown function, or syntax it does not read
    assert outcome is None  # undefined where OPA would answer (or raise)


def test_the_docs_list_exactly_what_is_lacking() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("<!-- lacking:start -->")[1].split("<!-- lacking:end -->")[0]
    listed = re.findall(r"^- \*\*((?:\\\*|[^*])+)\*\*", section, re.MULTILINE)
    assert [name.replace("\\", "") for name in listed] == list(LACKING)
