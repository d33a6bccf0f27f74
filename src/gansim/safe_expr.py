"""A small, safe evaluator for the expressions other tools put in their config files.

PACGAN's ``config.json`` (``../shared/reference/medical_gans.md`` §(a)) stores some values as Python
source that it runs through ``eval``: ``"[1, 1, 1/2, 1/4, 1/8, 1/16, 1/32]"``, ``"[100] *
len(factors)"``, ``"L_cls1/2"``, ``"True"``, ``"'cuda' if torch.cuda.is_available() else 'cpu'"``.
``eval`` on a config value runs whatever the file says. Here the text is parsed with :mod:`ast`
and only a whitelist of node kinds is evaluated:

- literals: numbers, strings, ``True``/``False``/``None``, lists and tuples of them;
- arithmetic ``+ - * / //`` and unary ``+ -`` on numbers; ``list + list`` and ``list * int``
  (repetition, at most :data:`MAX_ITEMS` items);
- comparisons, ``and``/``or``/``not`` and ``a if cond else b``;
- names from the ``names`` mapping the caller gives (e.g. other config values under the names
  the original code used for them);
- calls of ``len`` and of the dotted functions the caller gives in ``functions`` (e.g.
  ``torch.cuda.is_available``), with positional arguments only.

Anything else (attributes, other calls, subscripts, comprehensions, lambdas, ``**``) is refused
with a :class:`SafeExpressionError` that names the construct and its column.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from gansim.errors import ConfigError

__all__ = ["SafeExpressionError", "safe_eval", "MAX_ITEMS", "MAX_LENGTH"]

#: the longest list an expression may build (``[0] * 10**9`` must not exhaust memory)
MAX_ITEMS = 100_000
#: the longest expression text accepted
MAX_LENGTH = 2_000

_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class SafeExpressionError(ConfigError):
    """An expression that the safe evaluator refuses or cannot evaluate."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` as a string when ``node`` is a chain of names; None otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


class _Evaluator:
    def __init__(self, text: str, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]], where: str) -> None:
        self.text, self.names, self.functions, self.where = text, names, {"len": len, **functions}, where

    def fail(self, node: ast.AST, why: str) -> SafeExpressionError:
        column = getattr(node, "col_offset", None)
        at = f" at column {column + 1}" if column is not None else ""
        return SafeExpressionError(f"{self.where}{self.text!r}: {why}{at}; only literals, arithmetic, comparisons, "
                                   f"'a if c else b', the names {sorted(self.names) or '(none)'} and calls of "
                                   f"{sorted(self.functions)} are evaluated")

    def __call__(self, node: ast.AST) -> Any:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{type(node).__name__.lower()} is not allowed")
        return method(node)

    def _Expression(self, node: ast.Expression) -> Any:
        return self(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        if node.value is None or isinstance(node.value, (bool, int, float, str)):
            return node.value
        raise self.fail(node, f"constant {node.value!r} is not allowed")

    def _List(self, node: ast.List) -> list[Any]:
        return [self(item) for item in node.elts]

    def _Tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self(item) for item in node.elts)

    def _Name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return self.names[node.id]
        raise self.fail(node, f"unknown name {node.id!r}")

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, (ast.UAdd, ast.USub)) and _is_number(value):
            return value if isinstance(node.op, ast.UAdd) else -value
        raise self.fail(node, f"unary {type(node.op).__name__} on {type(value).__name__}")

    def _BinOp(self, node: ast.BinOp) -> Any:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        left, right = self(node.left), self(node.right)
        if _is_number(left) and _is_number(right):
            try:
                return op(left, right)
            except ZeroDivisionError:
                raise self.fail(node, "division by zero") from None
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
            return self._bounded(node, left + right)
        if isinstance(node.op, ast.Mult) and isinstance(left, (list, int)) and isinstance(right, (list, int)) and isinstance(left, list) != isinstance(right, list):
            items, count = (left, right) if isinstance(left, list) else (right, left)
            if isinstance(count, bool):
                raise self.fail(node, "a list repeated by a boolean")
            if len(items) * max(count, 0) > MAX_ITEMS:
                raise self.fail(node, f"a list of {len(items) * count:,d} items (at most {MAX_ITEMS:,d})")
            return items * count
        raise self.fail(node, f"{type(node.op).__name__} of {type(left).__name__} and {type(right).__name__}")

    def _bounded(self, node: ast.AST, items: list[Any]) -> list[Any]:
        if len(items) > MAX_ITEMS:
            raise self.fail(node, f"a list of {len(items):,d} items (at most {MAX_ITEMS:,d})")
        return items

    def _Compare(self, node: ast.Compare) -> bool:
        left = self(node.left)
        for op_node, right_node in zip(node.ops, node.comparators):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise self.fail(node, f"comparison {type(op_node).__name__} is not allowed")
            right = self(right_node)
            try:
                if not op(left, right):
                    return False
            except TypeError:
                raise self.fail(node, f"cannot compare {type(left).__name__} and {type(right).__name__}") from None
            left = right
        return True

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value: Any = None
        for item in node.values:
            value = self(item)
            if bool(value) != is_and:
                return value
        return value

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self(node.body) if self(node.test) else self(node.orelse)

    def _Call(self, node: ast.Call) -> Any:
        name = _dotted(node.func)
        if name is None or name not in self.functions:
            raise self.fail(node, f"call of {name or 'an expression'}")
        if node.keywords:
            raise self.fail(node, "keyword arguments")
        args = [self(arg) for arg in node.args]
        try:
            return self.functions[name](*args)
        except (TypeError, ValueError) as err:
            raise self.fail(node, f"{name}{tuple(args)!r}: {err}") from None


def safe_eval(text: str, names: Mapping[str, Any] | None = None, functions: Mapping[str, Callable[..., Any]] | None = None, *, where: str = "") -> Any:
    """The value of the expression ``text``, evaluated without ``eval`` (see the module docstring).

    Args:
        text: Python expression source, e.g. ``"[100] * len(factors)"``.
        names: values the expression may name, e.g. ``{"factors": [1, 1, 0.5]}``.
        functions: dotted names of the functions it may call besides ``len``,
            e.g. ``{"torch.cuda.is_available": lambda: False}``.
        where: prefix of error messages, e.g. ``"config.json: FACTORS = "``.

    Raises:
        SafeExpressionError: the text is not an expression, uses a construct outside the
            whitelist, names an unknown name, or builds a list of more than :data:`MAX_ITEMS` items.
    """
    if not isinstance(text, str):
        raise SafeExpressionError(f"{where}{text!r}: expected the text of an expression, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SafeExpressionError(f"{where}expression of {len(text):,d} characters (at most {MAX_LENGTH:,d})")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise SafeExpressionError(f"{where}{text!r}: not a Python expression ({err.msg}, column {err.offset})") from None
    return _Evaluator(text, names or {}, functions or {}, where)(tree)
