-- Number of chronic conditions per patient in FY2024 (hypertension, diabetes, dyslipidaemia, CKD, heart failure, dementia, osteoporosis, COPD), by age band.
-- Joins: claims -> claims on research_id.
WITH conditions AS (
  SELECT m.research_id, min(m.birth_date) AS birth_date, count(DISTINCT substr(d.icd10, 1, 3)) AS n
  FROM claims.claim_diagnoses d JOIN research.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
  WHERE d.fiscal_year = 2024 AND substr(d.icd10, 1, 3) IN ('I10', 'E11', 'E78', 'N18', 'I50', 'F03', 'M81', 'J44')
  GROUP BY m.research_id)
SELECT floor((2024 - extract(year FROM birth_date)) / 10.0) * 10 AS band, n AS conditions, count(*) AS patients
FROM conditions GROUP BY 1, 2 ORDER BY 1, 2;
