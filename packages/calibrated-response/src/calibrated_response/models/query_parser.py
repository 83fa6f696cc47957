"""A small query language for a fitted distribution, parsed into the models.

Grammar (whitespace is free; names are letters, digits, ``_`` and ``.``)::

    query       := "P(" conjunction [ "|" conjunction ] ")"
                 | "E(" name [ "|" conjunction ] ")"
    conjunction := proposition { ("," | "and" | "&") proposition }
    proposition := name                       binary variable is True
                 | ("not" | "!") name         binary variable is False
                 | name ("=" | "==") value    value: true, false, 1 or 0
                 | name (">" | ">=") number   continuous variable above
                 | name ("<" | "<=") number   continuous variable below

``>=`` and ``>`` (and ``<=`` and ``<``) are the same event for a continuous
variable (a single value has probability 0). Examples::

    P(temp > 20 | rain)
    P(rain, wind)
    P(not rain | temp < 5 and wind)
    E(umbrella_sales | rain, wind)

:func:`parse_query` returns a :class:`Query` whose propositions are the
package's :class:`EqualityProposition` / :class:`InequalityProposition`; a
malformed query raises :class:`QuerySyntaxError`, whose message shows the
query with a caret under the offending column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from calibrated_response.models.query import (
    EqualityProposition,
    InequalityProposition,
    Proposition,
)
from calibrated_response.models.variable import BinaryVariable, VariableUnion

_TOKEN = re.compile(
    r"\s*(?:(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op>>=|<=|==|[()|,&!<>=]))"
)
_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


class QuerySyntaxError(ValueError):
    """A malformed query; ``column`` (1-based) points at the problem."""

    def __init__(self, query: str, column: int, message: str) -> None:
        self.query, self.column = query, column
        super().__init__(
            f"{message} at column {column}\n  {query}\n  {' ' * (column - 1)}^"
        )


class Query(BaseModel):
    """A parsed query.

    Attributes
    ----------
    kind : {"probability", "expectation"}
    propositions : tuple of Proposition
        The event of a probability (empty for an expectation).
    variable : str or None
        The variable of an expectation.
    given : tuple of Proposition
        The conditions, read as a conjunction (empty: unconditional).
    text : str
        The query as written.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["probability", "expectation"]
    propositions: tuple[Proposition, ...] = ()
    variable: str | None = None
    given: tuple[Proposition, ...] = ()
    text: str


class _Tokens:
    """The tokens of a query with their 1-based columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                bad = pos + len(text[pos:]) - len(text[pos:].lstrip())
                raise QuerySyntaxError(text, bad + 1, f"unexpected {text[bad]!r}")
            kind = match.lastgroup
            self.items.append((kind, match.group(kind), match.start(kind) + 1))
            pos = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str, int]:
        if self.index < len(self.items):
            return self.items[self.index]
        return ("end", "", len(self.text) + 1)

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, value: str, what: str) -> None:
        kind, found, column = self.take()
        if found != value:
            shown = "the end" if kind == "end" else repr(found)
            raise QuerySyntaxError(self.text, column, f"expected {what}, found {shown}")


def parse_query(text: str, variables: Sequence[VariableUnion]) -> Query:
    """Parse ``text`` against the problem's variables.

    Parameters
    ----------
    text : str
        A query in the grammar of this module.
    variables : sequence of BinaryVariable or ContinuousVariable
        Known variables: names are checked, and each comparison must suit the
        variable's type.

    Returns
    -------
    Query

    Raises
    ------
    QuerySyntaxError
        For a malformed query, an unknown variable or a comparison that does
        not suit its variable; the message points at the column.
    """
    if not isinstance(text, str):
        raise TypeError(f"query must be a str, got {type(text).__name__}")
    by_name = {v.name: v for v in variables}
    tokens = _Tokens(text)
    kind, head, column = tokens.take()
    if head not in ("P", "E"):
        raise QuerySyntaxError(text, column, "a query starts with P( or E(")
    tokens.expect("(", "'('")
    propositions: tuple[Proposition, ...] = ()
    variable = None
    if head == "P":
        propositions = _conjunction(tokens, by_name)
    else:
        variable = _name(tokens, by_name)
    given: tuple[Proposition, ...] = ()
    if tokens.peek()[1] == "|":
        tokens.take()
        given = _conjunction(tokens, by_name)
    tokens.expect(")", "')'")
    kind, found, column = tokens.peek()
    if kind != "end":
        raise QuerySyntaxError(text, column, f"unexpected {found!r} after the query")
    return Query(
        kind="probability" if head == "P" else "expectation",
        propositions=propositions,
        variable=variable,
        given=given,
        text=text,
    )


def _name(tokens: _Tokens, by_name: dict[str, VariableUnion]) -> str:
    """A known variable name."""
    kind, value, column = tokens.take()
    if kind != "name" or value in ("and", "not"):
        shown = "the end" if kind == "end" else repr(value)
        raise QuerySyntaxError(
            tokens.text, column, f"expected a variable, found {shown}"
        )
    if value not in by_name:
        raise QuerySyntaxError(
            tokens.text,
            column,
            f"unknown variable {value!r} (known: {', '.join(sorted(by_name))})",
        )
    return value


def _conjunction(
    tokens: _Tokens, by_name: dict[str, VariableUnion]
) -> tuple[Proposition, ...]:
    """Propositions joined by ``,``, ``and`` or ``&``."""
    props = [_proposition(tokens, by_name)]
    while tokens.peek()[1] in (",", "and", "&"):
        tokens.take()
        props.append(_proposition(tokens, by_name))
    return tuple(props)


def _proposition(tokens: _Tokens, by_name: dict[str, VariableUnion]) -> Proposition:
    """One proposition (see the module grammar)."""
    negated = tokens.peek()[1] in ("not", "!")
    if negated:
        tokens.take()
    column = tokens.peek()[2]
    name = _name(tokens, by_name)
    binary = isinstance(by_name[name], BinaryVariable)
    op = tokens.peek()[1]
    if negated or op not in ("=", "==", ">", ">=", "<", "<="):
        if not binary:
            raise QuerySyntaxError(
                tokens.text,
                column,
                f"continuous variable {name!r} needs a comparison (> or <)",
            )
        return EqualityProposition(variable=name, value=not negated)
    _, op, op_column = tokens.take()
    kind, value, value_column = tokens.take()
    if op in ("=", "=="):
        if not binary:
            raise QuerySyntaxError(
                tokens.text,
                op_column,
                f"'=' on continuous variable {name!r} has probability 0; use > or <",
            )
        if value.lower() not in _TRUE | _FALSE:
            raise QuerySyntaxError(
                tokens.text, value_column, "expected true, false, 1 or 0"
            )
        return EqualityProposition(variable=name, value=value.lower() in _TRUE)
    if binary:
        raise QuerySyntaxError(
            tokens.text,
            op_column,
            f"{op!r} on binary variable {name!r}; write {name} or not {name}",
        )
    if kind != "number":
        raise QuerySyntaxError(tokens.text, value_column, "expected a number")
    threshold = float(value)
    if threshold != threshold or abs(threshold) == float("inf"):
        raise QuerySyntaxError(tokens.text, value_column, "expected a finite number")
    return InequalityProposition(
        variable=name, threshold=threshold, is_lower_bound=op in (">", ">=")
    )
