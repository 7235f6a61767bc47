"""Request bodies a legacy system sends: JSON, or XML mapped to the contract's fields.

XML is parsed with defusedxml and any DOCTYPE or entity is refused, never resolved. An element
with children becomes an object, repeated elements a list, text a string (pydantic then
validates it as the contract's field, e.g. "3" as an int); the root element names nothing. A
single element under a list field is a one-element list (``connectors/xml_fields.py``).
"""

from __future__ import annotations

import json
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from pydantic import BaseModel

from interchange.connectors.xml_fields import element_data, shaped

JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml")


class BadBody(ValueError):
    """The body cannot be read at all (status 400), or its media type is not taken (415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind in JSON_TYPES or kind.endswith("+json")


def read(body: bytes, content_type: str | None, model: type[BaseModel] | None = None) -> Any:
    """The body as JSON-like data, by its content type (none means JSON); XML shaped by the
    fields of ``model`` when given."""
    kind = media_type(content_type)
    if kind in JSON_TYPES or kind.endswith("+json"):
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadBody(f"body is not valid JSON: {error}") from None
    if kind in XML_TYPES or kind.endswith("+xml"):
        data = _xml(body)
        return data if model is None else shaped(data, model)
    raise BadBody(
        f"unsupported content type {kind!r}: send application/json or application/xml", 415
    )


def _xml(body: bytes) -> Any:
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as refused:
        raise BadBody(
            f"XML with a DOCTYPE or entities is refused: {type(refused).__name__}"
        ) from None
    except ParseError as error:
        raise BadBody(f"body is not well-formed XML: {error}") from None
    return element_data(root)
