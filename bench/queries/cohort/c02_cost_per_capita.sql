-- Per-capita medical cost (yen) by fiscal year, ward and age band of the residents registered at the start of the year.
-- Joins: claims -> resident register through the person map.
WITH pop AS (
  SELECT fy.fiscal_year, p.person_id, r.ward_code,
         floor((fy.fiscal_year - extract(year FROM r.birth_date)) / 10.0) * 10 AS band
  FROM resident.residents r
  JOIN truth.person_map p ON p.source = 'resident' AND p.source_key = r.atena_number
  CROSS JOIN (VALUES (2021), (2022), (2023), (2024), (2025)) AS fy(fiscal_year)
  WHERE r.resident_since <= make_date(fy.fiscal_year, 4, 1)
    AND (r.status = '住民' OR r.status_date >= make_date(fy.fiscal_year, 4, 1))),
cost AS (
  SELECT m.fiscal_year, p.person_id, sum(m.total_points) * 10 AS yen
  FROM claims.medical_claims m
  JOIN truth.person_map p ON p.source = 'claims' AND p.source_key = m.insurer_number || ':' || coalesce(m.insured_symbol, '') || ':' || m.insured_number || ':' || coalesce(m.insured_suffix, '')
  GROUP BY m.fiscal_year, p.person_id)
SELECT pop.fiscal_year, pop.ward_code, pop.band, count(*) AS residents,
       coalesce(sum(cost.yen), 0) AS yen, coalesce(sum(cost.yen), 0) * 1.0 / count(*) AS yen_per_capita
FROM pop LEFT JOIN cost ON cost.person_id = pop.person_id AND cost.fiscal_year = pop.fiscal_year
GROUP BY pop.fiscal_year, pop.ward_code, pop.band
ORDER BY pop.fiscal_year, pop.ward_code, pop.band;
