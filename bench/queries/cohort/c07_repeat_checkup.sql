-- Checkup participants of FY2023 who came back in FY2024, by sex and age band.
-- Joins: checkup -> checkup on research_id (a change of insurer does not make a new person).
WITH y23 AS (
  SELECT research_id, min(sex) AS sex, floor(min(age) / 10.0) * 10 AS band
  FROM research.checkups WHERE fiscal_year = 2023 GROUP BY research_id),
y24 AS (
  SELECT DISTINCT research_id FROM research.checkups WHERE fiscal_year = 2024)
SELECT y23.sex, y23.band, count(*) AS participants_2023, count(y24.research_id) AS returned_2024
FROM y23 LEFT JOIN y24 ON y24.research_id = y23.research_id
GROUP BY y23.sex, y23.band ORDER BY y23.sex, y23.band;
