"""What every configuration model builds on: the strict base model, the slug rule for ids and
names, and the error a validator raises to report several problems at once.

Kept apart from :mod:`herald.config.models` so that ``segments.py`` and ``campaigns.py`` can build
on it while ``models.py`` imports them for the ``Client`` they belong to.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
SLUG_RULE = "lower-case letters, digits and underscores, starting with a letter"


class Strict(BaseModel):
    """Unknown keys are errors (so a typo never silently does nothing); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MappingProblems(ValueError):
    """Several problems found across a model's fields, each with the field it concerns."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems  # (field location such as "columns.Zip" or "required", message)
        super().__init__("; ".join(message for _, message in problems))
