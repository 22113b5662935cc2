"""Marshmallow building blocks shared by every service's wire schemas."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gateway_common.money import MAX_AMOUNT
from gateway_common.timeutil import iso

Dump = Callable[[Any], dict]


class StrictInteger(fields.Integer):
    """An integer field that refuses strings, floats and booleans."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: object) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class RequestSchema(ma.Schema):
    """Base for request bodies: unknown fields are an error."""

    class Meta:
        unknown = ma.RAISE


def amount_field(minimum: int, *, required: bool = True, **kwargs: object) -> StrictInteger:
    """Return an integer minor-units amount field with the gateway's range."""
    return StrictInteger(
        required=required,
        validate=validate.Range(
            min=minimum, max=MAX_AMOUNT, error=f"amount must be an integer between {minimum} and {MAX_AMOUNT}"
        ),
        **kwargs,
    )


class PageQuerySchema(ma.Schema):
    """``limit``/``offset`` query parameters of every list endpoint."""

    class Meta:
        unknown = ma.EXCLUDE

    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))


class ErrorEnvelopeDetailSchema(ma.Schema):
    code = fields.String(required=True)
    description = fields.String(required=True)


class ErrorEnvelopeSchema(ma.Schema):
    """The API.md error envelope, for the OpenAPI document."""

    error = fields.Nested(ErrorEnvelopeDetailSchema, required=True)


class UtcTimestamp(fields.DateTime):
    """A time on the wire as ``2026-01-15T10:30:00Z`` (UTC, whole seconds), or null."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso(value)


def compile_dump(schema: type[ma.Schema], *, exclude: Iterable[str] = ()) -> Dump:
    """Return a function that dumps an object as ``schema`` declares it, without marshmallow's per-call work.

    The schema stays the one definition of a response: OpenAPI is generated from it and the
    bytes on the wire follow its fields, in order. Each field reads the object's attribute of
    the same name (or ``attribute=``); a ``UtcTimestamp`` is formatted with ``iso``, a
    ``Constant`` is its value, anything else passes as it is (plain values: str, int, bool,
    dict, None). A field with ``metadata={"only_if": (attribute, value)}`` is written only
    when the object's attribute equals the value (fields that belong to one variant).
    """
    excluded = set(exclude)
    namespace: dict[str, Any] = {"iso": iso}
    lines = ["def dump(obj):", "    body = {}"]
    for index, (key, field) in enumerate(schema._declared_fields.items()):
        if key in excluded:
            continue
        expression = _expression(key, field, index, namespace)
        only_if = field.metadata.get("only_if")
        if only_if is None:
            lines.append(f"    body[{key!r}] = {expression}")
        else:
            namespace[f"when{index}"] = only_if[1]
            lines.append(f"    if obj.{_identifier(only_if[0])} == when{index}:")
            lines.append(f"        body[{key!r}] = {expression}")
    lines.append("    return body")
    # Generated like dataclasses' __init__, from declared field and attribute names checked to be
    # identifiers (values go through the namespace, never into the source): a plain function is
    # about twice as fast as a loop over the fields, and it runs for every payment answered or sent.
    exec("\n".join(lines), namespace)  # noqa: S102
    dump = namespace["dump"]
    dump.__doc__ = f"Dump an object as {schema.__name__} declares it."
    return dump


def _identifier(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"compile_dump reads attributes by name; {name!r} is not an identifier")
    return name


def _expression(key: str, field: fields.Field, index: int, namespace: dict[str, Any]) -> str:
    if isinstance(field, fields.Constant):
        namespace[f"constant{index}"] = field.constant
        return f"constant{index}"
    if isinstance(field, (fields.Nested, fields.List, fields.Method, fields.Function)):
        raise TypeError(f"compile_dump does not dump {type(field).__name__} fields ({key}); dump them in the view")
    read = f"obj.{_identifier(field.attribute or key)}"
    return f"iso({read})" if isinstance(field, UtcTimestamp) else read
