-- One row per person screened for the card offer, typed, with the sensitive attributes the
-- assessment compares (sex, race, age band) and the verified outcome (income over 50K a year).
SELECT
    application_id,
    CAST(application_date AS DATE) AS application_date,
    CAST(age AS INTEGER) AS age,
    workclass,
    education,
    CAST(education_num AS INTEGER) AS education_years,
    marital_status,
    occupation,
    CAST(capital_gain AS DOUBLE) AS capital_gain,
    CAST(capital_loss AS DOUBLE) AS capital_loss,
    CAST(hours_per_week AS INTEGER) AS hours_per_week,
    lower(sex) AS sex,
    race,
    CASE
        WHEN age < 25 THEN '<25'
        WHEN age < 40 THEN '25-39'
        WHEN age < 60 THEN '40-59'
        ELSE '60+'
    END AS age_band,
    CASE WHEN income = '>50K' THEN 1 ELSE 0 END AS high_income
FROM raw_people
