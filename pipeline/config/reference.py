"""The job-file reference, written from the typed configuration itself (import-light, like the rest of config).

Every row comes from a pydantic field of ``JobConfig`` and its sections: the dotted key, the type and its bounds,
the default and the ``Field`` description; the values a plug-in field takes, and the options it accepts, come from
the registry in ``choices.py``. The documentation site puts the result on its job-file page when it is built
(``docs/hooks.py``), so a field added to a section appears there without anyone editing Markdown.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from pipeline.config import choices
from pipeline.config.choices import Choices
from pipeline.config.job import JobConfig

# Which fields take the names of a registry's plug-ins ("names") or the options of the one chosen ("options").
# A test checks that every registry of choices.py is named here, so a new kind of plug-in cannot go unlisted.
PLUGIN_FIELDS: dict[str, tuple[str, str]] = {
    "data.source": ("DATA_SOURCES", "names"),
    "data.transforms": ("TRANSFORMS", "names"),
    "pairs.sources": ("PAIR_SOURCES", "names"),
    "pairs.index": ("INDEXES", "names"),
    "pairs.index_options": ("INDEXES", "options"),
    "encoder.name": ("ENCODERS", "names"),
    "encoder.options": ("ENCODERS", "options"),
    "train.loss": ("LOSSES", "names"),
    "train.loss_options": ("LOSSES", "options"),
    "train.optimizer": ("OPTIMIZERS", "names"),
    "train.source_weights": ("PAIR_SOURCES", "names"),
}

# The plug-in registries, in the order the reference lists them: attribute of choices.py -> heading.
REGISTRIES: dict[str, str] = {
    "DATA_SOURCES": "Data sources (`data.source`)",
    "TRANSFORMS": "Transforms (`data.transforms`)",
    "PAIR_SOURCES": "Pair sources (`pairs.sources`)",
    "INDEXES": "FAISS indexes (`pairs.index`, `pairs.index_options`)",
    "ENCODERS": "Encoders (`encoder.name`, `encoder.options`)",
    "LOSSES": "Losses (`train.loss`, `train.loss_options`)",
    "OPTIMIZERS": "Optimizers (`train.optimizer`)",
}


def registry(name: str) -> Choices:
    found: Choices = getattr(choices, name)
    return found


def yamlish(value: Any) -> str:
    """A value as it is written in a job file (YAML flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yamlish(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {yamlish(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return yamlish(value.model_dump())
    return str(value)


_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "text", Any: "any value"}


def type_text(annotation: Any) -> str:
    """A field's type in words: ``int | None`` -> "integer or null", ``Literal['a', 'b']`` -> "`a` or `b`"."""
    origin = get_origin(annotation)
    if annotation is type(None):
        return "null"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if origin is Literal:
        return " or ".join(f"`{yamlish(v)}`" for v in get_args(annotation))
    if origin in (Union, types.UnionType):
        members = list(get_args(annotation))
        if int in members and float in members:  # int | float: a number, written either way
            members.remove(int)
        return " or ".join(type_text(m) for m in members)
    if origin is list:
        (item,) = get_args(annotation)
        return f"list of {_plural(type_text(item))}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping of {type_text(key)} to {type_text(value)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section" if annotation.__module__.startswith("pipeline.config") else annotation.__name__
    return getattr(annotation, "__name__", str(annotation))


def _plural(text: str) -> str:
    return {"integer": "integers", "number": "numbers", "text": "texts", "boolean": "booleans"}.get(text, text)


def bounds_text(field: FieldInfo) -> str:
    """The constraints pydantic checks on a field, in symbols: "≥ 1", "> 0, < 1", "matches ``^[A-Z]+$``"."""
    words = []
    for meta in field.metadata:
        for attribute, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(meta, attribute, None) is not None:
                words.append(f"{symbol} {yamlish(getattr(meta, attribute))}")
        if getattr(meta, "min_length", None):
            words.append("not empty" if meta.min_length == 1 else f"at least {meta.min_length} long")
        if getattr(meta, "pattern", None):
            words.append(f"matches `{meta.pattern}`")
    return ", ".join(words)


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The configuration model a field holds (``PriorRule | None`` -> ``PriorRule``), else None."""
    candidates = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def mapping_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a mapping's values (``dict[str, AdjacentSpec]`` -> ``AdjacentSpec``), else None."""
    if get_origin(annotation) is dict:
        return section_model(get_args(annotation)[1])
    return None


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return "(section)"
    return f"`{yamlish(default)}`"


def plugin_text(key: str) -> str:
    """What a plug-in field takes, from the registry: the names, or where the options of each are listed."""
    if key not in PLUGIN_FIELDS:
        return ""
    name, what = PLUGIN_FIELDS[key]
    found = registry(name)
    link = f"[{found.kind} plug-ins](#{anchor(REGISTRIES[name])})"
    if what == "options":
        return f"Options: those of the {found.kind} chosen ({link})."
    names = [n for n, c in found.items() if "unlisted" not in c.traits]
    return f"Choices: {', '.join(f'`{n}`' for n in names)} ({link})."


def anchor(heading: str) -> str:
    """The id MkDocs gives a heading (its default slug: code marks and punctuation dropped, words hyphenated)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _cell(text: str) -> str:
    """Text made safe for one cell of a Markdown table."""
    return " ".join(text.split()).replace("|", "\\|")


def fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo, type[BaseModel]]]:
    """(dotted key, field, the model that holds it) for every field of ``model``, its sections' and sub-models'
    fields after their own row, in declaration order. A mapping of models (``pairs.prior.adjacent``) gives its
    value's fields under ``KEY.<name>``."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        yield key, field, model
        inner = section_model(field.annotation)
        if inner is not None:
            yield from fields(inner, key + ".")
        values = mapping_model(field.annotation)
        if values is not None:
            yield from fields(values, key + ".<name>.")


def field_row(key: str, field: FieldInfo) -> str:
    kind = type_text(field.annotation)
    bounds = bounds_text(field)
    typed = f"{kind} ({bounds})" if bounds else kind
    description = (field.description or "").strip()
    if description and not description.endswith("."):
        description += "."
    meaning = " ".join(part for part in (description, plugin_text(key)) if part)
    return f"| `{key}` | {_cell(typed)} | {_cell(default_text(field))} | {_cell(meaning)} |"


def job_reference(job: type[BaseModel] | None = None) -> str:
    """The job-file reference in Markdown: one table per section of ``job`` (default: ``JobConfig``), then the
    plug-ins."""
    job = job or JobConfig
    out: list[str] = []
    top = [(k, f) for k, f, owner in fields(job) if owner is job and section_model(f.annotation) is None]
    out += ["## The job itself", "", *_table(top), ""]
    for name, field in job.model_fields.items():
        model = section_model(field.annotation)
        if model is None:
            continue
        out += [f"## `{name}`", ""]
        if model.__doc__:
            out += [" ".join(model.__doc__.split()), ""]
        rows = [(k, f) for k, f, _ in fields(model, name + ".")]
        out += [*_table(rows), ""]
    out += ["## Plug-ins", "", _PLUGINS_INTRO, ""]
    for name, heading in REGISTRIES.items():
        out += [f"### {heading}", "", *plugin_table(registry(name)), ""]
    return "\n".join(out)


_PLUGINS_INTRO = (
    "Every name a plug-in field takes, the class that implements it and the options it accepts with their "
    "defaults, as registered in `pipeline/config/choices.py`. An option shown as `null` is derived from the data "
    "when the plug-in is built; an option set by a field of the job is named with it."
)


def _table(rows: list[tuple[str, FieldInfo]]) -> list[str]:
    return ["| key | type | default | meaning |", "|---|---|---|---|", *(field_row(k, f) for k, f in rows)]


def plugin_table(found: Choices) -> list[str]:
    lines = ["| name | implemented by | options (default) |", "|---|---|---|"]
    for name, choice in found.items():
        options = []
        for option, default in choice.options.items():
            if option in choice.settings:
                options.append(f"`{option}` (set by `{found.section}.{option}`)")
            else:
                options.append(f"`{option}` (`{yamlish(default)}`)")
        options += [f"`{s}` (set by `{found.section}.{s}`)" for s in choice.settings if s not in choice.options]
        shown = "`factory`: named by a FAISS index-factory string" if "unlisted" in choice.traits else f"`{name}`"
        lines.append(f"| {shown} | `{choice.target}` | {_cell(', '.join(options) or 'none')} |")
    return lines
