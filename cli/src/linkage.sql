-- Linkage sources (名寄せ) of the generator's data: one query per source yields its identity
-- observations, keyed as the source keys its people. `LINK` links them into research IDs.
CREATE OR REPLACE LINKAGE SOURCE resident WITH UNIQUE KEYS AS
  SELECT atena_number AS source_key, name_kana, name_kanji, birth_date, sex, postal_code,
         CASE WHEN status = '死亡' THEN status_date END AS death_date
  FROM resident.residents;

CREATE OR REPLACE LINKAGE SOURCE claims AS
  SELECT insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '') AS source_key,
         name_kana, birth_date, sex, insurer_number, insured_symbol, insured_number, insured_suffix,
         min(service_month) AS first_seen, max(service_month) AS last_seen
  FROM (
    SELECT insurer_number, insured_symbol, insured_number, insured_suffix, name_kana, birth_date, sex, service_month FROM claims.medical_claims
    UNION ALL
    SELECT insurer_number, insured_symbol, insured_number, insured_suffix, name_kana, birth_date, sex, service_month FROM claims.dental_claims
    UNION ALL
    SELECT insurer_number, insured_symbol, insured_number, insured_suffix, name_kana, birth_date, sex, service_month FROM claims.pharmacy_claims
  ) c
  GROUP BY insurer_number, insured_symbol, insured_number, insured_suffix, name_kana, birth_date, sex;

CREATE OR REPLACE LINKAGE SOURCE checkup AS
  SELECT CAST(checkup_id AS TEXT) AS source_key, name_kana, birth_date, sex,
         insurer_number, insured_symbol, insured_number, insured_suffix,
         checkup_date AS first_seen, checkup_date AS last_seen
  FROM checkup.results;

CREATE OR REPLACE LINKAGE SOURCE care WITH UNIQUE KEYS AS
  SELECT care_insured_number AS source_key, name_kana, name_kanji, birth_date, sex, postal_code,
         min(application_date) AS first_seen, max(certification_date) AS last_seen
  FROM care.certifications
  GROUP BY care_insured_number, name_kana, name_kanji, birth_date, sex, postal_code;

CREATE OR REPLACE LINKAGE SOURCE vaccination WITH UNIQUE KEYS AS
  SELECT health_person_number AS source_key, name_kana, name_kanji, birth_date, sex,
         min(vaccination_date) AS first_seen, max(vaccination_date) AS last_seen
  FROM vaccination.records
  GROUP BY health_person_number, name_kana, name_kanji, birth_date, sex;

CREATE OR REPLACE LINKAGE SOURCE hospital AS
  SELECT hospital_code || ':' || patient_id AS source_key, name_kana, name_kanji, birth_date, sex, postal_code,
         first_visit_date AS first_seen, last_visit_date AS last_seen
  FROM hospital.patients;
