-- Long-term care benefit cost per certified person by fiscal year and care level.
-- Joins: none (one source; persons counted by research_id).
SELECT fiscal_year, care_level_code, count(DISTINCT research_id) AS persons, sum(cost_yen) AS cost_yen,
       sum(benefit_yen) AS benefit_yen, sum(cost_yen) * 1.0 / count(DISTINCT research_id) AS cost_per_person
FROM research.care_benefits
GROUP BY fiscal_year, care_level_code ORDER BY fiscal_year, care_level_code;
