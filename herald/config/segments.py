"""Segment definitions: ``clients/<client_id>/segments/<name>.yaml``, of three types.

- ``manual``: a fixed list of people, by external id, phone or email (``members``), and/or the
  people of the latest landed packet of a list packet type (``packet_type``, e.g. a
  ``segment_list`` load map): a client replaces the list by dropping a new file;
- ``sql``: one SELECT over the ``marts`` / ``analytics`` schemas returning ``contact_id``;
- ``function``: ``module:callable`` from the deployment's segment functions package
  (``herald.yaml: segment_functions_package``), receiving the same confined handle SQL segments
  run on, returning contact ids. The check finds the callable by reading the module's source:
  it never imports (runs) a configured module.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from herald.config.base import SLUG_RE, SLUG_RULE, Strict

FUNCTION_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DEFAULT_FUNCTIONS_PACKAGE = "herald.segments.examples"
PACKAGE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


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


def in_functions_package(function: str, package: str) -> bool:
    """Whether ``module:callable`` names a module of ``package`` (the package itself or below)."""
    module = function.partition(":")[0]
    return module == package or module.startswith(package + ".")


def _module_source(module: str) -> Path | None:
    """The source file of ``module``, found without importing it or any package above it."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level name is only looked up, never run
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    for folder in spec.submodule_search_locations or []:
        base = Path(folder).joinpath(*rest)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _defines(source: Path, name: str) -> bool:
    """Whether the module's top level defines (or imports) ``name``."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name.split(".")[0]) == name for alias in node.names
        ):
            return True
    return False


def check_function(function: str, package: str) -> str | None:
    """What is wrong with a ``function`` segment's ``module:callable`` under the deployment's
    segment functions package, or None. Reads source files only; imports nothing."""
    if not in_functions_package(function, package):
        return (
            f"{function!r} is not in the segment functions package {package!r} "
            "(herald.yaml: segment_functions_package); segment functions must be the deployment's own code"
        )
    module, _, name = function.partition(":")
    try:
        source = _module_source(module)
    except (ImportError, ValueError):
        source = None
    if source is None:
        return f"no module {module!r} found (looked for its source without importing it)"
    if not _defines(source, name):
        return f"module {module!r} ({source.name}) defines no {name!r} at its top level"
    return None
