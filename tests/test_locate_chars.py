"""The line and column of one character of a YAML string's value, whatever its style:
what points an expression's syntax error at the character in the flow file."""

from __future__ import annotations

import pytest

from corral.config.locate import Scalar, char_position, make_locator, yaml_positions, yaml_scalars

TEXT = """\
jobs:
  plain:
    if: jobs.a.status == = 'x'
  double:
    if: "jobs.a.status == \\t\\u00e9= 'x'"
  single:
    if: 'it''s == = 1'
  literal:
    if: |
      always() &&
        jobs.a.status == = 'x'
  folded:
    if: >-
      always() &&
      jobs.a.status
      == = 'x'
  multiline:
    if: always() &&
      jobs.a.status == = 'x'
  flow: {if: "a == = 'x'"}
"""


@pytest.mark.parametrize(
    ("job", "line", "column"),
    [
        ("plain", 3, 26),
        ("double", 5, 35),  # after two escapes: \\t and \\u00e9
        ("single", 7, 19),  # after a doubled quote
        ("literal", 11, 26),
        ("folded", 16, 10),
        ("multiline", 19, 24),
        ("flow", 20, 20),
    ],
)
def test_the_character_is_found_in_every_style(job: str, line: int, column: int) -> None:
    scalar = yaml_scalars(TEXT)[("jobs", job, "if")]
    offset = scalar.value.index("= '") if "= '" in scalar.value else scalar.value.index("= 1")
    assert char_position(TEXT, scalar, offset) == (line, column)
    assert TEXT.splitlines()[line - 1][column - 1 : column + 2] in ("= '", "= 1")


def test_the_locator_answers_char_paths_and_falls_back() -> None:
    locate = make_locator(yaml_positions, TEXT, yaml_scalars)
    assert locate(("jobs", "plain", "if", "<char>", 0)) == (3, 9)
    assert locate(("jobs", "plain", "if")) == (3, 9)
    assert locate(("jobs", "nope", "if", "<char>", 0)) is None
    without = make_locator(yaml_positions, TEXT)
    assert without(("jobs", "plain", "if", "<char>", 0)) is None


def test_a_walk_that_disagrees_with_the_parser_gives_no_position() -> None:
    wrong = Scalar(start=0, end=5, style="", value="zzzzz")
    assert char_position("abcde", wrong, 2) is None
