"""Attribute kinds: the rule that types a column of text, and values read as the other kind."""

from __future__ import annotations

import numpy as np
import pytest

from innx.data.kinds import MAX_INTEGER_CATEGORIES, as_kind, column_attribute, parse_kind
from innx.errors import ConfigError


@pytest.mark.parametrize(
    ("cells", "kind"),
    [
        (["red", "blue", "red"], "categorical"),  # strings
        (["1", "2", "two"], "categorical"),  # one value is not a number
        (["inf", "1"], "categorical"),  # not a finite number
        ([str(i % 10) for i in range(100)], "categorical"),  # digits 0..9
        ([str(i) for i in range(MAX_INTEGER_CATEGORIES)], "categorical"),  # 32 distinct
        ([str(i) for i in range(MAX_INTEGER_CATEGORIES + 1)], "continuous"),  # 33 distinct
        ([str(18 + i) for i in range(40)], "continuous"),  # 40 distinct integers
        (["0.25", "0.5", "0.25"], "continuous"),  # floats
        (["1", "2.5"], "continuous"),
    ],
)
def test_the_kind_rule(cells: list[str], kind: str) -> None:
    assert column_attribute("c", cells)[0].kind == kind


def test_integer_categories_sort_by_value_and_name_the_number() -> None:
    attribute, values = column_attribute("n", ["10", "2", "2.0", "-1", "1e1"])
    assert attribute.categories == ("-1", "2", "10")
    assert values.tolist() == [2, 1, 1, 0, 2]


def test_continuous_values_are_the_numbers() -> None:
    attribute, values = column_attribute("age", [str(20 + 0.5 * i) for i in range(50)])
    assert (attribute.kind, attribute.categories) == ("continuous", ())
    assert values.tolist() == [20 + 0.5 * i for i in range(50)]


def test_categories_read_as_numbers() -> None:
    values = np.array([2, 0, 1, 2], np.float32)  # indices into ("0", "5", "10")
    read = as_kind("level", values, "categorical", ("0", "5", "10"), "continuous")
    assert read.tolist() == [10.0, 0.0, 5.0, 10.0]


def test_whole_numbers_read_as_categories_of_the_rows_taken() -> None:
    values = np.array([7, 3, 3, 0, 9], np.float32)
    assert as_kind("d", values, "continuous", (), "categorical").tolist() == [2, 1, 1, 0, 3]
    taken = np.array([True, True, True, False, True])  # row 3 is a skipped image (value 0)
    assert as_kind("d", values, "continuous", (), "categorical", rows=taken).tolist() == [
        1, 0, 0, 0, 2,
    ]  # fmt: skip


def test_the_same_kind_leaves_values_alone() -> None:
    values = np.array([0.5, 1.5])
    assert as_kind("c", values, "continuous", (), "continuous").tolist() == [0.5, 1.5]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (np.array([0.0, 1.0]), "categorical", ("red", "blue"), "continuous"),
            r"'colour' cannot be continuous: its categories are not all numbers \(red, blue\); "
            "name it without :continuous",
        ),
        (
            (np.array([0.5, 1.0]), "continuous", (), "categorical"),
            r"'colour' cannot be categorical: it holds values that are not whole numbers "
            r"\(e.g. 0.5\); name it without :categorical",
        ),
    ],
)
def test_values_that_cannot_be_read_so_say_why_in_one_line(args: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        as_kind("colour", *args)
    assert "\n" not in str(err.value)


def test_a_bad_kind_names_the_choices() -> None:
    assert parse_kind("continuous", "age") == "continuous"
    with pytest.raises(ConfigError, match="unknown kind 'ordinal' for 'digit'; write digit:cat"):
        parse_kind("ordinal", "digit")
