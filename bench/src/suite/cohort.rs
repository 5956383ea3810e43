//! The cohort suite: ten municipal and research questions over the generator's warehouse,
//! written once in SQL that Kura, DataFusion and DuckDB all read the same way (no integer `/`,
//! which DuckDB answers as a double; no `median`, which the two define differently for even
//! counts).
//!
//! Persons are not linked yet (no `research_id`): within claims and checkups a person is the
//! insurance key (insurer number, insured number, suffix); across sources the queries join
//! through `truth.person_map`, the generator's ground-truth map from each source key to the
//! person. That map stands in for the linkage table: once linkage lands, each such join becomes
//! a join on `research_id`, of the same shape.

/// The tables the queries read.
pub const TABLES: &[&str] = &[
    "resident.residents",
    "resident.events",
    "claims.medical_claims",
    "claims.claim_diagnoses",
    "checkup.results",
    "care.certifications",
    "care.benefits",
    "vaccination.records",
    "truth.person_map",
];

/// The claims source key as `truth.person_map` writes it.
const CLAIM_KEY: &str = "m.insurer_number || ':' || coalesce(m.insured_symbol, '') || ':' || m.insured_number || ':' || coalesce(m.insured_suffix, '')";

/// (name, what it asks, which joins become `research_id` joins, SQL).
pub const QUERIES: &[(&str, &str, &str, &str)] = &[
    (
        "c01_hba1c_no_claim",
        "FY2024 checkup participants with HbA1c >= 6.5 and no diabetes claim (E10-E14) within six months after the checkup, by sex and age band",
        "checkup -> claims on the insurance key",
        "WITH high AS (
           SELECT insurer_number, insured_number, coalesce(insured_suffix, '') AS suffix, checkup_date, sex,
                  floor(age / 10.0) * 10 AS band
           FROM checkup.results WHERE fiscal_year = 2024 AND hba1c >= 6.5),
         dm AS (
           SELECT DISTINCT m.insurer_number, m.insured_number, coalesce(m.insured_suffix, '') AS suffix, m.service_month
           FROM claims.claim_diagnoses d JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
           WHERE d.fiscal_year >= 2024 AND d.icd10 >= 'E10' AND d.icd10 < 'E15')
         SELECT sex, band, count(*) AS high_hba1c,
                sum(CASE WHEN NOT EXISTS (
                      SELECT 1 FROM dm WHERE dm.insurer_number = high.insurer_number AND dm.insured_number = high.insured_number
                        AND dm.suffix = high.suffix AND dm.service_month >= high.checkup_date - INTERVAL '1 month'
                        AND dm.service_month <= high.checkup_date + INTERVAL '6 months') THEN 1 ELSE 0 END) AS no_claim
         FROM high GROUP BY sex, band ORDER BY sex, band",
    ),
    (
        "c02_cost_per_capita",
        "Per-capita medical cost (yen) by fiscal year, ward and age band of the residents registered at the start of the year",
        "claims -> resident register through the person map",
        "WITH pop AS (
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
           JOIN truth.person_map p ON p.source = 'claims' AND p.source_key = {claim_key}
           GROUP BY m.fiscal_year, p.person_id)
         SELECT pop.fiscal_year, pop.ward_code, pop.band, count(*) AS residents,
                coalesce(sum(cost.yen), 0) AS yen, coalesce(sum(cost.yen), 0) * 1.0 / count(*) AS yen_per_capita
         FROM pop LEFT JOIN cost ON cost.person_id = pop.person_id AND cost.fiscal_year = pop.fiscal_year
         GROUP BY pop.fiscal_year, pop.ward_code, pop.band
         ORDER BY pop.fiscal_year, pop.ward_code, pop.band",
    ),
    (
        "c03_hip_fracture_to_care",
        "Days from the first hip fracture claim (S72) to the first care-need certification after it, by year of the fracture",
        "claims -> care through the person map",
        "WITH fracture AS (
           SELECT p.person_id, min(m.service_month) AS fracture_month
           FROM claims.claim_diagnoses d
           JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
           JOIN truth.person_map p ON p.source = 'claims' AND p.source_key = {claim_key}
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
         GROUP BY 1 ORDER BY 1",
    ),
    (
        "c04_flu_coverage",
        "Influenza vaccination coverage in FY2024 by age band among residents registered on 1 October 2024",
        "vaccination -> resident register through the person map",
        "WITH pop AS (
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
         GROUP BY pop.band ORDER BY pop.band",
    ),
    (
        "c05_stroke_mortality",
        "Mortality within 1 and 5 years after a first stroke claim (I60, I61, I63 as main diagnosis), by year of onset",
        "claims -> resident register events through the person map",
        "WITH stroke AS (
           SELECT p.person_id, min(m.service_month) AS onset
           FROM claims.claim_diagnoses d
           JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
           JOIN truth.person_map p ON p.source = 'claims' AND p.source_key = {claim_key}
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
         GROUP BY 1 ORDER BY 1",
    ),
    (
        "c06_care_cost_by_level",
        "Long-term care benefit cost per certified person by fiscal year and care level",
        "none (one source)",
        "SELECT fiscal_year, care_level_code, count(DISTINCT care_insured_number) AS persons, sum(cost_yen) AS cost_yen,
                sum(benefit_yen) AS benefit_yen, sum(cost_yen) * 1.0 / count(DISTINCT care_insured_number) AS cost_per_person
         FROM care.benefits
         GROUP BY fiscal_year, care_level_code ORDER BY fiscal_year, care_level_code",
    ),
    (
        "c07_repeat_checkup",
        "Checkup participants of FY2023 who came back in FY2024, by sex and age band",
        "checkup -> checkup on the insurance key",
        "WITH y23 AS (
           SELECT DISTINCT insurer_number, insured_number, coalesce(insured_suffix, '') AS suffix, sex, floor(age / 10.0) * 10 AS band
           FROM checkup.results WHERE fiscal_year = 2023),
         y24 AS (
           SELECT DISTINCT insurer_number, insured_number, coalesce(insured_suffix, '') AS suffix
           FROM checkup.results WHERE fiscal_year = 2024)
         SELECT y23.sex, y23.band, count(*) AS participants_2023, count(y24.insured_number) AS returned_2024
         FROM y23 LEFT JOIN y24 ON y24.insurer_number = y23.insurer_number AND y24.insured_number = y23.insured_number
                               AND y24.suffix = y23.suffix
         GROUP BY y23.sex, y23.band ORDER BY y23.sex, y23.band",
    ),
    (
        "c08_frequent_outpatient",
        "Frequent outpatients (36 or more outpatient days in a fiscal year), by fiscal year and age band",
        "claims -> claims on the insurance key",
        "SELECT fiscal_year, floor((fiscal_year - extract(year FROM birth_date)) / 10.0) * 10 AS band, count(*) AS persons,
                sum(days) AS days
         FROM (
           SELECT fiscal_year, insurer_number, insured_number, insured_suffix, min(birth_date) AS birth_date, sum(actual_days) AS days
           FROM claims.medical_claims WHERE setting = '入院外'
           GROUP BY fiscal_year, insurer_number, insured_number, insured_suffix) AS per_person
         WHERE days >= 36
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "c09_incident_diabetes",
        "New type 2 diabetes (E11) in FY2024 after three years without it, by sex and age band",
        "claims -> claims on the insurance key",
        "WITH first_e11 AS (
           SELECT m.insurer_number, m.insured_number, m.insured_suffix, min(m.sex) AS sex, min(m.birth_date) AS birth_date,
                  min(d.fiscal_year) AS first_year
           FROM claims.claim_diagnoses d JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
           WHERE d.icd10 LIKE 'E11%'
           GROUP BY m.insurer_number, m.insured_number, m.insured_suffix)
         SELECT sex, floor((2024 - extract(year FROM birth_date)) / 10.0) * 10 AS band, count(*) AS new_cases
         FROM first_e11 WHERE first_year = 2024
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "c10_multimorbidity",
        "Number of chronic conditions per patient in FY2024 (hypertension, diabetes, dyslipidaemia, CKD, heart failure, dementia, osteoporosis, COPD), by age band",
        "claims -> claims on the insurance key",
        "WITH conditions AS (
           SELECT m.insurer_number, m.insured_number, m.insured_suffix, min(m.birth_date) AS birth_date,
                  count(DISTINCT substr(d.icd10, 1, 3)) AS n
           FROM claims.claim_diagnoses d JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year
           WHERE d.fiscal_year = 2024 AND substr(d.icd10, 1, 3) IN ('I10', 'E11', 'E78', 'N18', 'I50', 'F03', 'M81', 'J44')
           GROUP BY m.insurer_number, m.insured_number, m.insured_suffix)
         SELECT floor((2024 - extract(year FROM birth_date)) / 10.0) * 10 AS band, n AS conditions, count(*) AS patients
         FROM conditions GROUP BY 1, 2 ORDER BY 1, 2",
    ),
];

/// The query text with the claims key spelled out.
pub fn query_text(sql: &str) -> String {
    sql.replace("{claim_key}", CLAIM_KEY)
}
