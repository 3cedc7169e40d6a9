"""The base of every configuration section: unknown keys are refused, and a loaded job cannot change."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
