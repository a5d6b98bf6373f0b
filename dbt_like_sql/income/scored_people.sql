-- The scored rows of the income screening: each person's offer decision and score from the model,
-- the verified outcome, and the sensitive attributes.
SELECT
    p.application_id,
    p.application_date,
    p.sex,
    p.race,
    p.age_band,
    p.hours_per_week,
    p.high_income,
    s.score,
    s.decision AS offered,
    s.model_version
FROM stg_people AS p
JOIN predictions AS s
    ON s.application_id = p.application_id
    AND s.application_date = p.application_date
