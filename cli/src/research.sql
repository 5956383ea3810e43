-- Pseudonymised research tables (仮名加工医療情報) of the demo, built after LINK: each source's
-- records with the person's research ID, without names, insured numbers or birth dates. Joining
-- them on research_id is the linkage join. They are snapshots of one linkage run; the opt-out
-- policy below reads the consent registry at query time, so a later refusal applies at once.
CREATE SCHEMA research;
CREATE TABLE research.checkups AS
  SELECT r.research_id, c.fiscal_year, c.checkup_type, c.checkup_date, c.age, c.sex, c.bmi, c.waist_cm, c.sbp, c.dbp,
         c.ldl, c.hdl, c.triglycerides, c.hba1c, c.fasting_glucose, c.smoking, c.on_glucose_medication
  FROM checkup.results c
  JOIN linkage.research_ids r ON r.source = 'checkup' AND r.source_key = CAST(c.checkup_id AS TEXT);
CREATE TABLE research.medical_claims AS
  SELECT r.research_id, m.claim_id, m.service_month, m.fiscal_year, m.setting, m.actual_days, m.total_points, m.facility_code
  FROM claims.medical_claims m
  JOIN linkage.research_ids r ON r.source = 'claims'
   AND r.source_key = m.insurer_number || ':' || coalesce(m.insured_symbol, '') || ':' || m.insured_number || ':' || coalesce(m.insured_suffix, '');
CREATE TABLE research.claim_diagnoses AS
  SELECT claim_id, claim_type, fiscal_year, icd10, start_date, is_main, is_suspected FROM claims.claim_diagnoses;
CREATE TABLE research.care_certifications AS
  SELECT r.research_id, c.fiscal_year, c.application_date, c.certification_date, c.care_level, c.care_level_code,
         c.valid_from, c.valid_to
  FROM care.certifications c
  JOIN linkage.research_ids r ON r.source = 'care' AND r.source_key = c.care_insured_number;

CREATE ROW ACCESS POLICY research_optout AS (id BIGINT) RETURNS BOOLEAN ->
  is_member('operators') OR NOT EXISTS (
    SELECT 1 FROM consent.optout o JOIN linkage.research_ids r ON r.source = 'resident' AND r.source_key = o.atena_number
    WHERE r.research_id = id)
  COMMENT 'persons who opted out (by atena number, mapped to research IDs) are visible to operators only';
ALTER TABLE research.checkups ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.medical_claims ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.care_certifications ADD ROW ACCESS POLICY research_optout ON (research_id);
GRANT SELECT ON ALL TABLES IN SCHEMA research TO operators, researchers;
