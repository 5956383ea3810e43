-- Days from the first hip fracture claim (S72) to the first care-need certification after it, by year of the fracture.
-- Joins: claims -> care on research_id.
WITH fracture AS (
  SELECT m.research_id, min(m.service_month) AS fracture_month
  FROM claims.claim_diagnoses d
  JOIN research.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
  WHERE d.icd10 LIKE 'S72%'
  GROUP BY m.research_id),
certified AS (
  SELECT f.research_id, f.fracture_month, min(c.certification_date) AS first_certification
  FROM fracture f
  JOIN research.care_certifications c ON c.research_id = f.research_id AND c.certification_date >= f.fracture_month
  GROUP BY f.research_id, f.fracture_month)
SELECT extract(year FROM f.fracture_month) AS fracture_year, count(*) AS fractures,
       count(c.research_id) AS certified,
       sum(CASE WHEN c.first_certification <= f.fracture_month + INTERVAL '90 days' THEN 1 ELSE 0 END) AS within_90_days,
       avg(c.first_certification - f.fracture_month) AS mean_days
FROM fracture f LEFT JOIN certified c ON c.research_id = f.research_id
GROUP BY 1 ORDER BY 1;
