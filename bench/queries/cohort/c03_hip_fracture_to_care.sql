-- Days from the first hip fracture claim (S72) to the first care-need certification after it, by year of the fracture.
-- Joins: claims -> care through the person map.
WITH fracture AS (
  SELECT p.person_id, min(m.service_month) AS fracture_month
  FROM claims.claim_diagnoses d
  JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
  JOIN truth.person_map p ON p.source = 'claims' AND p.source_key = m.insurer_number || ':' || coalesce(m.insured_symbol, '') || ':' || m.insured_number || ':' || coalesce(m.insured_suffix, '')
  WHERE d.icd10 LIKE 'S72%'
  GROUP BY p.person_id),
certified AS (
  SELECT f.person_id, f.fracture_month, min(c.certification_date) AS first_certification
  FROM fracture f
  JOIN truth.person_map p ON p.source = 'care' AND p.person_id = f.person_id
  JOIN care.certifications c ON c.care_insured_number = p.source_key AND c.certification_date >= f.fracture_month
  GROUP BY f.person_id, f.fracture_month)
SELECT extract(year FROM f.fracture_month) AS fracture_year, count(*) AS fractures,
       count(c.person_id) AS certified,
       sum(CASE WHEN c.first_certification <= f.fracture_month + INTERVAL '90 days' THEN 1 ELSE 0 END) AS within_90_days,
       avg(c.first_certification - f.fracture_month) AS mean_days
FROM fracture f LEFT JOIN certified c ON c.person_id = f.person_id
GROUP BY 1 ORDER BY 1;
