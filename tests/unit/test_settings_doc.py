"""The settings reference (docs/settings.md) is generated from the Settings declarations:
every knob documented once, with its type, default and constraint."""

from sidecar import settings_doc
from sidecar.settings import GROUPS, Settings, variable


def test_the_settings_reference_is_generated_from_the_declarations() -> None:
    assert settings_doc.DOC.read_text(encoding="utf-8") == settings_doc.render(), (
        "docs/settings.md is stale: run python -m sidecar.settings_doc"
    )


def test_every_setting_is_in_one_group_and_documented() -> None:
    grouped = [name for group in GROUPS for name in group.model_fields]
    assert sorted(grouped) == sorted(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        assert field.description, variable(name)
        assert f"`{variable(name)}`" in settings_doc.render()

