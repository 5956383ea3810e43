-- FY2024 checkup participants with HbA1c >= 6.5 and no diabetes claim (E10-E14) from a month before to six months after the checkup, by sex and age band.
-- Joins: checkup -> claims on research_id.
WITH high AS (
  SELECT research_id, checkup_date, sex, floor(age / 10.0) * 10 AS band
  FROM research.checkups WHERE fiscal_year = 2024 AND hba1c >= 6.5),
dm AS (
  SELECT DISTINCT m.research_id, m.service_month
  FROM claims.claim_diagnoses d JOIN research.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
  WHERE d.fiscal_year >= 2024 AND d.icd10 >= 'E10' AND d.icd10 < 'E15'),
treated AS (
  SELECT DISTINCT high.research_id, high.checkup_date
  FROM high JOIN dm ON dm.research_id = high.research_id
  WHERE dm.service_month >= high.checkup_date - INTERVAL '1 month'
    AND dm.service_month <= high.checkup_date + INTERVAL '6 months')
SELECT high.sex, high.band, count(*) AS high_hba1c,
       sum(CASE WHEN treated.research_id IS NULL THEN 1 ELSE 0 END) AS no_claim
FROM high LEFT JOIN treated ON treated.research_id = high.research_id AND treated.checkup_date = high.checkup_date
GROUP BY high.sex, high.band ORDER BY high.sex, high.band;
