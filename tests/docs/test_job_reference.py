"""The job-file reference is generated from the typed configuration: every field is on it with its type, default
and description, and a field or plug-in added to the code appears on the site's page without editing Markdown."""

from __future__ import annotations

from pydantic import BaseModel, Field, create_model

from pipeline.config import JobConfig, TrainConfig, choices
from pipeline.config import reference as ref
from pipeline.config.choices import Choice, Choices
from tests.docs.blocks import DOCS, hooks


def _row(text: str, key: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(rows) == 1, f"{key}: {len(rows)} rows in the reference"
    return rows[0]


def test_every_field_of_a_job_is_a_row_with_its_default():
    text = ref.job_reference()
    for key, default in JobConfig().flat().items():
        assert f"| `{ref.yamlish(default)}` |" in _row(text, key), key


def test_every_field_has_a_description_for_the_reference():
    """A section says what it is in its model's docstring, any other field in ``Field(description=...)``."""
    missing = []
    for key, field, owner in ref.fields(JobConfig):
        section = ref.section_model(field.annotation) if owner is JobConfig else None
        said = section.__doc__ if section is not None else field.description
        if not (said or "").strip():
            missing.append(key)
    assert not missing, f"fields the reference cannot describe: {missing}"


def test_rows_say_the_type_the_bounds_and_the_choices():
    text = ref.job_reference()
    assert _row(text, "pairs.k").startswith("| `pairs.k` | integer (≥ 1) | `5` | neighbours per sample")
    assert "| `union` or `mutual` | `union` |" in _row(text, "pairs.symmetrize")
    assert "| integer or null (> 0) | `3000` |" in _row(text, "data.train_per_digit")
    assert "Choices: `contrastive`, `neg`, `infonce`" in _row(text, "train.loss")
    assert "`factory`" not in _row(text, "pairs.index")  # named by a factory string, never by "factory"
    assert "| `infonce` | `encoders.losses.infonce:InfoNCELoss` | `exaggeration` (`1.0`), `dof` (`1.0`) |" in text
    assert "| `encoders.losses.contrastive:ContrastiveLoss` | `margin` (set by `train.margin`) |" in text
    step = "pairs.prior.adjacent.<name>.step"
    assert _row(text, step).startswith(f"| `{step}` | number (> 0) |")


def test_every_registry_of_plug_ins_is_on_the_page_and_named_by_a_field():
    registries = {name for name, value in vars(choices).items() if isinstance(value, Choices)}
    assert registries == set(ref.REGISTRIES)
    assert registries == {name for name, _ in ref.PLUGIN_FIELDS.values()}
    keys = {key for key, _, _ in ref.fields(JobConfig)}
    assert set(ref.PLUGIN_FIELDS) <= keys


def _job_with(section: str, base: type[BaseModel], **new_fields) -> type[BaseModel]:
    extended = create_model(base.__name__, __base__=base, __doc__=base.__doc__, **new_fields)
    return create_model("JobConfig", __base__=JobConfig, **{section: (extended, Field(default_factory=extended))})


def test_a_new_field_appears_on_the_site_without_editing_markdown(monkeypatch):
    field = (int, Field(100, ge=0, description="optimizer steps of linear warm-up of the learning rate"))
    job = _job_with("train", TrainConfig, warmup_steps=field)
    row = "| `train.warmup_steps` | integer (≥ 0) | `100` | optimizer steps of linear warm-up of the learning rate. |"
    assert row in ref.job_reference(job)

    page = (DOCS / "reference" / "job-file.md").read_text()
    assert "warmup" not in page and "warmup" not in hooks().expand(page, "reference/job-file.md")
    monkeypatch.setattr(ref, "JobConfig", job)  # what the code would be with the field added
    assert row in hooks().expand(page, "reference/job-file.md")


def test_a_new_plug_in_appears_on_the_site_without_editing_markdown(monkeypatch):
    losses = Choices(
        "loss",
        *choices.LOSSES.values(),
        Choice("hinge", "encoders.losses.hinge:HingeLoss", {"slope": 2.0}),
        section="train",
    )
    monkeypatch.setattr(choices, "LOSSES", losses)
    page = hooks().expand((DOCS / "reference" / "job-file.md").read_text(), "reference/job-file.md")
    assert "| `hinge` | `encoders.losses.hinge:HingeLoss` | `slope` (`2.0`) |" in page
    assert "`infonce`, `hinge`" in _row(page, "train.loss")
