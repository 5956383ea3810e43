-- New type 2 diabetes (E11) in FY2024 after three years without it, by sex and age band.
-- Joins: claims -> claims on research_id.
WITH first_e11 AS (
  SELECT m.research_id, min(m.sex) AS sex, min(m.birth_date) AS birth_date, min(d.fiscal_year) AS first_year
  FROM claims.claim_diagnoses d JOIN research.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
  WHERE d.icd10 LIKE 'E11%'
  GROUP BY m.research_id)
SELECT sex, floor((2024 - extract(year FROM birth_date)) / 10.0) * 10 AS band, count(*) AS new_cases
FROM first_e11 WHERE first_year = 2024
GROUP BY 1, 2 ORDER BY 1, 2;
