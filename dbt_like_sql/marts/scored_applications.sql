-- The scored rows the assessment is computed on: each application's decision and score from the
-- model, its observed outcome, and its sensitive attributes.
SELECT
    a.application_id,
    a.application_date,
    a.sex,
    a.age_band,
    a.foreign_worker,
    a.purpose,
    a.offer_version,
    a.credit_amount,
    a.duration_months,
    a.repaid,
    p.score,
    p.decision AS approved,
    p.model_version
FROM stg_applications AS a
JOIN predictions AS p
    ON p.application_id = a.application_id
    AND p.application_date = a.application_date
