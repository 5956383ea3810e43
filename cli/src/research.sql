-- Pseudonymised research tables (仮名加工医療情報) of the demo, built after LINK: each source's
-- records with the person's research ID, without names, insured numbers, birth dates or source
-- keys. Joining them on research_id is the linkage join. LINK refreshes them.
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

-- The demo's refusals go into Kura's consent registry, by atena number: from now on every
-- non-operator stops seeing those persons in the research tables and in the claims and checkup
-- tables they are made from, with no policy naming them; a later OPT OUT applies at once.
OPT OUT resident KEYS (SELECT atena_number FROM consent.optout) NOTE 'demo: synthetic refusals';
GRANT SELECT ON ALL TABLES IN SCHEMA research TO operators, researchers;
