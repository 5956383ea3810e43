-- Long-term care benefit cost per certified person by fiscal year and care level.
-- Joins: none (one source).
SELECT fiscal_year, care_level_code, count(DISTINCT care_insured_number) AS persons, sum(cost_yen) AS cost_yen,
       sum(benefit_yen) AS benefit_yen, sum(cost_yen) * 1.0 / count(DISTINCT care_insured_number) AS cost_per_person
FROM care.benefits
GROUP BY fiscal_year, care_level_code ORDER BY fiscal_year, care_level_code;
