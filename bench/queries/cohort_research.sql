-- The research tables the cohort suite reads (run once per warehouse, after the sources in
-- cli/src/linkage.sql are declared and LINK has run): each source's rows with research_id in
-- place of its identity columns, as analysts get them. Birth dates are kept where a query
-- needs an age band; names, insured numbers and source keys stay in the identity zone.
CREATE SCHEMA IF NOT EXISTS research;
CREATE LINKED TABLE research.residents FROM resident.residents
  LINKAGE SOURCE resident KEY atena_number KEEP (birth_date, sex) EXCLUDE (address, household_number);
CREATE LINKED TABLE research.resident_events FROM resident.events
  LINKAGE SOURCE resident KEY atena_number EXCLUDE (previous_value, new_value) ORDER BY event_date;
CREATE LINKED TABLE research.medical_claims FROM claims.medical_claims
  LINKAGE SOURCE claims KEY insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '')
  KEEP (sex, birth_date) ORDER BY service_month;
CREATE LINKED TABLE research.checkups FROM checkup.results
  LINKAGE SOURCE checkup KEY CAST(checkup_id AS TEXT) KEEP (sex) ORDER BY checkup_date;
CREATE LINKED TABLE research.care_certifications FROM care.certifications
  LINKAGE SOURCE care KEY care_insured_number ORDER BY application_date;
CREATE LINKED TABLE research.care_benefits FROM care.benefits
  LINKAGE SOURCE care KEY care_insured_number ORDER BY service_month;
CREATE LINKED TABLE research.vaccinations FROM vaccination.records
  LINKAGE SOURCE vaccination KEY health_person_number ORDER BY vaccination_date;
