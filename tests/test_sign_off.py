"""Release sign-off under the demo's four-eyes policy: the register recommends, approvers decide, and
a rollback stays automatic — on a real DuckDB file and the demo's real model registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from impact_assets import discover_assessments
from impact_assets.cli import main, train_version
from impact_assets.errors import OversightError
from impact_assets.oversight import release_state
from impact_assets.pipeline import decide_release, sign_off_release
from impact_assets.register import EntryResult, write_snapshot
from impact_assets.storage import connect, migrate

from .conftest import DEMO_SPEC, alone, spec_variant

PROPOSER = "Priya Raman"  # an approver by name, so four eyes must refuse her own version


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    """The demo assessment with two trained versions (both proposed by an approver)."""
    paths = alone(DEMO_SPEC, tmp_path_factory.mktemp("sign-off"))
    (assessment,) = discover_assessments(paths)
    train_version(assessment, proposed_by=PROPOSER)
    train_version(assessment, seed_offset=1, proposed_by=PROPOSER)
    return paths


@pytest.fixture
def assessment(project, tmp_path: Path):
    """A fresh results database and registry state per test, over the module's trained versions."""
    import shutil

    state = tmp_path / "state"
    shutil.copytree(project.state_dir / "models", state / "models")
    paths = alone(yaml.safe_load(DEMO_SPEC.read_text()), state)
    (found,) = discover_assessments(paths)
    with connect(paths.database) as conn:
        migrate(conn)
    return found


def _assess(assessment, day: str, version: str, failing: dict[str, str] | None = None) -> None:
    failing = failing or {}
    results = [
        EntryResult(e.id, "{}", 0.5, None, None, 100, failing.get(e.id, "pass"), "test")
        for e in assessment.spec.register_entries
    ]
    with connect(assessment.paths.database) as conn:
        write_snapshot(
            conn,
            assessment_id=assessment.id,
            partition_key=day,
            run_id=f"run-{day}-{version}",
            model_version=version,
            data_version="d",
            entries=assessment.spec.register_entries,
            results=results,
            governance=assessment.spec.governance,
        )
        decide_release(conn, assessment, day)


def _sign(assessment, version: str, signer: str, rationale: str = "checked the register"):
    with connect(assessment.paths.database) as conn:
        return sign_off_release(conn, assessment, version, signer=signer, rationale=rationale)


def _state(assessment, version: str):
    with connect(assessment.paths.database) as conn:
        (state,) = release_state(conn, assessment.id, version)
        notices = [
            k
            for (k,) in conn.execute(
                "SELECT kind FROM impact.notices ORDER BY created_at"
            ).fetchall()
        ]
    return state, notices


def test_an_approval_waits_for_two_approvers_and_then_promotes(assessment):
    _assess(assessment, "2026-03-01", "1")
    state, notices = _state(assessment, "1")
    assert (state.recommendation, state.state, state.sign_offs_required) == (
        "approve",
        "awaiting_sign_off",
        2,
    )
    assert notices == ["sign_off_requested"]
    _assess(assessment, "2026-03-02", "1")  # the next night: still waiting, asked once only
    assert _state(assessment, "1")[1] == ["sign_off_requested"]
    assert assessment.registry.approved() is None

    with pytest.raises(
        OversightError, match=r"Mallory is not an approver .*Dana Okafor, Priya Raman, Tomás Ibarra"
    ):
        _sign(assessment, "1", "Mallory")
    with pytest.raises(
        OversightError, match="Priya Raman proposed model version 1 and may not sign it off"
    ):
        _sign(assessment, "1", PROPOSER)
    first = _sign(assessment, "1", "Dana Okafor")
    assert (first.state, first.signatures) == ("awaiting_sign_off", 1)
    with pytest.raises(OversightError, match="already signed"):
        _sign(assessment, "1", "Dana Okafor")
    with pytest.raises(OversightError, match="rationale is required"):
        _sign(assessment, "1", "Tomás Ibarra", rationale=" ")
    second = _sign(assessment, "1", "Tomás Ibarra")
    assert (second.state, second.signers) == ("approved", ["Dana Okafor", "Tomás Ibarra"])
    assert assessment.registry.approved() == "1"
    assert assessment.registry.status("1")["status"] == "approved"
    with pytest.raises(OversightError, match="already approved"):
        _sign(assessment, "1", PROPOSER)
    # later nights keep the approval: sign-offs hold until the register holds the version
    _assess(assessment, "2026-03-03", "1")
    assert _state(assessment, "1")[0].state == "approved"


def test_a_rollback_is_automatic_and_the_rolled_back_version_cannot_be_signed(assessment):
    _assess(assessment, "2026-03-01", "1")
    _sign(assessment, "1", "Dana Okafor")
    _sign(assessment, "1", "Tomás Ibarra")
    _assess(assessment, "2026-03-02", "2", {"approval_parity_sex": "breach"})
    state, notices = _state(assessment, "2")
    assert (state.recommendation, state.state) == ("rollback", "rolled_back")
    assert any("rolled back automatically" in r for r in state.reasons)
    assert "rollback" in notices and "action_opened" in notices
    assert assessment.registry.status("2")["status"] == "rolled_back"
    assert assessment.registry.approved() == "1"
    with connect(assessment.paths.database) as conn:  # the rollback did what the action asked
        assert conn.execute(
            "SELECT entry_id, status FROM impact.governance_actions_current"
        ).fetchall() == [("approval_parity_sex", "resolved")]
    with pytest.raises(OversightError, match="model version 2 was rolled back"):
        _sign(assessment, "2", "Dana Okafor")


def test_a_held_version_cannot_be_signed_and_needs_new_sign_offs_after_the_hold(assessment):
    _assess(assessment, "2026-03-01", "1")
    _sign(assessment, "1", "Dana Okafor")
    _assess(assessment, "2026-03-02", "1", {"score_discrimination": "breach"})  # block_release
    assert _state(assessment, "1")[0].state == "held"
    with pytest.raises(OversightError, match="is held by the register"):
        _sign(assessment, "1", "Tomás Ibarra")
    _assess(assessment, "2026-03-03", "1")
    state = _state(assessment, "1")[0]
    assert (state.state, state.signatures) == ("awaiting_sign_off", 0)  # the hold voided Dana's


def test_an_approval_names_the_open_actions_it_leaves(assessment):
    _assess(assessment, "2026-03-01", "1", {"lender_net_benefit": "breach"})
    reasons = _state(assessment, "1")[0].reasons
    assert "approved with these entries not passing: lender_net_benefit (breach, review)" in reasons
    (reason,) = [r for r in reasons if "open governance actions" in r]
    assert reason == "approved with 1 open governance actions: lender_net_benefit (open)"


def test_the_cli_signs_off_and_refuses_with_a_clear_message(assessment):
    _assess(assessment, "2026-03-01", "1")
    runner = CliRunner()
    base = [
        "--project-dir",
        str(assessment.paths.project_dir),
        "release",
        "sign-off",
        "--assessment",
        assessment.id,
        "--model-version",
        "1",
        "--rationale",
        "register and report reviewed",
    ]
    env = {
        "IMPACT_ASSETS_HOME": str(assessment.paths.state_dir),
        "IMPACT_ASSETS_ASSESSMENTS_DIR": str(assessment.paths.assessments_dir),
    }
    refused = runner.invoke(main, [*base, "--by", "Mallory"], env=env)
    assert refused.exit_code == 1 and "Mallory is not an approver" in refused.output
    ok = runner.invoke(main, [*base, "--by", "Dana Okafor"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "awaiting_sign_off (1 of 2 sign-offs)" in ok.output
    status = runner.invoke(
        main,
        [
            "--project-dir",
            str(assessment.paths.project_dir),
            "release",
            "status",
            "--assessment",
            assessment.id,
        ],
        env=env,
    )
    assert "version 1: awaiting_sign_off" in status.output and "(Dana Okafor)" in status.output


def test_policy_and_channel_settings_are_checked_when_the_spec_loads():
    from pydantic import ValidationError

    from impact_assets.spec import NotificationsSpec, SignOffPolicy

    with pytest.raises(
        ValidationError, match="3 sign-offs are required but only 2 people may sign"
    ):
        SignOffPolicy.model_validate({"approvers": ["a", "b"], "required": 3})
    with pytest.raises(ValidationError, match="not an http\\(s\\) URL with a host"):
        NotificationsSpec.model_validate(
            {"channels": [{"kind": "webhook", "url": "hooks.example.org/x"}]}
        )
    with pytest.raises(ValidationError, match="malformed port"):
        NotificationsSpec.model_validate(
            {"channels": [{"kind": "webhook", "url": "https://hooks.example.org:99999/x"}]}
        )
    with pytest.raises(ValidationError, match="is not a host name"):
        NotificationsSpec.model_validate(
            {"channels": [{"kind": "smtp", "host": "smtp://mail", "sender": "a@b", "to": ["c@d"]}]}
        )


def test_a_malformed_channel_in_a_spec_names_file_line_and_field(tmp_path):
    from impact_assets import SpecError
    from impact_assets.spec import load_spec

    channel = {"kind": "webhook", "name": "teams", "url": "hooks.example.org/impact"}
    path = spec_variant(tmp_path, lambda d: d.update(notifications={"channels": [channel]}))
    with pytest.raises(SpecError, match="not an http\\(s\\) URL with a host") as info:
        load_spec(path)
    assert info.value.context["file"] == str(path)
    assert info.value.context["field"] == "notifications.channels.0.url"
    line = path.read_text().splitlines()[info.value.context["line"] - 1]
    assert line.strip() == "url: hooks.example.org/impact"
