-- Influenza vaccination coverage in FY2024 by age band among residents registered on 1 October 2024.
-- Joins: vaccination -> resident register on research_id.
WITH pop AS (
  SELECT research_id, floor((2024 - extract(year FROM birth_date)) / 10.0) * 10 AS band
  FROM research.residents
  WHERE resident_since <= DATE '2024-10-01' AND (status = '住民' OR status_date > DATE '2024-10-01')),
vaccinated AS (
  SELECT DISTINCT research_id
  FROM research.vaccinations
  WHERE vaccine_code = 'FLU' AND fiscal_year = 2024)
SELECT pop.band, count(*) AS residents, count(v.research_id) AS vaccinated,
       count(v.research_id) * 100.0 / count(*) AS coverage_pct
FROM pop LEFT JOIN vaccinated v ON v.research_id = pop.research_id
GROUP BY pop.band ORDER BY pop.band;
