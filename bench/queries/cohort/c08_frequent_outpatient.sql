-- Frequent outpatients (36 or more outpatient days in a fiscal year), by fiscal year and age band.
-- Joins: claims -> claims on research_id (all of a person's insurers together).
SELECT fiscal_year, floor((fiscal_year - extract(year FROM birth_date)) / 10.0) * 10 AS band, count(*) AS persons,
       sum(days) AS days
FROM (
  SELECT fiscal_year, research_id, min(birth_date) AS birth_date, sum(actual_days) AS days
  FROM research.medical_claims WHERE setting = '入院外'
  GROUP BY fiscal_year, research_id) AS per_person
WHERE days >= 36
GROUP BY 1, 2 ORDER BY 1, 2;
