"""Function tools for the native runner: a typed Python function as a Chat Completions tool.

The JSON schema of the arguments comes from the function's signature (through pydantic,
so ``str``, ``int``, ``float``, ``bool``, ``list[...]``, ``dict[...]``, ``Optional``,
``Literal``, ``Enum`` and pydantic models all work) and the parameter descriptions from
its docstring (a Google-style ``Args:`` section or Sphinx ``:param x:`` lines). Arguments
the model sends are validated and converted by the same pydantic model before the
function is called.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints, overload

from sessions import InvalidArgumentError

try:
    import pydantic
except ImportError as error:  # pragma: no cover - pydantic comes with openai
    from sessions import MissingDependencyError

    raise MissingDependencyError("openai", "openai", feature="adapters.runner") from error

__all__ = ["FunctionTool", "ToolArgumentsError", "function_tool"]

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?)\s*:\s*$")
_GOOGLE_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_ARG = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


class ToolArgumentsError(InvalidArgumentError):
    """The arguments a model sent for a tool are not valid.

    The runner does not raise it: its text goes back to the model as the tool result.
    """


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Return (summary, {parameter: description}) from a Google or Sphinx docstring."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    base_indent = 0
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        sphinx = _SPHINX_ARG.match(stripped)
        if sphinx:
            section, current = "sphinx", sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            continue
        header = _SECTION.match(stripped) if indent == 0 else None
        if header:
            section = header.group(1).lower()
            current = None
            base_indent = -1
            continue
        if section is None:
            summary.append(stripped)
        elif section in ("args", "arguments", "parameters", "params"):
            if not stripped:
                continue
            if base_indent < 0:
                base_indent = indent
            entry = _GOOGLE_ARG.match(stripped) if indent == base_indent else None
            if entry:
                current = entry.group(1)
                params[current] = entry.group(2).strip()
            elif current is not None:
                params[current] = f"{params[current]} {stripped}".strip()
        elif section == "sphinx" and current is not None and stripped and not stripped.startswith(":"):
            params[current] = f"{params[current]} {stripped}".strip()
    text = "\n".join(summary).strip()
    return re.sub(r"\s*\n\s*\n\s*", "\n\n", text), params


def _arguments_model(function: Callable[..., Any], name: str,
                     descriptions: dict[str, str]) -> type[pydantic.BaseModel]:
    signature = inspect.signature(function)
    try:
        hints = get_type_hints(function)
    except Exception as error:
        raise InvalidArgumentError(f"cannot resolve the type hints of tool {name!r}: {error}") from error
    fields: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise InvalidArgumentError(
                f"tool {name!r}: *args and **kwargs cannot be described to a model "
                f"(parameter {parameter.name!r})"
            )
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise InvalidArgumentError(f"tool {name!r}: positional-only parameter {parameter.name!r}")
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        description = descriptions.get(parameter.name)
        fields[parameter.name] = (annotation, pydantic.Field(default, description=description))
    try:
        return pydantic.create_model(f"{name}_arguments", **fields)
    except (pydantic.PydanticSchemaGenerationError, TypeError) as error:
        raise InvalidArgumentError(f"tool {name!r}: unsupported parameter type: {error}") from error


def _schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    return schema


@dataclass(frozen=True)
class FunctionTool:
    """A Python function the model may call. Build one with :func:`function_tool`.

    ``parameters`` is the JSON schema sent to the model. Calling the tool object calls
    the function itself, so a decorated function stays usable as a function.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    arguments_model: type[pydantic.BaseModel] = field(repr=False)

    @property
    def is_async(self) -> bool:
        """True if the function is a coroutine function (it then runs on the event loop)."""
        return inspect.iscoroutinefunction(self.function)

    def definition(self) -> dict[str, Any]:
        """The tool as the Chat Completions ``tools`` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def parse_arguments(self, text: str | None) -> dict[str, Any]:
        """Validate the model's JSON arguments and return the keyword arguments of the call."""
        try:
            raw = json.loads(text) if text else {}
        except ValueError as error:
            raise ToolArgumentsError(f"arguments are not valid JSON: {error}") from error
        if not isinstance(raw, dict):
            raise ToolArgumentsError("arguments must be a JSON object")
        try:
            validated = self.arguments_model.model_validate(raw)
        except pydantic.ValidationError as error:
            raise ToolArgumentsError(f"invalid arguments: {error}") from error
        return {name: getattr(validated, name) for name in type(validated).model_fields}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def _make_tool(function: Callable[..., Any], name: str | None, description: str | None) -> FunctionTool:
    if not callable(function):
        raise InvalidArgumentError(f"a tool must be a function, not {type(function).__name__}")
    tool_name: str = name or str(getattr(function, "__name__", ""))
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool_name):
        raise InvalidArgumentError(
            f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-' (pass name=...)"
        )
    summary, params = _parse_docstring(inspect.getdoc(function))
    model = _arguments_model(function, tool_name, params)
    return FunctionTool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=_schema(model),
        function=function,
        arguments_model=model,
    )


@overload
def function_tool(function: Callable[..., Any], /) -> FunctionTool: ...
@overload
def function_tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a typed function (sync or async) into a :class:`FunctionTool`.

    Use as ``@function_tool`` or ``@function_tool(name=..., description=...)``. The
    description defaults to the docstring's summary, each parameter's description to
    its entry in the docstring's ``Args:`` section. ``*args``/``**kwargs`` and types
    pydantic cannot describe raise :class:`sessions.InvalidArgumentError`.
    """
    if function is not None:
        return _make_tool(function, name, description)

    def decorate(inner: Callable[..., Any]) -> FunctionTool:
        return _make_tool(inner, name, description)

    return decorate
