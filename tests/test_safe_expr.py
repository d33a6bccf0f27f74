"""The safe expression evaluator: PACGAN's config strings evaluate as eval would; everything else is refused."""

from __future__ import annotations

import pytest

from gansim.errors import ConfigError
from gansim.safe_expr import MAX_ITEMS, SafeExpressionError, safe_eval

FACTORS = "[1, 1, 1/2, 1/4, 1/8, 1/16, 1/32]"


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        (FACTORS, {}, [1, 1, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
        ("[32, 32, 32, 16, 16, 16, 16]", {}, [32, 32, 32, 16, 16, 16, 16]),
        ("[100] * len(factors)", {"factors": [1] * 7}, [100] * 7),
        ("len(factors) * [100]", {"factors": [1, 2]}, [100, 100]),
        ("L_cls1/2", {"L_cls1": 4}, 2.0),
        ("True", {}, True),
        ("False", {}, False),
        ("[0]", {}, [0]),
        ("[200]", {}, [200]),
        ("-1e-3 + 2 * (3 - 1) // 3", {}, -1e-3 + 2 * (3 - 1) // 3),
        ("[1, 2] + [3]", {}, [1, 2, 3]),
        ("(1, 'a', None)", {}, (1, "a", None)),
        ("1 < x <= 3 and not False", {"x": 2}, True),
        ("x or 5", {"x": 0}, 5),
    ],
)
def test_pacgan_strings_and_plain_arithmetic_evaluate_as_python_would(text: str, names: dict, expected: object) -> None:
    value = safe_eval(text, names)
    assert value == expected and type(value) is type(expected)
    assert value == eval(text, {"__builtins__": {"len": len, "True": True, "False": False, "None": None}}, dict(names))  # noqa: S307 - the reference


def test_the_device_expression_uses_only_the_function_given() -> None:
    text = "'cuda' if torch.cuda.is_available() else 'cpu'"
    assert safe_eval(text, functions={"torch.cuda.is_available": lambda: False}) == "cpu"
    assert safe_eval(text, functions={"torch.cuda.is_available": lambda: True}) == "cuda"
    with pytest.raises(SafeExpressionError, match="call of torch.cuda.is_available"):
        safe_eval(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("__import__('os').system('echo owned')", "call of an expression"),
        ("__import__('os')", "call of __import__"),
        ("open('/etc/passwd')", "call of open"),
        ("().__class__.__bases__", "attribute is not allowed"),
        ("factors.append(1)", "call of factors.append"),
        ("[0] * 10**9", "operator Pow"),
        ("[0] * 1000000", f"at most {MAX_ITEMS:,d}"),
        ("lambda: 1", "lambda is not allowed"),
        ("[x for x in (1, 2)]", "listcomp is not allowed"),
        ("factors[0]", "subscript is not allowed"),
        ("unknown_name + 1", "unknown name 'unknown_name'"),
        ("len(factors, 2)", "len"),
        ("1 / 0", "division by zero"),
        ("'a' * 3", "Mult of str and int"),
        ("[1] * True", "boolean"),
        ("x = 1", "not a Python expression"),
        ("f'{factors}'", "joinedstr is not allowed"),
    ],
)
def test_everything_outside_the_whitelist_is_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(SafeExpressionError, match=why.replace("(", r"\(").replace("*", r"\*")) as err:
        safe_eval(text, {"factors": [1, 2]}, where="config.json: KEY = ")
    assert str(err.value).startswith("config.json: KEY = ") and isinstance(err.value, ConfigError)


def test_long_text_and_non_strings_are_refused() -> None:
    with pytest.raises(SafeExpressionError, match="characters"):
        safe_eval("1+" * 2000 + "1")
    with pytest.raises(SafeExpressionError, match="expected the text"):
        safe_eval(3)  # type: ignore[arg-type]
