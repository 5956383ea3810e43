-- Mortality within 1 and 5 years after a first stroke claim (I60, I61, I63 as main diagnosis), by year of onset.
-- Joins: claims -> resident register events through the person map.
WITH stroke AS (
  SELECT p.person_id, min(m.service_month) AS onset
  FROM claims.claim_diagnoses d
  JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
  JOIN truth.person_map p ON p.source = 'claims' AND p.source_key = m.insurer_number || ':' || coalesce(m.insured_symbol, '') || ':' || m.insured_number || ':' || coalesce(m.insured_suffix, '')
  WHERE d.is_main AND substr(d.icd10, 1, 3) IN ('I60', 'I61', 'I63')
  GROUP BY p.person_id),
death AS (
  SELECT p.person_id, min(e.event_date) AS died
  FROM resident.events e
  JOIN truth.person_map p ON p.source = 'resident' AND p.source_key = e.atena_number
  WHERE e.event_type = '死亡'
  GROUP BY p.person_id)
SELECT extract(year FROM s.onset) AS onset_year, count(*) AS patients,
       sum(CASE WHEN d.died <= s.onset + INTERVAL '1 year' THEN 1 ELSE 0 END) AS died_1y,
       sum(CASE WHEN d.died <= s.onset + INTERVAL '5 years' THEN 1 ELSE 0 END) AS died_5y
FROM stroke s LEFT JOIN death d ON d.person_id = s.person_id
GROUP BY 1 ORDER BY 1;
