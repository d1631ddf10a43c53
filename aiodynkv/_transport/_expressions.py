"""DynamoDB expressions for the memory transport: parse, check placeholders, evaluate.

Covers the grammar of condition, filter, update and projection expressions on
top-level attributes: ``attribute_exists``, ``attribute_not_exists``,
``begins_with``, ``contains``, ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``,
``BETWEEN``, ``IN``, ``AND``/``OR``/``NOT`` and parentheses in conditions;
``SET`` (with ``if_not_exists``, ``list_append`` and ``+``/``-``), ``REMOVE``,
``ADD`` and ``DELETE`` in updates. Values are DynamoDB attribute values
(``{"N": "1"}``); an absent attribute is None. A refused expression raises
`ExpressionError` with the message DynamoDB gives for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Any

__all__ = [
    "Condition",
    "ExpressionError",
    "Placeholders",
    "Update",
    "add_numbers",
    "canonical_number",
    "equal",
    "parse_condition",
    "parse_projection",
    "parse_update",
]

AttrValue = dict[str, Any]
Item = dict[str, AttrValue]
#: The ``:value`` placeholders of one request.
Values = Mapping[str, AttrValue]
#: A parsed condition: the item and the request's values in, true or false out.
Condition = Callable[[Item, Values], bool]
_Operand = Callable[[Item, Values], "AttrValue | None"]

# DynamoDB numbers: 38 significant digits, exponents -130..+125.
_NUMBERS = Context(prec=38, Emin=-130, Emax=125)
_TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"
_OVERFLOW = (
    "Number overflow. Attempting to store a number with magnitude larger than supported range"
)
_UNDERFLOW = (
    "Number underflow. Attempting to store a number with magnitude smaller than supported range"
)


class ExpressionError(Exception):
    """A ValidationException DynamoDB gives for this expression or its data."""


class Placeholders:
    """The ``#name`` map of one request, and the names and values its expressions use.

    Parsing depends on the names only, so a parsed expression serves every request
    with the same text and names; the values are checked per request (`check_values`).
    """

    __slots__ = ("names", "used_names", "used_values")

    def __init__(self, names: Mapping[str, str] | None) -> None:
        self.names = dict(names or {})
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    def name(self, token: str) -> str:
        if token not in self.names:
            raise ExpressionError(
                "An expression attribute name used in the document path is not defined; "
                f"attribute name: {token}"
            )
        self.used_names.add(token)
        return self.names[token]

    def value(self, token: str) -> _Operand:
        self.used_values.add(token)
        return lambda _item, values: values[token]

    def check_names(self) -> None:
        """DynamoDB refuses names that no expression of the request uses."""
        unused = sorted(set(self.names) - self.used_names)
        if unused:
            raise ExpressionError(
                "Value provided in ExpressionAttributeNames unused in expressions: "
                f"keys: {{{', '.join(unused)}}}"
            )


def check_values(used: set[str] | frozenset[str], values: Values) -> None:
    """DynamoDB refuses a value an expression uses but the request lacks, and an unused one.

    Raises:
        ExpressionError: The first such value.
    """
    missing = sorted(used - values.keys())
    if missing:
        raise ExpressionError(
            "An expression attribute value used in expression is not defined; "
            f"attribute value: {missing[0]}"
        )
    unused = sorted(values.keys() - used)
    if unused:
        raise ExpressionError(
            "Value provided in ExpressionAttributeValues unused in expressions: "
            f"keys: {{{', '.join(unused)}}}"
        )


# -- tokens ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<op><>|<=|>=|=|<|>|\(|\)|,|\+|-|\.|\[|\])|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<index>[0-9]+))"
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"})


class _Tokens:
    def __init__(self, text: str, kind: str) -> None:
        self.kind = kind
        self.text = text
        self.items: list[tuple[str, str]] = []
        position, end = 0, len(text.rstrip())
        while position < end:
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                rest = text[position:].strip()
                raise self.error(rest[:1] or text)
            group = match.lastgroup or "op"
            self.items.append((group, match.group(group)))
            position = match.end()
        if not self.items:
            raise ExpressionError(f"Invalid {kind}: The expression can not be empty;")
        self.at = 0

    def error(self, token: str) -> ExpressionError:
        return ExpressionError(
            f'Invalid {self.kind}: Syntax error; token: "{token}", near: "{self.text}"'
        )

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("<EOF>")
        self.at += 1
        return token

    def take(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token[1].upper() == text:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        _, token = self.next()
        if token.upper() != text:
            raise self.error(token)

    def done(self) -> None:
        token = self.peek()
        if token is not None:
            raise self.error(token[1])


def _path(tokens: _Tokens, places: Placeholders) -> str:
    kind, token = tokens.next()
    if kind == "name":
        name = places.name(token)
    elif kind == "word" and token.upper() not in _KEYWORDS:
        name = token
    else:
        raise tokens.error(token)
    following = tokens.peek()
    if following is not None and following[1] in (".", "["):
        raise ExpressionError(
            f"Invalid {tokens.kind}: nested document paths are not supported by the memory "
            "transport"
        )
    return name


# -- values ---------------------------------------------------------------------------


def canonical_number(text: str) -> str:
    """A Number as DynamoDB returns it (no exponent, no trailing zeros).

    Raises:
        ExpressionError: Not a number DynamoDB accepts.
    """
    try:
        number = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        raise ExpressionError("A value provided cannot be converted into a number") from None
    if not number.is_finite():
        raise ExpressionError("A value provided cannot be converted into a number")
    return _format(number)


def _format(number: Decimal) -> str:
    if number.is_zero():
        return "0"
    digits = number.as_tuple().digits
    if len(digits) > 38:
        raise ExpressionError(_TOO_PRECISE)
    adjusted = number.adjusted()
    if adjusted > 125:
        raise ExpressionError(_OVERFLOW)
    if adjusted < -130:
        raise ExpressionError(_UNDERFLOW)
    return format(number.normalize(_NUMBERS), "f")


def add_numbers(left: str, right: str, *, subtract: bool = False) -> str:
    """`left` ± `right` as DynamoDB computes it (38 digits)."""
    a, b = Decimal(left), Decimal(right)
    context = _NUMBERS.copy()
    context.traps[Inexact] = True  # a sum needing a 39th digit is refused, never rounded
    try:
        result = context.subtract(a, b) if subtract else context.add(a, b)
    except Overflow:  # an Inexact too: caught first
        raise ExpressionError(_OVERFLOW) from None
    except Inexact:
        raise ExpressionError(_TOO_PRECISE) from None
    except (InvalidOperation, ArithmeticError):
        raise ExpressionError(_OVERFLOW) from None
    return _format(result)


def _type(value: AttrValue) -> str:
    return next(iter(value))


def equal(left: AttrValue | None, right: AttrValue | None) -> bool:  # noqa: PLR0911 (one per type)
    """DynamoDB's ``=``: same type and same value (numbers by value, sets unordered)."""
    if left is None or right is None:
        return False
    kind = _type(left)
    if kind != _type(right):
        return False
    a, b = left[kind], right[kind]
    if kind == "N":
        return Decimal(a) == Decimal(b)
    if kind == "NS":
        return {Decimal(x) for x in a} == {Decimal(x) for x in b}
    if kind in ("SS", "BS"):
        return set(a) == set(b)
    if kind == "M":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if kind == "L":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _ordered(left: AttrValue | None, right: AttrValue | None) -> tuple[Any, Any] | None:
    """Comparable forms of two scalars of one ordered type (N, S, B), else None."""
    if left is None or right is None:
        return None
    kind = _type(left)
    if kind != _type(right) or kind not in ("N", "S", "B"):
        return None
    if kind == "N":
        return Decimal(left["N"]), Decimal(right["N"])
    if kind == "S":
        return left["S"].encode("utf-8", "surrogatepass"), right["S"].encode(
            "utf-8", "surrogatepass"
        )
    return bytes(left["B"]), bytes(right["B"])


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _begins_with(value: AttrValue | None, prefix: AttrValue | None) -> bool:
    if value is None or prefix is None:
        return False
    kind = _type(value)
    if kind != _type(prefix) or kind not in ("S", "B"):
        return False
    return bool(value[kind].startswith(prefix[kind]))


def _contains(value: AttrValue | None, part: AttrValue | None) -> bool:
    if value is None or part is None:
        return False
    kind, other = _type(value), _type(part)
    if kind == "S" and other == "S":
        return part["S"] in value["S"]
    if kind == "B" and other == "B":
        return bytes(part["B"]) in bytes(value["B"])
    if kind in ("SS", "NS", "BS") and other == kind[0]:
        return any(equal({other: member}, part) for member in value[kind])
    if kind == "L":
        return any(equal(member, part) for member in value["L"])
    return False


# -- conditions -----------------------------------------------------------------------


def parse_condition(
    text: str, places: Placeholders, kind: str = "ConditionExpression"
) -> Condition:
    """Parse a condition or filter expression into a predicate on items.

    Raises:
        ExpressionError: A syntax error or an undefined placeholder.
    """
    tokens = _Tokens(text, kind)
    condition = _or(tokens, places)
    tokens.done()
    return condition


def _or(tokens: _Tokens, places: Placeholders) -> Condition:
    parts = [_and(tokens, places)]
    while tokens.take("OR"):
        parts.append(_and(tokens, places))
    if len(parts) == 1:
        return parts[0]
    return lambda item, values: any(part(item, values) for part in parts)


def _and(tokens: _Tokens, places: Placeholders) -> Condition:
    parts = [_not(tokens, places)]
    while tokens.take("AND"):
        parts.append(_not(tokens, places))
    if len(parts) == 1:
        return parts[0]
    return lambda item, values: all(part(item, values) for part in parts)


def _not(tokens: _Tokens, places: Placeholders) -> Condition:
    if tokens.take("NOT"):
        inner = _not(tokens, places)
        return lambda item, values: not inner(item, values)
    return _primary(tokens, places)


def _primary(tokens: _Tokens, places: Placeholders) -> Condition:  # noqa: PLR0911 (one per form)
    token = tokens.peek()
    if token is None:
        raise tokens.error("<EOF>")
    if token[1] == "(":
        tokens.next()
        inner = _or(tokens, places)
        tokens.expect(")")
        return inner
    if token[0] == "word" and token[1].lower() in _FUNCTIONS:
        after = tokens.items[tokens.at + 1] if tokens.at + 1 < len(tokens.items) else None
        if after is not None and after[1] == "(":
            return _function(tokens, places)
    left = _operand(tokens, places)
    _, op = tokens.next()
    if op in ("=", "<>", "<", "<=", ">", ">="):
        right = _operand(tokens, places)
        if op == "=":
            return lambda item, values: equal(left(item, values), right(item, values))
        if op == "<>":
            return lambda item, values: not equal(left(item, values), right(item, values))
        compare = _COMPARE[op]

        def ordered(item: Item, values: Values) -> bool:
            pair = _ordered(left(item, values), right(item, values))
            return pair is not None and compare(*pair)

        return ordered
    if op.upper() == "BETWEEN":
        low = _operand(tokens, places)
        tokens.expect("AND")
        high = _operand(tokens, places)

        def between(item: Item, values: Values) -> bool:
            value = left(item, values)
            above = _ordered(value, low(item, values))
            below = _ordered(value, high(item, values))
            return (
                above is not None
                and below is not None
                and above[0] >= above[1]
                and below[0] <= below[1]
            )

        return between
    if op.upper() == "IN":
        tokens.expect("(")
        choices = [_operand(tokens, places)]
        while tokens.take(","):
            choices.append(_operand(tokens, places))
        tokens.expect(")")
        return lambda item, values: any(
            equal(left(item, values), choice(item, values)) for choice in choices
        )
    raise tokens.error(op)


_FUNCTIONS = frozenset(
    {"attribute_exists", "attribute_not_exists", "begins_with", "contains", "attribute_type"}
)


def _function(tokens: _Tokens, places: Placeholders) -> Condition:
    name = tokens.next()[1].lower()
    tokens.expect("(")
    path = _path(tokens, places)
    if name == "attribute_exists":
        tokens.expect(")")
        return lambda item, _values: path in item
    if name == "attribute_not_exists":
        tokens.expect(")")
        return lambda item, _values: path not in item
    tokens.expect(",")
    operand = _operand(tokens, places)
    tokens.expect(")")
    if name == "begins_with":
        return lambda item, values: _begins_with(item.get(path), operand(item, values))
    if name == "contains":
        return lambda item, values: _contains(item.get(path), operand(item, values))

    def has_type(item: Item, values: Values) -> bool:  # attribute_type
        wanted = operand(item, values)
        return path in item and wanted is not None and _type(item[path]) == wanted.get("S")

    return has_type


def _operand(tokens: _Tokens, places: Placeholders) -> _Operand:
    token = tokens.peek()
    if token is not None and token[0] == "value":
        tokens.next()
        return places.value(token[1])
    if token is not None and token[0] == "word" and token[1].lower() == "size":
        tokens.next()
        tokens.expect("(")
        path = _path(tokens, places)
        tokens.expect(")")
        return lambda item, _values: _size(item.get(path))
    path = _path(tokens, places)
    return lambda item, _values: item.get(path)


def _size(value: AttrValue | None) -> AttrValue | None:
    if value is None:
        return None
    kind = _type(value)
    if kind == "S":
        return {"N": str(len(value["S"].encode()))}
    if kind in ("B", "SS", "NS", "BS", "L", "M"):
        return {"N": str(len(value[kind]))}
    return None


# -- projections ----------------------------------------------------------------------


def parse_projection(text: str, places: Placeholders) -> list[str]:
    """The top-level attribute names of a projection expression."""
    tokens = _Tokens(text, "ProjectionExpression")
    names = [_path(tokens, places)]
    while tokens.take(","):
        names.append(_path(tokens, places))
    tokens.done()
    return names


# -- updates --------------------------------------------------------------------------


class Update:
    """A parsed update expression: its actions, and the attributes it touches."""

    __slots__ = ("actions", "paths")

    def __init__(self) -> None:
        # (clause, attribute, operand) with operand None for REMOVE
        self.actions: list[tuple[str, str, _Operand | None]] = []
        self.paths: list[str] = []

    def touch(self, path: str, kind: str) -> None:
        if path in self.paths:
            raise ExpressionError(
                f"Invalid {kind}: Two document paths overlap with each other; must remove or "
                f"rewrite one of these paths; path one: [{path}], path two: [{path}]"
            )
        self.paths.append(path)

    def apply(self, old: Item, values: Values) -> Item:
        """The item after the update; every operand is read from `old` (and `values`).

        Raises:
            ExpressionError: An operand of the wrong type, or a missing one.
        """
        new = dict(old)
        for clause, path, operand in self.actions:
            if clause == "REMOVE":
                new.pop(path, None)
                continue
            assert operand is not None  # noqa: S101 (every other clause has one)
            value = operand(old, values)
            if value is None:
                raise ExpressionError(
                    "The provided expression refers to an attribute that does not exist in the item"
                )
            if clause == "SET":
                new[path] = value
            elif clause == "ADD":
                new[path] = _add(old.get(path), value)
            else:  # DELETE
                remaining = _set_minus(old.get(path), value)
                if remaining is None:
                    new.pop(path, None)
                else:
                    new[path] = remaining
        return new


_CLAUSES = ("SET", "REMOVE", "ADD", "DELETE")


def parse_update(text: str, places: Placeholders) -> Update:
    """Parse an update expression.

    Raises:
        ExpressionError: A syntax error, an undefined placeholder, a path written twice.
    """
    kind = "UpdateExpression"
    tokens = _Tokens(text, kind)
    update = Update()
    seen: set[str] = set()
    while tokens.peek() is not None:
        clause = tokens.next()[1].upper()
        if clause not in _CLAUSES:
            raise tokens.error(clause)
        if clause in seen:
            raise ExpressionError(
                f'Invalid {kind}: The "{clause}" section can only be used once in an update '
                "expression;"
            )
        seen.add(clause)
        while True:
            path = _path(tokens, places)
            update.touch(path, kind)
            if clause == "SET":
                tokens.expect("=")
                update.actions.append((clause, path, _set_value(tokens, places)))
            elif clause == "REMOVE":
                update.actions.append((clause, path, None))
            else:
                update.actions.append((clause, path, _operand_value(tokens, places)))
            if not tokens.take(","):
                break
    return update


def _operand_value(tokens: _Tokens, places: Placeholders) -> _Operand:
    kind, token = tokens.next()
    if kind != "value":
        raise tokens.error(token)
    return places.value(token)


def _set_value(tokens: _Tokens, places: Placeholders) -> _Operand:
    left = _set_term(tokens, places)
    token = tokens.peek()
    if token is None or token[1] not in ("+", "-"):
        return left
    tokens.next()
    right = _set_term(tokens, places)
    subtract = token[1] == "-"

    def arithmetic(item: Item, values: Values) -> AttrValue | None:
        a, b = left(item, values), right(item, values)
        if a is None or b is None:
            return None
        if _type(a) != "N" or _type(b) != "N":
            raise ExpressionError("An operand in the update expression has an incorrect data type")
        return {"N": add_numbers(a["N"], b["N"], subtract=subtract)}

    return arithmetic


def _set_term(tokens: _Tokens, places: Placeholders) -> _Operand:
    token = tokens.peek()
    if token is not None and token[0] == "word" and token[1].lower() == "if_not_exists":
        tokens.next()
        tokens.expect("(")
        path = _path(tokens, places)
        tokens.expect(",")
        fallback = _set_term(tokens, places)
        tokens.expect(")")

        def if_not_exists(item: Item, values: Values) -> AttrValue | None:
            found = item.get(path)
            return found if found is not None else fallback(item, values)

        return if_not_exists
    if token is not None and token[0] == "word" and token[1].lower() == "list_append":
        tokens.next()
        tokens.expect("(")
        first = _set_term(tokens, places)
        tokens.expect(",")
        second = _set_term(tokens, places)
        tokens.expect(")")

        def list_append(item: Item, values: Values) -> AttrValue | None:
            a, b = first(item, values), second(item, values)
            if a is None or b is None:
                return None
            if _type(a) != "L" or _type(b) != "L":
                raise ExpressionError(
                    "An operand in the update expression has an incorrect data type"
                )
            return {"L": [*a["L"], *b["L"]]}

        return list_append
    return _operand(tokens, places)


def _add(current: AttrValue | None, value: AttrValue) -> AttrValue:
    kind = _type(value)
    if kind == "N":
        if current is None:
            return {"N": canonical_number(value["N"])}
        if _type(current) == "N":
            return {"N": add_numbers(current["N"], value["N"])}
    elif kind in ("SS", "NS", "BS"):
        if current is None:
            return value
        if _type(current) == kind:
            members = list(current[kind])
            for member in value[kind]:
                if not any(equal({kind: m}, {kind: member}) for m in members):
                    members.append(member)
            return {kind: members}
    raise ExpressionError("An operand in the update expression has an incorrect data type")


def _set_minus(current: AttrValue | None, value: AttrValue) -> AttrValue | None:
    kind = _type(value)
    if kind not in ("SS", "NS", "BS"):
        raise ExpressionError("An operand in the update expression has an incorrect data type")
    if current is None:
        return None
    if _type(current) != kind:
        raise ExpressionError("An operand in the update expression has an incorrect data type")
    members = [
        m for m in current[kind] if not any(equal({kind: m}, {kind: d}) for d in value[kind])
    ]
    return {kind: members} if members else None
