"""What sqlfluff's jinja templater needs, beyond its dbt builtins, to render Herald's models.

Every public name here becomes a variable in the templates (.sqlfluff sets `library_path`):
- `herald.<macro>(...)` calls the project's own macro (loaded from `macros/` by the templater);
- `adapter.dispatch(name, 'herald')` picks `<engine>__<name>`, else `default__<name>`, as dbt
  does, for the engine in SQLFLUFF_DBT_ENGINE (default `duckdb`; `postgres` lints the
  PostgreSQL variants);
- `var(name, default)` answers with the project's vars from dbt_project.yml;
- `env_var(name, default)` with the environment, as dbt does;
- `modules` is dbt's `modules` context (datetime only).
Nothing here runs inside dbt.
"""

import datetime as _datetime
import os
import types
from pathlib import Path
from typing import Any

import jinja2
import yaml

_PROJECT = Path(__file__).resolve().parent.parent
_VARS: dict[str, Any] = yaml.safe_load((_PROJECT / "dbt_project.yml").read_text()).get("vars", {})
_ENGINE = os.environ.get("SQLFLUFF_DBT_ENGINE", "duckdb")


def _macro(context: jinja2.runtime.Context, name: str) -> Any:
    found = context.resolve_or_missing(name)
    if found is jinja2.runtime.missing:
        raise KeyError(f"no macro named {name!r} in dbt_project/macros")
    return found


class _Namespace:
    """`herald.<macro>`: the project's macros under the package name."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        @jinja2.pass_context
        def call(context: jinja2.runtime.Context, *args: Any, **kwargs: Any) -> Any:
            return _macro(context, name)(*args, **kwargs)

        return call


class _Adapter:
    @jinja2.pass_context
    def dispatch(self, context: jinja2.runtime.Context, name: str, package: str | None = None) -> Any:
        for candidate in (f"{_ENGINE}__{name}", f"default__{name}"):
            if context.resolve_or_missing(candidate) is not jinja2.runtime.missing:
                return _macro(context, candidate)
        return _macro(context, name)


def var(name: str, default: Any = None) -> Any:
    return _VARS.get(name, default)


def env_var(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


herald = _Namespace()
adapter = _Adapter()
modules = types.SimpleNamespace(datetime=_datetime)
