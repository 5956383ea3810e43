-- Checkup participants of FY2023 who came back in FY2024, by sex and age band.
-- Joins: checkup -> checkup on the insurance key.
WITH y23 AS (
  SELECT DISTINCT insurer_number, insured_number, coalesce(insured_suffix, '') AS suffix, sex, floor(age / 10.0) * 10 AS band
  FROM checkup.results WHERE fiscal_year = 2023),
y24 AS (
  SELECT DISTINCT insurer_number, insured_number, coalesce(insured_suffix, '') AS suffix
  FROM checkup.results WHERE fiscal_year = 2024)
SELECT y23.sex, y23.band, count(*) AS participants_2023, count(y24.insured_number) AS returned_2024
FROM y23 LEFT JOIN y24 ON y24.insurer_number = y23.insurer_number AND y24.insured_number = y23.insured_number
                      AND y24.suffix = y23.suffix
GROUP BY y23.sex, y23.band ORDER BY y23.sex, y23.band;
