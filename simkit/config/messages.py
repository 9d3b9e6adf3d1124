"""How a config's problems are worded: :class:`ConfigError` (every problem found; ``str()`` is the first, one line),
and pydantic's validation errors turned into ``dotted.path: problem`` lines that show the value given
(:func:`validation_problem`, :func:`pydantic_problems`, :func:`shown_once`).
"""
from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from simkit.errors import InputError, shown
from simkit.paths import dotted_location
from simkit.config.core import Config, PROBLEM_LINES


class ConfigError(InputError):
    """Every problem found in one config; ``str()`` is the first, one line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (+{len(problems) - 1} more; `simkit validate` lists them)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)

    def __reduce__(self):
        return ConfigError, (self.problems,)


#: "field.sub: problem" at the start of a block validator's message
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): ")


def _le(metadata: list) -> Any:
    return next((m.le for m in metadata if getattr(m, "le", None) is not None), None)


def _members(annotation: Any) -> list[Any]:
    """The types an annotation admits, Optional/Union and Annotated unwrapped."""
    if typing.get_origin(annotation) is Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _upper_bound(model: type[BaseModel], loc: tuple) -> Any:
    """The ``le`` declared on the field at pydantic location ``loc`` of ``model`` (through nested blocks,
    lists, dicts and tagged unions); None when none is declared."""
    node: Any = model
    bound = None
    for key in loc:
        members = _members(node)
        block = next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)
                      and isinstance(key, str) and key in m.model_fields), None)
        if block is not None:
            node, bound = block.model_fields[key].annotation, _le(block.model_fields[key].metadata)
            continue
        container = next((m for m in members if typing.get_origin(m) in (list, dict, tuple)), None)
        if container is not None:  # a list index or a dict key: the item type
            node = typing.get_args(container)[-1]
            bound = _le(list(typing.get_args(node)[1:])) if typing.get_origin(node) is Annotated else None
        # else a tagged union's member name: the same node
    return bound


#: pydantic error types whose message does not take the offending value: a key the model lacks or does not
#: allow (the value is not the problem), or the project's own checks (their messages say what they need)
_NO_INPUT_SHOWN = ("missing", "extra_forbidden", "value_error", "assertion_error")


def validation_problem(item: dict, raw: Any = None, model: type[BaseModel] | None = None) -> tuple[str, str]:
    """(dotted field, message) of one pydantic error ``item`` of ``model`` (:class:`Config` when None) validated
    from ``raw``: list items named by their ``name`` (:func:`simkit.paths.dotted_location`), ``unknown field`` and
    ``required field is missing`` as the project words them, a block check's own field made part of the path, a
    number beyond 64 bits told with the field's bound, and pydantic's own messages ending with the value given
    (:func:`_with_input`: ``Input should be greater than 0, got -3``; :func:`shown_once` drops it where the caller
    shows the value)."""
    path = dotted_location(item["loc"], raw)
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "int_parsing_size":  # a number beyond 64 bits: say the field's own bound
        bound = _upper_bound(model or Config, item["loc"])
        limit = f"less than or equal to {bound}" if bound is not None else "an integer below 2**63"
        message = f"Input should be {limit}"
    field = _FIELD_PREFIX.match(message) if item["type"] == "value_error" else None
    if field:  # a block's own check names the field it found wrong: make it part of the dotted path
        path, message = f"{path}.{field.group(1)}", message[field.end():]
    if item["type"] == "extra_forbidden":
        message = "unknown field"
    elif item["type"] == "missing":
        message = "required field is missing"
    return path, _with_input(message, item)


def _with_input(message: str, item: dict) -> str:
    """``message`` of the pydantic error ``item`` followed by the value the field was given (cut by
    :func:`simkit.errors.shown`): ``…, got -3``, or ``… (1.5)`` after a message that already says what it got
    (``got a number with a fractional part``). Unchanged for :data:`_NO_INPUT_SHOWN` and for a block (a
    mapping) given where it does not fit, whose field the dotted path already names."""
    if item["type"] in _NO_INPUT_SHOWN or "input" not in item or isinstance(item["input"], dict):
        return message
    value = shown(item["input"])
    return f"{message} ({value})" if re.search(r"\bgot\b", message) else f"{message}, got {value}"


def pydantic_problems(error: ValidationError, raw: dict, prefix: str = "") -> list[str]:
    """``PREFIXfield: message`` of each problem of ``error`` (:func:`validation_problem`), a block check's problems
    (:data:`PROBLEM_LINES`) one by one, each at its own field."""
    return [f"{prefix}{path}: {message}" for path, message in (validation_problem(item, raw)
                                                               for item in _one_problem_each(error))]


def _one_problem_each(error: ValidationError) -> list[dict]:
    """The error items of ``error``, a block check's item split into one per problem it joined
    (:data:`PROBLEM_LINES`)."""
    return [{**item, "msg": line} if item["type"] == "value_error" else item for item in error.errors()
            for line in (item["msg"].split(PROBLEM_LINES) if item["type"] == "value_error" else [item["msg"]])]


def shown_once(problem: str, given: dict[str, Any]) -> str:
    """``problem`` (``field: message``) without the value its message ends with when ``field`` is a key of ``given``
    (dotted field → the value the caller set and shows itself: ``--set turnout.mean=-3``, ``replicates=0``): only
    that value's own text, ``…, got -3`` or ``… (1.5)`` (:func:`_value_texts`), so a message's other figures
    (``must sum to 1, got 0.9`` beside a table set) stay. Shown once."""
    field, _, message = problem.partition(": ")
    if field not in given:
        return problem
    for text in _value_texts(given[field]):
        for tail in (f", got {text}", f" ({text})"):
            if message.endswith(tail):
                return f"{field}: {message.removesuffix(tail)}"
    return problem


def _value_texts(value: Any) -> set[str]:
    """The ways a message writes ``value``: :func:`simkit.errors.shown`, a text also as it is (a clock time,
    ``got 12:00``), and a number also as the float a field made of it (``9`` → ``9.0``) and in ``g`` format
    (``9``)."""
    texts = {shown(value)}
    if isinstance(value, str):
        texts.add(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        texts |= {shown(float(value)), f"{value:g}"}
    return texts
