"""Loading assessment specs: the demo loads; each kind of mistake is reported with file, line, field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from impact_assets import SpecError, SqlModelError, load_assessment
from impact_assets.spec import load_spec

from .conftest import DEMO_SPEC as DEMO
from .conftest import REPO, same_day_outcomes, spec_variant


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_demo_spec_loads_with_its_register():
    spec, _ = load_spec(DEMO)
    assert spec.id == "credit_scoring"
    assert [e.id for e in spec.register_entries][:2] == [
        "approval_parity_sex",
        "approval_parity_age",
    ]
    assert list(spec.bindings.feature_sets) == [
        "sex",
        "age_band",
        "foreign_worker",
        "sex×age_band",
        "overall",
    ]


def test_invalid_yaml_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\ntitle: [unclosed\nowners: []\n")
    with pytest.raises(SpecError, match="not valid YAML") as info:
        load_spec(path)
    assert info.value.context["file"] == str(path)
    assert info.value.context["line"] == 3


def test_unknown_key_is_rejected_with_a_suggestion(tmp_path: Path):
    path = spec_variant(tmp_path, lambda d: d["bindings"].update(min_grup_size=10))
    with pytest.raises(
        SpecError, match=r"unknown key 'min_grup_size' \(did you mean 'min_group_size'"
    ) as info:
        load_spec(path)
    assert info.value.context["field"] == "bindings.min_grup_size"
    assert info.value.context["line"] == _line_of(path, "min_grup_size")


def test_wrong_type_names_the_field(tmp_path: Path):
    path = spec_variant(tmp_path, lambda d: d["bindings"].update(min_group_size="many"))
    with pytest.raises(SpecError, match="valid integer") as info:
        load_spec(path)
    assert info.value.context["field"] == "bindings.min_group_size"
    assert info.value.context["line"] == _line_of(path, "min_group_size")


def test_register_entry_with_unknown_metric_lists_valid_ones(tmp_path: Path):
    path = spec_variant(
        tmp_path, lambda d: d["register"][0]["measure"].update(metric="approval_rate")
    )
    with pytest.raises(SpecError, match="'demographic_parity'") as info:
        load_spec(path)
    assert info.value.context["field"] == "register.0.measure.metric"


def test_register_entry_with_unknown_feature_set_lists_valid_ones(tmp_path: Path):
    path = spec_variant(
        tmp_path, lambda d: d["register"][1]["measure"].update(feature_set="income")
    )
    with pytest.raises(
        SpecError, match=re.escape("feature_set 'income' is unknown (valid: ['sex', 'age_band'")
    ) as info:
        load_spec(path)
    assert info.value.context["field"] == "register.1.measure.feature_set"
    assert info.value.context["line"] == _line_of(path, "feature_set: income")


def test_group_must_be_a_declared_value(tmp_path: Path):
    path = spec_variant(tmp_path, lambda d: d["register"][3]["measure"].update(group="<18"))
    with pytest.raises(SpecError, match=re.escape("'<18' is not a declared value of 'age_band'")):
        load_spec(path)


def test_thresholds_in_the_wrong_order(tmp_path: Path):
    path = spec_variant(
        tmp_path, lambda d: d["register"][0]["thresholds"].update(warn=0.7, breach=0.8)
    )
    with pytest.raises(SpecError, match=r"warn \(0.7\) must be >= breach \(0.8\)") as info:
        load_spec(path)
    assert info.value.context["field"] == "register.0.thresholds"


def test_unknown_stakeholder(tmp_path: Path):
    path = spec_variant(tmp_path, lambda d: d["register"][0].update(stakeholder="shareholders"))
    with pytest.raises(SpecError, match="stakeholder 'shareholders' is not declared"):
        load_spec(path)


def test_duplicate_key_is_an_error(tmp_path: Path):
    path = tmp_path / "dup.yaml"
    text = DEMO.read_text().replace("title: ", "id: again\ntitle: ", 1)
    path.write_text(text)
    with pytest.raises(SpecError, match="key 'id' appears twice") as info:
        load_spec(path)
    assert info.value.context["line"] == _line_of(path, "id: again")


def test_intersection_of_undeclared_feature(tmp_path: Path):
    path = spec_variant(tmp_path, lambda d: d["bindings"].update(intersections=[["sex", "income"]]))
    with pytest.raises(SpecError, match="names \\['income'\\], which are not sensitive_features"):
        load_spec(path)


def test_reserved_assessment_id(tmp_path: Path):
    path = spec_variant(tmp_path, lambda d: d.update(id="impact"))
    with pytest.raises(SpecError, match="'impact' is reserved"):
        load_spec(path)


def test_unknown_column_in_binding_is_found_from_the_sql(tmp_path: Path):
    from impact_assets import ProjectPaths

    paths = ProjectPaths.for_project(REPO, state_dir=tmp_path)
    path = spec_variant(
        tmp_path, lambda d: same_day_outcomes(d)["bindings"].update(label="defaulted")
    )
    with pytest.raises(
        SpecError,
        match="column 'defaulted' is not produced by SQL model 'scored_applications' \\(columns: \\['application_id'",
    ) as info:
        load_assessment(path, paths)
    assert info.value.context["field"] == "bindings.label"
    assert info.value.context["line"] == _line_of(path, "label: defaulted")


def test_scored_table_must_be_a_sql_model(tmp_path: Path):
    from impact_assets import ProjectPaths

    paths = ProjectPaths.for_project(REPO, state_dir=tmp_path)
    path = spec_variant(tmp_path, lambda d: d["bindings"].update(scored_table="scores"))
    with pytest.raises(SpecError, match="scored_table 'scores' is not a SQL model"):
        load_assessment(path, paths)


def test_sql_model_reading_an_unknown_table_names_the_file(tmp_path: Path):
    from impact_assets import ProjectPaths

    sql = tmp_path / "sql"
    shutil_copy = REPO / "dbt_like_sql"
    import shutil

    shutil.copytree(shutil_copy, sql)
    (sql / "marts" / "extra.sql").write_text("SELECT * FROM applications_v2\n")
    paths = ProjectPaths(
        project_dir=REPO, assessments_dir=REPO / "assessments", sql_dir=sql, state_dir=tmp_path
    )
    with pytest.raises(SqlModelError, match="reads table 'applications_v2'") as info:
        load_assessment(DEMO, paths)
    assert info.value.context["model"].endswith("extra.sql")
