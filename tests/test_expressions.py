"""corral.expressions: the public API, errors with positions and hints, GitHub's rules
beyond the conformance vectors (C#-runner number format, limits, laziness)."""

from __future__ import annotations

import math

import pytest

import corral.expressions
from corral.errors import CorralError
from corral.expressions import (
    Expression,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    evaluate,
    parse,
)
from corral.expressions.values import Record, format_number, parse_number, to_json


def test_public_surface_is_small_and_guarded() -> None:
    assert corral.expressions.__all__ == [
        "Expression",
        "ExpressionError",
        "ExpressionEvaluationError",
        "ExpressionSyntaxError",
        "evaluate",
        "parse",
    ]
    assert issubclass(ExpressionSyntaxError, ExpressionError)
    assert issubclass(ExpressionEvaluationError, ExpressionError)
    assert issubclass(ExpressionError, CorralError)  # one line, exit 2, no traceback


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("null", None),
        ("0xff == 255 && 0o10 == 8 && 1.5e2 == 150 && .5 == 0.5", True),
        ("NaN != NaN && Infinity > 1e308 && -Infinity < 0", True),
        ("'it''s'", "it's"),
        ("'a''b''c'", "a'b'c"),  # every doubled quote, not only the first
        ("'3' == 3 && '' == 0 && null == 0 && 'TEST' == 'test'", True),
        ("3 < 2 < 1", True),  # left to right: (3 < 2) is false, false < 1
        ("!0 && !'' && !null && !NaN && !!'0'", True),
        ("'8' >= 7", True),  # an output is text; it compares as a number
        ("format('{0} of {1}', 3, 'four')", "3 of four"),
        ("join(fromJSON('[1, true, null, \"x\"]'), '|')", "1|true||x"),
        ("case(1 == 2, 'a', 2 == 2, 'b', 'c')", "b"),
        ("toJSON(fromJSON('{\"a\": [1, 2.5]}'))", '{\n  "a": [\n    1,\n    2.5\n  ]\n}'),
        ("fromJSON('[1,2]')[1]", 2.0),
        ("${{ 1 == 1 }}", True),  # a whole-value wrapper is removed
        ("", None),
    ],
)
def test_evaluate_without_contexts(expression: str, expected: object) -> None:
    assert evaluate(expression) == expected


def test_contexts_are_case_insensitive_and_filters_collect() -> None:
    contexts = {
        "needs": {
            "Build": {"result": "success", "outputs": {"Version": "1.2"}},
            "test": {"result": "failure", "outputs": {}},
        }
    }
    assert evaluate("NEEDS.build.OUTPUTS.version", contexts) == "1.2"
    assert evaluate("needs.*.result", contexts) == ["success", "failure"]
    assert evaluate("contains(needs.*.result, 'FAILURE')", contexts) is True
    assert evaluate("needs.missing.result", contexts) is None
    assert evaluate("needs['build'].result == needs.Build.result", contexts) is True


def test_functions_can_be_added_and_are_case_insensitive() -> None:
    calls: list[tuple[object, ...]] = []

    def record(*args: object) -> bool:
        calls.append(args)
        return True

    assert evaluate(
        "SUCCESS() && !failure()", functions={"success": record, "failure": lambda: False}
    )
    assert calls == [()]
    assert evaluate("twice(2)", functions={"twice": lambda x: 2 * x}) == 4
    # without functions, the status functions describe needs that all succeeded
    assert evaluate("success() && always() && !failure() && !cancelled()") is True
    assert evaluate("cancelled()", functions={"CANCELLED": lambda: True}) is True
    with pytest.raises(ExpressionSyntaxError, match="Too many parameters supplied: 'always'"):
        evaluate("always(1)")
    with pytest.raises(ExpressionSyntaxError, match="Unrecognized function: 'hashFiles'"):
        evaluate("hashFiles('**/*.py')")


def test_a_trailing_wrapper_close_is_tolerated_only_by_evaluate() -> None:
    # act and actionlint hand over `expr }}` (the text after `${{`)
    assert evaluate("'TEST' == 'test' }}") is True
    assert evaluate("format('}}') }}") == "}"
    with pytest.raises(ExpressionSyntaxError, match="Unexpected symbol: '}}'"):
        parse("always() }}", functions=["always"])


def test_parse_compiles_once_and_reports_what_it_reads() -> None:
    first = parse("needs.a.outputs.x == matrix.os && success()", ["needs", "matrix"], ["success"])
    again = parse("needs.a.outputs.x == matrix.os && success()", ["needs", "matrix"], ["success"])
    assert first is again  # cached: compiling the same text again is free
    assert isinstance(first, Expression)
    assert first.calls == {"success"}
    assert first.references == ((("needs", "a", "outputs", "x"), 0), (("matrix", "os"), 21))
    assert first.evaluate(
        {"needs": {"a": {"outputs": {"x": "linux"}}}, "matrix": {"os": "Linux"}},
        {"success": lambda: True},
    )


@pytest.mark.parametrize(
    ("expression", "kind", "offset", "description", "hint"),
    [
        ("a === b", "lexing", 4, "Unexpected symbol: '='", "`===` is JavaScript: write `==`"),
        ("a !== b", "lexing", 4, "Unexpected symbol: '='", "`!==` is JavaScript: write `!=`"),
        ("a = b", "lexing", 2, "Unexpected symbol: '='", "compare with `==`"),
        ("a and b", "parsing", 2, "Unexpected symbol: 'and'", "write `&&` for `and`"),
        ("a or b", "parsing", 2, "Unexpected symbol: 'or'", "write `||` for `or`"),
        ("not a", "parsing", 0, "Unrecognized named-value: 'not'", "write `!` for `not`"),
        ("a & b", "lexing", 2, "Unexpected symbol: '&'", "write `&&` for and"),
        ("a | length", "lexing", 2, "Unexpected symbol: '|'", "`|` is a Jinja filter"),
        ("None", "parsing", 0, "Unrecognized named-value: 'None'", "write `null` for None"),
        ("True", "parsing", 0, "Unrecognized named-value: 'True'", "write `true` in lower case"),
        ('a == "x"', "lexing", 5, "Unexpected symbol: '\"x\"'", "strings use single quotes"),
        ("'x' in a", "parsing", 4, "Unexpected symbol: 'in'", "write contains(haystack, needle)"),
        ("a.startswith('x')", "parsing", 12, "Unexpected symbol: '('", "call startsWith(value"),
        ("a.lower() == 'x'", "parsing", 7, "Unexpected symbol: '('", "already ignore case"),
        ("a + 1", "lexing", 2, "Unexpected symbol: '+'", "there is no arithmetic"),
        ("a * 2", "parsing", 2, "Unexpected symbol: '*'", "there is no arithmetic"),
        ("a if b else c", "parsing", 2, "Unexpected symbol: 'if'", "write case(c, x, y)"),
        ("a ? b : c", "lexing", 2, "Unexpected symbol: '?'", "write case(c, x, y)"),
        ("a is defined", "parsing", 2, "Unexpected symbol: 'is'", "there are no Jinja tests"),
        ("'abc", "lexing", 0, "Unexpected symbol: ''abc'", "no closing quote"),
        ("a }}", "lexing", 2, "Unexpected symbol: '}}'", "a stray `}}`"),
        ("github.ref", "parsing", 0, "Unrecognized named-value: 'github'", "no `github` context"),
        ("a == succeeded", "parsing", 5, "Unrecognized named-value: 'succeeded'", "'succeeded'"),
        ("hashFiles('x')", "parsing", 0, "Unrecognized function: 'hashFiles'", "no checked-out"),
        ("startswith(a)", "parsing", 0, "Too few parameters supplied: 'startswith'", None),
    ],
)
def test_syntax_errors_point_at_the_character_with_a_hint(
    expression: str, kind: str, offset: int, description: str, hint: str | None
) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse(expression, ["a", "b", "c"])
    error = caught.value
    assert (error.kind, error.offset, error.description) == (kind, offset, description)
    assert error.github_message.endswith(f"position {offset + 1} within expression: {expression}")
    if hint is None:
        assert error.hint is None
    else:
        assert error.hint is not None and hint in error.hint
        assert str(error) == f"{error.github_message} ({error.hint})"


def test_positions_count_lines_and_the_wrapper() -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse("${{ a &&\n  b == = c }}", ["a", "b", "c"])
    assert (caught.value.offset, caught.value.line, caught.value.column) == (16, 2, 8)


def test_evaluation_errors() -> None:
    with pytest.raises(ExpressionEvaluationError, match="The following format string is invalid"):
        evaluate("format('{0', 1)")
    with pytest.raises(ExpressionEvaluationError, match="case predicate must evaluate"):
        evaluate("case('yes', 1, 2)")
    with pytest.raises(ExpressionEvaluationError, match="Error parsing fromJson"):
        evaluate("fromJSON('{oops')")
    with pytest.raises(ExpressionEvaluationError, match="not valid for objects of type 'Number'"):
        evaluate("format('{0:N2}', 1)")
    with pytest.raises(ExpressionEvaluationError) as caught:
        evaluate("fromJSON('NaN')")  # JSON has no NaN
    assert caught.value.kind == "evaluation"


def test_hostile_nesting_is_an_error_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ExpressionEvaluationError, match="nested too deeply"):
        evaluate("fromJSON(a)", {"a": deep})
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(ExpressionEvaluationError, match="nested too deeply"):
        evaluate("toJSON(a)", {"a": nested})


def test_memory_is_capped_as_on_github() -> None:
    big = "x" * 200_000
    assert len(evaluate("format('{0}{0}', a)", {"a": big})) == 400_000
    with pytest.raises(ExpressionEvaluationError, match="maximum allowed memory"):
        evaluate("format('{0}{0}{0}', a)", {"a": big})  # 600k characters: 1.2 MB


def test_case_evaluates_only_the_branch_it_takes() -> None:
    assert evaluate("case(true, 'a', fromJSON(''))") == "a"
    assert evaluate("false && fromJSON('')") is False  # && and || stop early too


def test_numbers_are_written_as_the_runner_writes_them() -> None:
    # 15 significant digits, exponent past that (the C# runner's "G15")
    assert [format_number(x) for x in (1.0, -0.0, 0.1 + 0.2, 1 / 3, 1e15, 1e-5, 123456.789)] == [
        "1",
        "0",
        "0.3",
        "0.333333333333333",
        "1E+15",
        "1E-05",
        "123456.789",
    ]
    assert evaluate("format('{0}', 12345678901234567890.0)") == "1.23456789012346E+19"
    # JSON keeps every digit, as JavaScript prints it
    assert to_json(0.1 + 0.2) == "0.30000000000000004"
    assert to_json(1e21) == "1e+21"
    assert to_json(1.5e-7) == "1.5e-7"
    assert to_json(math.nan) == "null"


def test_text_to_number_follows_the_runner() -> None:
    assert parse_number(" 0x10 ") == 16
    assert parse_number("0xFFFFFFFF") == -1  # a 32-bit integer, as the runner reads it
    assert math.isnan(parse_number("0X10"))  # only the lower-case prefix
    assert math.isnan(parse_number("0b101"))
    assert math.isnan(parse_number("1_000"))
    assert parse_number("\u00a0 -1.5e3\t") == -1500


def test_strings_compare_ignoring_case_in_utf16_order() -> None:
    assert evaluate("'straße' == 'STRASSE'") is False  # no one-to-many case mapping
    assert evaluate("'ǆ' == 'Ǆ'") is True
    # an astral character sorts after U+FFFD in UTF-16, before it by code point
    assert evaluate("'\U0001f600' > '\ufffd'") is False


def test_records_find_keys_ignoring_case() -> None:
    record = Record({"Build": 1, "test": 2})
    assert record["build"] == 1 and record["TEST"] == 2
    with pytest.raises(KeyError):
        record["nope"]
    assert list(record) == ["Build", "test"] and len(record) == 2


def test_objects_are_equal_only_to_themselves() -> None:
    shared: dict[str, object] = {}
    assert evaluate("a == b", {"a": shared, "b": shared}) is True
    assert evaluate("a == b", {"a": {}, "b": {}}) is False
    assert evaluate("fromJSON('[]') == fromJSON('[]')") is False


def test_limits() -> None:
    with pytest.raises(ExpressionSyntaxError, match="Exceeded max expression length 21000"):
        parse("'" + "x" * 21_000 + "'")
    with pytest.raises(ExpressionSyntaxError, match="Exceeded max expression depth 50"):
        parse("!" * 50 + "true")
    assert evaluate("!" * 49 + "true") is False
