-- Pseudonymised research tables (仮名加工医療情報) of the demo, built after LINK: each source's
-- records with the person's research ID, without names, insured numbers, birth dates or source
-- keys. Joining them on research_id is the linkage join. LINK refreshes them; the opt-out
-- policy below reads the consent registry at query time, so a later refusal applies at once.
CREATE SCHEMA research;
-- Linked tables: each source's rows with research_id in place of its identity columns, which
-- Kura traces through the linkage source's query and keeps in the zone; LINK rewrites them.
CREATE LINKED TABLE research.checkups FROM checkup.results
  LINKAGE SOURCE checkup KEY CAST(checkup_id AS TEXT) KEEP (sex) ORDER BY checkup_date;
CREATE LINKED TABLE research.medical_claims FROM claims.medical_claims
  LINKAGE SOURCE claims KEY insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '')
  KEEP (sex) ORDER BY service_month;
CREATE LINKED TABLE research.pharmacy_claims FROM claims.pharmacy_claims
  LINKAGE SOURCE claims KEY insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '')
  KEEP (sex) ORDER BY service_month;
CREATE TABLE research.claim_diagnoses AS
  SELECT claim_id, claim_type, fiscal_year, icd10, start_date, is_main, is_suspected FROM claims.claim_diagnoses;
CREATE LINKED TABLE research.care_certifications FROM care.certifications
  LINKAGE SOURCE care KEY care_insured_number KEEP (sex) ORDER BY application_date;
CREATE LINKED TABLE research.care_benefits FROM care.benefits
  LINKAGE SOURCE care KEY care_insured_number ORDER BY service_month;
CREATE LINKED TABLE research.vaccinations FROM vaccination.records
  LINKAGE SOURCE vaccination KEY health_person_number KEEP (sex) ORDER BY vaccination_date;
CREATE LINKED TABLE research.hospital_diagnoses FROM hospital.diagnoses
  LINKAGE SOURCE hospital KEY hospital_code || ':' || patient_id ORDER BY start_date;
CREATE LINKED TABLE research.hospital_prescriptions FROM hospital.prescriptions
  LINKAGE SOURCE hospital KEY hospital_code || ':' || patient_id ORDER BY order_date;

CREATE ROW ACCESS POLICY research_optout AS (id BIGINT) RETURNS BOOLEAN ->
  is_member('operators') OR NOT EXISTS (
    SELECT 1 FROM consent.optout o JOIN linkage.research_ids r ON r.source = 'resident' AND r.source_key = o.atena_number
    WHERE r.research_id = id)
  COMMENT 'persons who opted out (by atena number, mapped to research IDs) are visible to operators only';
ALTER TABLE research.checkups ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.medical_claims ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.pharmacy_claims ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.care_certifications ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.care_benefits ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.vaccinations ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.hospital_diagnoses ADD ROW ACCESS POLICY research_optout ON (research_id);
ALTER TABLE research.hospital_prescriptions ADD ROW ACCESS POLICY research_optout ON (research_id);
GRANT SELECT ON ALL TABLES IN SCHEMA research TO operators, researchers;
