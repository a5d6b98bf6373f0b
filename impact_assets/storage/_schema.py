"""The ``impact`` schema: the DuckDB tables other tools read, created by versioned migrations.

Table names and key columns are a public interface (see the README's "DuckDB contract"). Every
change is a new migration appended to :data:`MIGRATIONS`; applied ones are never edited.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "SCHEMA", "Migration"]

SCHEMA = "impact"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_RESULT_KEYS = """
    run_id          VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    data_version    VARCHAR NOT NULL,"""

_COHORT_KEYS = """
    cohort_key      VARCHAR NOT NULL,
    cohort_start    DATE NOT NULL,
    cohort_end      DATE NOT NULL,
    matures_on      DATE NOT NULL,
    matured         BOOLEAN NOT NULL,
    basis           VARCHAR NOT NULL CHECK (basis IN ('realised', 'estimated')),
    outcomes_version VARCHAR NOT NULL,"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, group metrics, disparities and register snapshots",
        (
            f"""CREATE TABLE {SCHEMA}.runs (
    run_id          VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    data_version    VARCHAR NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    status          VARCHAR NOT NULL CHECK (status IN ('started', 'completed', 'failed')),
    PRIMARY KEY (run_id, assessment_id, partition_key)
)""",
            f"""CREATE TABLE {SCHEMA}.group_metrics ({_RESULT_KEYS}
    feature_set     VARCHAR NOT NULL,
    group_key       VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT NOT NULL,
    suppressed      BOOLEAN NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.disparities ({_RESULT_KEYS}
    feature_set     VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    method          VARCHAR NOT NULL CHECK (method IN ('difference', 'ratio')),
    relative_to     VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT NOT NULL,
    groups_compared INTEGER NOT NULL,
    groups_suppressed INTEGER NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.register_snapshots (
    snapshot_id     VARCHAR PRIMARY KEY,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    data_version    VARCHAR NOT NULL,
    taken_at        TIMESTAMPTZ NOT NULL,
    snapshot_version INTEGER NOT NULL,
    UNIQUE (assessment_id, partition_key, snapshot_version)
)""",
            f"""CREATE TABLE {SCHEMA}.register_entries (
    snapshot_id     VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    outcome         VARCHAR NOT NULL,
    stakeholder     VARCHAR NOT NULL,
    impact          VARCHAR NOT NULL,
    metric_ref      VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT,
    direction       VARCHAR NOT NULL,
    threshold_warn  DOUBLE,
    threshold_breach DOUBLE NOT NULL,
    status          VARCHAR NOT NULL CHECK (status IN ('pass', 'warn', 'breach', 'insufficient_data', 'suppressed')),
    reason          VARCHAR NOT NULL,
    owner           VARCHAR NOT NULL,
    action          VARCHAR NOT NULL,
    frameworks      VARCHAR[] NOT NULL,
    PRIMARY KEY (snapshot_id, entry_id)
)""",
        ),
    ),
    Migration(
        2,
        "how each result was computed (bins, exact AUC, bootstrap settings)",
        (
            f"ALTER TABLE {SCHEMA}.group_metrics ADD COLUMN detail VARCHAR",
            f"ALTER TABLE {SCHEMA}.disparities ADD COLUMN detail VARCHAR",
        ),
    ),
    Migration(
        3,
        "data-quality results",
        (
            f"""CREATE TABLE {SCHEMA}.quality_results (
    run_id          VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    table_name      VARCHAR NOT NULL,
    check_name      VARCHAR NOT NULL,
    expectation     VARCHAR NOT NULL,
    kwargs          VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL CHECK (severity IN ('warn', 'error')),
    blocking        BOOLEAN NOT NULL,
    success         BOOLEAN NOT NULL,
    observed_value  VARCHAR,
    element_count   BIGINT,
    unexpected_count BIGINT,
    unexpected_percent DOUBLE,
    evaluated_at    TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
    Migration(
        4,
        "the living register: current view, changes, governance actions, release decisions, impact level",
        (
            f"""CREATE TABLE {SCHEMA}.register_changes (
    snapshot_id     VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    previous_snapshot_id VARCHAR,
    previous_status VARCHAR,
    status          VARCHAR NOT NULL,
    previous_value  DOUBLE,
    value           DOUBLE,
    value_delta     DOUBLE,
    changed_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snapshot_id, entry_id)
)""",
            f"""CREATE TABLE {SCHEMA}.governance_actions (
    action_id       VARCHAR PRIMARY KEY,
    assessment_id   VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    owner           VARCHAR NOT NULL,
    action_type     VARCHAR NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    due_at          TIMESTAMPTZ,
    status          VARCHAR NOT NULL CHECK (status IN ('open', 'resolved')),
    resolved_at     TIMESTAMPTZ,
    opened_snapshot_id VARCHAR,
    resolved_snapshot_id VARCHAR,
    breach_count    INTEGER NOT NULL,
    last_breach_at  TIMESTAMPTZ,
    resolution_evidence VARCHAR,
    frameworks      VARCHAR[] NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.governance_action_events (
    action_id       VARCHAR NOT NULL,
    event           VARCHAR NOT NULL CHECK (event IN ('opened', 'breach_recorded', 'resolved', 'overdue', 'run_failed')),
    snapshot_id     VARCHAR,
    event_at        TIMESTAMPTZ NOT NULL,
    detail          VARCHAR NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.release_decisions (
    decision_id     VARCHAR PRIMARY KEY,
    assessment_id   VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    decision        VARCHAR NOT NULL CHECK (decision IN ('approve', 'hold', 'rollback')),
    decided_at      TIMESTAMPTZ NOT NULL,
    snapshot_id     VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    rollback_to     VARCHAR,
    reasons         VARCHAR[] NOT NULL
)""",
            f"ALTER TABLE {SCHEMA}.register_snapshots ADD COLUMN raw_impact_score INTEGER",
            f"ALTER TABLE {SCHEMA}.register_snapshots ADD COLUMN mitigation_score INTEGER",
            f"ALTER TABLE {SCHEMA}.register_snapshots ADD COLUMN impact_score DOUBLE",
            f"ALTER TABLE {SCHEMA}.register_snapshots ADD COLUMN impact_level VARCHAR",
            f"""CREATE VIEW {SCHEMA}.register_current AS
SELECT s.assessment_id, e.entry_id, s.partition_key, s.snapshot_id, s.snapshot_version, s.model_version, s.taken_at,
       e.value, e.ci_low, e.ci_high, e.n, e.status, e.reason, e.owner, e.action
FROM {SCHEMA}.register_entries e JOIN {SCHEMA}.register_snapshots s USING (snapshot_id)
QUALIFY row_number() OVER (PARTITION BY s.assessment_id, e.entry_id ORDER BY s.partition_key DESC, s.snapshot_version DESC) = 1""",
            f"""CREATE VIEW {SCHEMA}.governance_actions_current AS
SELECT *, status = 'open' AND due_at < now() AS overdue FROM {SCHEMA}.governance_actions""",
        ),
    ),
    Migration(
        5,
        "impact analytics: KPIs and cost-benefit, drift",
        (
            f"""CREATE TABLE {SCHEMA}.kpis ({_RESULT_KEYS}
    kpi             VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL CHECK (kind IN ('kpi', 'cost_benefit')),
    feature_set     VARCHAR NOT NULL,
    group_key       VARCHAR NOT NULL,
    value           DOUBLE,
    n               BIGINT NOT NULL,
    suppressed      BOOLEAN NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.drift ({_RESULT_KEYS}
    column_name     VARCHAR NOT NULL,
    role            VARCHAR NOT NULL CHECK (role IN ('feature', 'score', 'label', 'group')),
    kind            VARCHAR NOT NULL CHECK (kind IN ('numeric', 'categorical')),
    statistic       VARCHAR NOT NULL,
    value           DOUBLE,
    n               BIGINT NOT NULL,
    n_reference     BIGINT NOT NULL,
    reference       VARCHAR NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
    Migration(
        6,
        "impact analytics: scenarios",
        (
            f"""CREATE TABLE {SCHEMA}.scenarios ({_RESULT_KEYS}
    scenario        VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    variant         VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    feature_set     VARCHAR NOT NULL,
    group_key       VARCHAR NOT NULL,
    value           DOUBLE,
    baseline        DOUBLE,
    n               BIGINT NOT NULL,
    suppressed      BOOLEAN NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
    Migration(
        7,
        "impact analytics: sensitivity by permutation",
        (
            f"""CREATE TABLE {SCHEMA}.sensitivity ({_RESULT_KEYS}
    feature         VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL CHECK (metric IN ('disparity', 'accuracy')),
    disparity       VARCHAR NOT NULL,
    feature_set     VARCHAR NOT NULL,
    baseline        DOUBLE,
    mean_change     DOUBLE,
    abs_mean_change DOUBLE,
    std_change      DOUBLE,
    repeats         INTEGER NOT NULL,
    rank            INTEGER,
    n               BIGINT NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
    Migration(
        8,
        "impact analytics: causal estimates",
        (
            f"""CREATE TABLE {SCHEMA}.causal_estimates ({_RESULT_KEYS}
    name            VARCHAR NOT NULL,
    method          VARCHAR NOT NULL,
    value           DOUBLE,
    estimate        DOUBLE,
    std_error       DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    p_value         DOUBLE,
    pre_trend_slope DOUBLE,
    pre_trend_p     DOUBLE,
    pre_trend_ok    BOOLEAN,
    n               BIGINT NOT NULL,
    n_treated       BIGINT NOT NULL,
    n_comparison    BIGINT NOT NULL,
    days_pre        INTEGER NOT NULL,
    days_post       INTEGER NOT NULL,
    window_start    DATE NOT NULL,
    window_end      DATE NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
    Migration(
        9,
        "outcomes that arrive late: realised and estimated metrics of cohorts, label coverage, awaited register entries",
        (
            f"""CREATE TABLE {SCHEMA}.outcome_group_metrics ({_RESULT_KEYS}{_COHORT_KEYS}
    feature_set     VARCHAR NOT NULL,
    group_key       VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT NOT NULL,
    suppressed      BOOLEAN NOT NULL,
    reason          VARCHAR,
    detail          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.outcome_disparities ({_RESULT_KEYS}{_COHORT_KEYS}
    feature_set     VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    method          VARCHAR NOT NULL CHECK (method IN ('difference', 'ratio')),
    relative_to     VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT NOT NULL,
    groups_compared INTEGER NOT NULL,
    groups_suppressed INTEGER NOT NULL,
    reason          VARCHAR,
    detail          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.label_coverage ({_RESULT_KEYS}
    cohort_key      VARCHAR NOT NULL,
    cohort_start    DATE NOT NULL,
    cohort_end      DATE NOT NULL,
    matures_on      DATE NOT NULL,
    feature_set     VARCHAR NOT NULL,
    group_key       VARCHAR NOT NULL,
    decisions       BIGINT NOT NULL,
    observable      BIGINT NOT NULL,
    labelled        BIGINT NOT NULL,
    coverage        DOUBLE,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            # DuckDB cannot alter a CHECK constraint: the entries move to a table with the new one
            f"""CREATE TABLE {SCHEMA}.register_entries_v9 (
    snapshot_id     VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    outcome         VARCHAR NOT NULL,
    stakeholder     VARCHAR NOT NULL,
    impact          VARCHAR NOT NULL,
    metric_ref      VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT,
    direction       VARCHAR NOT NULL,
    threshold_warn  DOUBLE,
    threshold_breach DOUBLE NOT NULL,
    status          VARCHAR NOT NULL CHECK (status IN ('pass', 'warn', 'breach', 'insufficient_data', 'suppressed', 'awaiting_outcomes')),
    reason          VARCHAR NOT NULL,
    owner           VARCHAR NOT NULL,
    action          VARCHAR NOT NULL,
    frameworks      VARCHAR[] NOT NULL,
    basis           VARCHAR CHECK (basis IN ('decision_time', 'realised', 'estimated')),
    cohort_key      VARCHAR,
    matures_on      DATE,
    PRIMARY KEY (snapshot_id, entry_id)
)""",
            f"INSERT INTO {SCHEMA}.register_entries_v9 BY NAME SELECT * FROM {SCHEMA}.register_entries",
            f"DROP TABLE {SCHEMA}.register_entries",
            f"ALTER TABLE {SCHEMA}.register_entries_v9 RENAME TO register_entries",
            f"ALTER TABLE {SCHEMA}.register_snapshots ADD COLUMN reason VARCHAR",
        ),
    ),
    Migration(
        10,
        "people in the loop: action events by person, waivers and escalation, release sign-offs, notices",
        (
            # an action's row holds only the facts of its opening; what happened since is its events
            f"""CREATE TABLE {SCHEMA}.governance_actions_v10 (
    action_id       VARCHAR PRIMARY KEY,
    assessment_id   VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    owner           VARCHAR NOT NULL,
    action_type     VARCHAR NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    due_at          TIMESTAMPTZ,
    opened_snapshot_id VARCHAR,
    frameworks      VARCHAR[] NOT NULL,
    escalate_to     VARCHAR
)""",
            f"""INSERT INTO {SCHEMA}.governance_actions_v10 BY NAME
SELECT action_id, assessment_id, entry_id, owner, action_type, opened_at, due_at, opened_snapshot_id, frameworks
FROM {SCHEMA}.governance_actions""",
            f"CREATE SEQUENCE {SCHEMA}.action_event_seq",
            f"""CREATE TABLE {SCHEMA}.governance_action_events_v10 (
    event_seq       BIGINT PRIMARY KEY DEFAULT nextval('{SCHEMA}.action_event_seq'),
    action_id       VARCHAR NOT NULL,
    event           VARCHAR NOT NULL CHECK (event IN ('opened', 'breach_recorded', 'resolved', 'overdue', 'run_failed',
                        'acknowledged', 'assigned', 'waived', 'reopened', 'escalated', 'commented')),
    snapshot_id     VARCHAR,
    event_at        TIMESTAMPTZ NOT NULL,
    detail          VARCHAR NOT NULL,
    actor           VARCHAR NOT NULL,
    os_user         VARCHAR,
    rationale       VARCHAR,
    assignee        VARCHAR,
    approver        VARCHAR,
    expires_at      TIMESTAMPTZ,
    value           DOUBLE
)""",
            f"""INSERT INTO {SCHEMA}.governance_action_events_v10 (action_id, event, snapshot_id, event_at, detail, actor)
SELECT action_id, event, snapshot_id, event_at, detail, 'system' FROM {SCHEMA}.governance_action_events ORDER BY event_at""",
            f"DROP VIEW {SCHEMA}.governance_actions_current",
            f"DROP TABLE {SCHEMA}.governance_action_events",
            f"DROP TABLE {SCHEMA}.governance_actions",
            f"ALTER TABLE {SCHEMA}.governance_actions_v10 RENAME TO governance_actions",
            f"ALTER TABLE {SCHEMA}.governance_action_events_v10 RENAME TO governance_action_events",
            # the state of every action as its events left it (waivers not yet judged against the clock)
            f"""CREATE VIEW {SCHEMA}.governance_action_state AS
WITH e AS (
    SELECT action_id,
           arg_max(assignee, event_seq) FILTER (WHERE event = 'assigned') AS assignee,
           arg_max(event, event_seq) FILTER (WHERE event IN ('opened', 'acknowledged', 'waived', 'reopened', 'resolved')) AS last_state,
           arg_max(actor, event_seq) FILTER (WHERE event = 'acknowledged') AS acknowledged_by,
           max(event_at) FILTER (WHERE event = 'acknowledged') AS acknowledged_at,
           arg_max(actor, event_seq) FILTER (WHERE event = 'waived') AS waived_by,
           arg_max(approver, event_seq) FILTER (WHERE event = 'waived') AS waiver_approver,
           arg_max(rationale, event_seq) FILTER (WHERE event = 'waived') AS waiver_rationale,
           arg_max(expires_at, event_seq) FILTER (WHERE event = 'waived') AS waiver_expires_at,
           arg_max(value, event_seq) FILTER (WHERE event = 'waived') AS waived_value,
           max(event_at) FILTER (WHERE event = 'resolved') AS resolved_at,
           arg_max(actor, event_seq) FILTER (WHERE event = 'resolved') AS resolved_by,
           arg_max(snapshot_id, event_seq) FILTER (WHERE event = 'resolved') AS resolved_snapshot_id,
           arg_max(coalesce(rationale, detail), event_seq) FILTER (WHERE event = 'resolved') AS resolution_evidence,
           count(*) FILTER (WHERE event IN ('opened', 'breach_recorded', 'run_failed')) AS breach_count,
           max(event_at) FILTER (WHERE event IN ('opened', 'breach_recorded', 'run_failed')) AS last_breach_at,
           arg_max(value, event_seq) FILTER (WHERE event IN ('opened', 'breach_recorded')) AS last_breach_value,
           arg_max(assignee, event_seq) FILTER (WHERE event = 'escalated') AS escalated_to,
           max(event_at) FILTER (WHERE event = 'escalated') AS escalated_at,
           count(*) FILTER (WHERE event = 'overdue') > 0 AS flagged_overdue,
           count(*) FILTER (WHERE event = 'commented') AS comments,
           max(event_at) AS last_event_at
    FROM {SCHEMA}.governance_action_events GROUP BY action_id
)
SELECT a.action_id, a.assessment_id, a.entry_id, a.action_type, a.opened_at, a.due_at, a.opened_snapshot_id,
       a.frameworks, a.escalate_to, a.owner AS opened_for, coalesce(e.assignee, a.owner) AS owner,
       coalesce(e.last_state, 'opened') AS last_state, e.* EXCLUDE (action_id, assignee, last_state)
FROM {SCHEMA}.governance_actions a LEFT JOIN e USING (action_id)""",
            f"""CREATE VIEW {SCHEMA}.governance_actions_current AS
SELECT * EXCLUDE (last_state, flagged_overdue),
       CASE WHEN last_state = 'resolved' THEN 'resolved'
            WHEN last_state = 'waived' AND waiver_expires_at <= now() THEN 'open'
            WHEN last_state IN ('acknowledged', 'waived') THEN last_state
            ELSE 'open' END AS status,
       status IN ('open', 'acknowledged') AND due_at < now() AS overdue
FROM {SCHEMA}.governance_action_state""",
            f"ALTER TABLE {SCHEMA}.release_decisions ADD COLUMN sign_offs_required INTEGER DEFAULT 0",
            f"ALTER TABLE {SCHEMA}.release_decisions ADD COLUMN proposed_by VARCHAR",
            f"ALTER TABLE {SCHEMA}.release_decisions ADD COLUMN open_actions VARCHAR[]",
            f"""CREATE TABLE {SCHEMA}.release_sign_offs (
    sign_off_id     VARCHAR PRIMARY KEY,
    decision_id     VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    signer          VARCHAR NOT NULL,
    role            VARCHAR,
    os_user         VARCHAR,
    signed_at       TIMESTAMPTZ NOT NULL,
    rationale       VARCHAR NOT NULL,
    via             VARCHAR NOT NULL,
    UNIQUE (assessment_id, model_version, decision_id, signer)
)""",
            # per model version: its newest recommendation and the sign-offs since its last hold
            f"""CREATE VIEW {SCHEMA}.release_state AS
WITH latest AS (
    SELECT * FROM {SCHEMA}.release_decisions
    QUALIFY row_number() OVER (PARTITION BY assessment_id, model_version ORDER BY decided_at DESC) = 1
), blocked AS (
    SELECT assessment_id, model_version, max(decided_at) FILTER (WHERE decision <> 'approve') AS blocked_at,
           bool_or(decision = 'rollback') AS rolled_back, min(decided_at) AS first_decided_at
    FROM {SCHEMA}.release_decisions GROUP BY ALL
), signed AS (
    SELECT s.assessment_id, s.model_version, count(DISTINCT s.signer) AS signatures,
           list(s.signer ORDER BY s.signed_at) AS signers, max(s.signed_at) AS last_signed_at
    FROM {SCHEMA}.release_sign_offs s JOIN blocked b USING (assessment_id, model_version)
    WHERE b.blocked_at IS NULL OR s.signed_at > b.blocked_at
    GROUP BY ALL
)
SELECT l.assessment_id, l.model_version, l.decision AS recommendation, l.decision_id, l.decided_at, l.partition_key,
       l.reasons, l.rollback_to, l.proposed_by, l.open_actions, coalesce(l.sign_offs_required, 0) AS sign_offs_required,
       coalesce(s.signatures, 0) AS signatures, coalesce(s.signers, []) AS signers, s.last_signed_at,
       CASE WHEN b.rolled_back THEN 'rolled_back'
            WHEN l.decision = 'hold' THEN 'held'
            WHEN coalesce(s.signatures, 0) >= coalesce(l.sign_offs_required, 0) THEN 'approved'
            ELSE 'awaiting_sign_off' END AS state,
       CASE WHEN b.rolled_back OR l.decision = 'hold' THEN b.blocked_at
            WHEN coalesce(s.signatures, 0) >= coalesce(l.sign_offs_required, 0)
                THEN coalesce(s.last_signed_at, least(l.decided_at, coalesce(b.blocked_at, b.first_decided_at)))
            ELSE l.decided_at END AS state_since
FROM latest l JOIN blocked b USING (assessment_id, model_version)
LEFT JOIN signed s USING (assessment_id, model_version)""",
            f"""CREATE TABLE {SCHEMA}.notices (
    notice_id       VARCHAR PRIMARY KEY,
    assessment_id   VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL CHECK (kind IN ('breach', 'action_opened', 'escalation', 'waiver_reopened',
                        'sign_off_requested', 'rollback', 'run_failed')),
    subject         VARCHAR NOT NULL,
    body            VARCHAR NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    partition_key   VARCHAR,
    entry_id        VARCHAR,
    action_id       VARCHAR,
    model_version   VARCHAR
)""",
            f"""CREATE TABLE {SCHEMA}.notice_deliveries (
    notice_id       VARCHAR NOT NULL,
    channel         VARCHAR NOT NULL,
    attempted_at    TIMESTAMPTZ NOT NULL,
    outcome         VARCHAR NOT NULL CHECK (outcome IN ('delivered', 'rejected', 'failed')),
    detail          VARCHAR
)""",
        ),
    ),
)
