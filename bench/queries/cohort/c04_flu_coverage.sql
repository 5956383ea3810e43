-- Influenza vaccination coverage in FY2024 by age band among residents registered on 1 October 2024.
-- Joins: vaccination -> resident register through the person map.
WITH pop AS (
  SELECT p.person_id, floor((2024 - extract(year FROM r.birth_date)) / 10.0) * 10 AS band
  FROM resident.residents r
  JOIN truth.person_map p ON p.source = 'resident' AND p.source_key = r.atena_number
  WHERE r.resident_since <= DATE '2024-10-01' AND (r.status = '住民' OR r.status_date > DATE '2024-10-01')),
vaccinated AS (
  SELECT DISTINCT p.person_id
  FROM vaccination.records v
  JOIN truth.person_map p ON p.source = 'vaccination' AND p.source_key = v.health_person_number
  WHERE v.vaccine_code = 'FLU' AND v.fiscal_year = 2024)
SELECT pop.band, count(*) AS residents, count(v.person_id) AS vaccinated,
       count(v.person_id) * 100.0 / count(*) AS coverage_pct
FROM pop LEFT JOIN vaccinated v ON v.person_id = pop.person_id
GROUP BY pop.band ORDER BY pop.band;
