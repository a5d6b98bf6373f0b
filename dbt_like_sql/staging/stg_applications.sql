-- One row per loan application, typed and cleaned, with the sensitive attributes the
-- assessment compares (sex, age band, foreign worker) derived from the raw answers.
SELECT
    application_id,
    CAST(application_date AS DATE) AS application_date,
    status_of_existing_checking_account AS checking_status,
    CAST(duration_in_month AS INTEGER) AS duration_months,
    credit_history,
    purpose,
    CAST(credit_amount AS DOUBLE) AS credit_amount,
    savings_account_and_bonds AS savings,
    present_employment_since AS employment_since,
    CAST(installment_rate_in_percentage_of_disposable_income AS INTEGER) AS installment_rate,
    other_debtors_or_guarantors AS other_debtors,
    property,
    CAST(age_in_years AS INTEGER) AS age,
    other_installment_plans,
    housing,
    CAST(number_of_existing_credits_at_this_bank AS INTEGER) AS existing_credits,
    job,
    CAST(number_of_people_being_liable_to_provide_maintenance_for AS INTEGER) AS dependants,
    CASE WHEN starts_with(personal_status_and_sex, 'female') THEN 'female' ELSE 'male' END AS sex,
    CASE
        WHEN age_in_years < 25 THEN '<25'
        WHEN age_in_years < 40 THEN '25-39'
        WHEN age_in_years < 60 THEN '40-59'
        ELSE '60+'
    END AS age_band,
    foreign_worker,
    CAST(offer_version AS INTEGER) AS offer_version,
    CASE creditability WHEN 'good' THEN 1 WHEN 'bad' THEN 0 END AS repaid  -- NULL until the outcome is known
FROM raw_applications
