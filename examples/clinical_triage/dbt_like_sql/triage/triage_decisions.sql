-- One row per emergency attendance: the vendor's score and fast-track decision, the recorded
-- outcome, and the patient attributes the assessment compares.
SELECT
    attendance_id,
    CAST(arrival_date AS DATE) AS arrival_date,
    lower(sex) AS sex,
    ethnicity,
    CASE
        WHEN age_years < 18 THEN '<18'
        WHEN age_years < 40 THEN '18-39'
        WHEN age_years < 65 THEN '40-64'
        ELSE '65+'
    END AS age_band,
    CAST(imd_quintile AS VARCHAR) AS deprivation,
    CASE WHEN interpreter_needed THEN 'yes' ELSE 'no' END AS interpreter,
    CAST(vendor_score AS DOUBLE) AS urgency_score,
    CAST(vendor_score >= 0.35 AS INTEGER) AS fast_tracked,
    CAST(urgent_care_needed AS INTEGER) AS needed_urgent_care
FROM triage_extract
