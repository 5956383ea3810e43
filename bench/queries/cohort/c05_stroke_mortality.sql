-- Mortality within 1 and 5 years after a first stroke claim (I60, I61, I63 as main diagnosis), by year of onset.
-- Joins: claims -> resident register events on research_id.
WITH stroke AS (
  SELECT m.research_id, min(m.service_month) AS onset
  FROM claims.claim_diagnoses d
  JOIN research.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
  WHERE d.is_main AND substr(d.icd10, 1, 3) IN ('I60', 'I61', 'I63')
  GROUP BY m.research_id),
death AS (
  SELECT research_id, min(event_date) AS died
  FROM research.resident_events
  WHERE event_type = '死亡'
  GROUP BY research_id)
SELECT extract(year FROM s.onset) AS onset_year, count(*) AS patients,
       sum(CASE WHEN d.died <= s.onset + INTERVAL '1 year' THEN 1 ELSE 0 END) AS died_1y,
       sum(CASE WHEN d.died <= s.onset + INTERVAL '5 years' THEN 1 ELSE 0 END) AS died_5y
FROM stroke s LEFT JOIN death d ON d.research_id = s.research_id
GROUP BY 1 ORDER BY 1;
