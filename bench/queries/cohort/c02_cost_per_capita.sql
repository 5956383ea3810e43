-- Per-capita medical cost (yen) by fiscal year, ward and age band of the residents registered at the start of the year.
-- Joins: claims -> resident register on research_id.
WITH pop AS (
  SELECT fy.fiscal_year, r.research_id, r.ward_code,
         floor((fy.fiscal_year - extract(year FROM r.birth_date)) / 10.0) * 10 AS band
  FROM research.residents r
  CROSS JOIN (VALUES (2021), (2022), (2023), (2024), (2025)) AS fy(fiscal_year)
  WHERE r.resident_since <= make_date(fy.fiscal_year, 4, 1)
    AND (r.status = '住民' OR r.status_date >= make_date(fy.fiscal_year, 4, 1))),
cost AS (
  SELECT fiscal_year, research_id, sum(total_points) * 10 AS yen
  FROM research.medical_claims
  GROUP BY fiscal_year, research_id)
SELECT pop.fiscal_year, pop.ward_code, pop.band, count(*) AS residents,
       coalesce(sum(cost.yen), 0) AS yen, coalesce(sum(cost.yen), 0) * 1.0 / count(*) AS yen_per_capita
FROM pop LEFT JOIN cost ON cost.research_id = pop.research_id AND cost.fiscal_year = pop.fiscal_year
GROUP BY pop.fiscal_year, pop.ward_code, pop.band
ORDER BY pop.fiscal_year, pop.ward_code, pop.band;
