"""Segment definitions: ``clients/<client_id>/segments/<name>.yaml``, of three types.

- ``manual``: a fixed list of people, by external id, phone or email (``members``), and/or the
  people of the latest landed packet of a list packet type (``packet_type``, e.g. a
  ``segment_list`` load map): a client replaces the list by dropping a new file;
- ``sql``: one SELECT over the ``marts`` / ``analytics`` schemas returning ``contact_id``;
- ``function``: ``module:callable`` receiving a read-only warehouse handle, returning contact ids.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from herald.config.base import SLUG_RE, SLUG_RULE, Strict

FUNCTION_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SegmentConfig(Strict):
    name: str
    description: str = ""
    type: Literal["manual", "sql", "function"]
    members: list[str] = Field(default_factory=list)
    packet_type: str | None = None  # manual: also the contacts of the latest packet of this type
    sql: str | None = None
    function: str | None = None
    timeout_seconds: int = Field(default=30, ge=1, le=600)

    @model_validator(mode="after")
    def _fields_fit_type(self) -> SegmentConfig:
        if not SLUG_RE.match(self.name):
            raise ValueError(f"{self.name!r} is not a valid segment name ({SLUG_RULE})")
        needed = {"manual": "members", "sql": "sql", "function": "function"}[self.type]
        if self.packet_type is not None and self.type != "manual":
            raise ValueError(f"a {self.type} segment takes no `packet_type` (only a manual list does)")
        if not getattr(self, needed) and not (self.type == "manual" and self.packet_type):
            if self.type == "manual":
                raise ValueError("a manual segment needs `members`, a list `packet_type`, or both")
            raise ValueError(f"a {self.type} segment needs `{needed}`")
        others = [f for f in ("members", "sql", "function") if f != needed and getattr(self, f)]
        if others:
            raise ValueError(f"a {self.type} segment takes `{needed}`, not {', '.join(f'`{o}`' for o in others)}")
        if self.function and not FUNCTION_RE.match(self.function):
            raise ValueError(f"function {self.function!r} must be written module.path:callable")
        return self
