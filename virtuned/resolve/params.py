"""Typed params: declared with ``param NAME: TYPE``, set by ``include ... with``,
``--set`` or a default, and substituted into trait lines as items."""

from __future__ import annotations

from virtuned import values
from virtuned.diagnostics import (REQUEST, ExitCode, OptionNames, Related, Span, did_you_mean,
                                  error)
from virtuned.resolve import registry
from virtuned.syntax import ast

PARAM_TYPES = ("int", "size", "cpus", "word", "string", "bool")
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")


def typed(param: ast.Param, item, span: Span):
    """A param value from an item (literal, word, string), checked against its type."""
    text = item.value if isinstance(item, ast.String) else str(item)
    try:
        if param.type == "int":
            return values.parse_int(text)
        if param.type == "size":
            return values.parse_size(text)
        if param.type == "cpus":
            return values.parse_cpulist(text)
        if param.type == "bool":
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError(f"expected true or false, got {text!r}")
        if param.type == "word":
            if isinstance(item, ast.Word):
                return text
            raise ValueError(f"expected a word, got {text!r}")
        return text  # string
    except ValueError as exc:
        raise error(span, f"param '{param.name}' ({param.type}): {exc}") from None


def as_item(param: ast.Param, value, span: Span):
    """A typed value back as the item a trait line would have held."""
    if param.type == "string":
        return ast.String(value, span)
    if param.type == "cpus":
        return ast.Literal(values.format_cpulist(value), span)
    if param.type == "bool":
        return ast.Word("true" if value else "false", span)
    if param.type == "word":
        return ast.Word(value, span)
    return ast.Literal(str(value), span)


def setting_item(text: str, span: Span):
    """``--set`` text as an item: typed later by the param it lands on."""
    if text[:1].isdigit():
        return ast.Literal(text, span)
    if text[:1].isalpha() or text[:1] == "_":
        return ast.Word(text, span)
    return ast.String(text, span)


def _shown(value) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return registry.to_text(value)


def param_clash(key, span, other_span, params, other_params):
    differing = sorted(n for n in set(params) | set(other_params)
                       if params.get(n) != other_params.get(n))
    shown = ", ".join(f"{n} = {_shown(params.get(n))} vs {_shown(other_params.get(n))}"
                      for n in differing)
    related = (Related(other_span, "included here with other values"),) if other_span else ()
    return error(span or Span(REQUEST, 1, 1),
                 f"'{key}' is used twice with different params ({shown})",
                 related=related, exit_code=ExitCode.CONFLICT,
                 hint="one profile has one set of params per compile")


def declared_params(tree) -> dict[str, ast.Param]:
    """The params a profile declares, by name."""
    declared: dict[str, ast.Param] = {}
    for statement in tree.statements:
        if isinstance(statement, ast.Param):
            if statement.name in declared:
                raise error(statement.span, f"param '{statement.name}' is declared twice",
                            related=(Related(declared[statement.name].span,
                                             "first declared here"),))
            if statement.type not in PARAM_TYPES:
                raise error(statement.span, f"param '{statement.name}': unknown type "
                            f"'{statement.type}'",
                            hint=did_you_mean(statement.type, PARAM_TYPES))
            declared[statement.name] = statement
    return declared


def param_values(tree, declared, assigned: dict, unset_allowed: bool,
                 option_names: OptionNames) -> dict:
    """Typed values: assigned (include ``with``, ``--set``), else the default; a
    required param without one is an error unless ``unset_allowed``."""
    values_: dict = {}
    for name, (item, span) in assigned.items():
        if isinstance(item, ast.ParamRef):
            continue  # checking: the includer's own param has no value yet
        if name not in declared:
            profile = tree.header.name if tree.header else tree.source
            raise error(span, f"'{profile}' has no param '{name}'",
                        hint=did_you_mean(name, tuple(declared)) or
                        f"its params: {', '.join(declared) or 'none'}")
        values_[name] = typed(declared[name], item, span)
    for name, param in declared.items():
        if name in values_:
            continue
        if param.default is not None:
            values_[name] = typed(param, param.default, param.default.span)
        elif not param.optional and not unset_allowed:
            raise error(param.span, f"param '{name}' is required and was not set",
                        hint=f"set it with 'include ... with {name} = VALUE' or "
                             f"{option_names.given('settings', 'VALUE', name)}")
    return values_
