-- The demo warehouse's roles and policies (run once, as the superuser, after the data is loaded).
-- Four roles, as a producer of medical information under 次世代医療基盤法 uses them:
--   operators   the secure zone: raw data
--   researchers 仮名加工医療情報 (pseudonymised): clinical detail, keyed pseudonyms instead of
--               person numbers, no direct identifiers
--   analysts    匿名加工医療情報 (anonymised): no identifiers, birth dates to the month,
--               postal codes to 3 digits, opted-out persons removed
--   municipal   aggregate-only: groups of at least 10 persons, counted by person
--   auditors    the audit trail (audit.statements): who ran what, when, from where; no data
-- Passwords are set by `kura demo` (KURA_DEMO_PASSWORD, or generated and printed).

-- OPERATOR: works in the identity zone (identity columns of the linked sources, opted-out persons).
CREATE ROLE operators OPERATOR;
CREATE ROLE researchers;
CREATE ROLE analysts;
CREATE ROLE municipal;
CREATE USER operator IN ROLE operators;
CREATE USER researcher IN ROLE researchers;
CREATE USER analyst IN ROLE analysts;
CREATE USER municipal_user IN ROLE municipal;
-- AUDITOR: reads the audit trail whatever the grants; holds no grant on data.
CREATE ROLE auditors AUDITOR;
CREATE USER auditor IN ROLE auditors;

-- Synthetic opt-outs (about 1 in 100 residents): a refusal removes the person from every
-- non-operator view of the register.
CREATE SCHEMA consent;
CREATE TABLE consent.optout AS
  SELECT atena_number, DATE '2026-04-01' AS requested_on FROM resident.residents WHERE atena_number LIKE '%07';

GRANT SELECT ON ALL TABLES IN SCHEMA resident TO operators, researchers, analysts, municipal;
GRANT SELECT ON ALL TABLES IN SCHEMA claims TO operators, researchers, analysts;
GRANT SELECT ON ALL TABLES IN SCHEMA checkup TO operators, researchers, analysts;
-- Care, vaccination and hospital records carry names in columns of their own; until they are
-- linked to research IDs (issue 6) they are for operators.
GRANT SELECT ON ALL TABLES IN SCHEMA care TO operators;
GRANT SELECT ON ALL TABLES IN SCHEMA vaccination TO operators;
GRANT SELECT ON ALL TABLES IN SCHEMA hospital TO operators;
GRANT SELECT ON ALL TABLES IN SCHEMA consent TO operators;

CREATE MASKING POLICY identity_text AS (v TEXT) RETURNS TEXT ->
  CASE WHEN is_member('operators') THEN v END
  COMMENT 'direct identifiers (names, insured numbers): operators only';
-- One key per provision: the researchers' pseudonyms cannot be joined with another recipient's.
CREATE PSEUDONYM KEY researchers_2026;
CREATE MASKING POLICY person_number AS (v TEXT) RETURNS TEXT ->
  CASE WHEN is_member('operators') OR is_member('municipal') THEN v
       WHEN is_member('researchers') THEN pseudonymize(v, 'researchers_2026') END
  COMMENT 'operators see the register number; researchers a keyed pseudonym; aggregate-only users count persons with it';
CREATE MASKING POLICY birth_month AS (v DATE) RETURNS DATE ->
  CASE WHEN is_member('operators') OR is_member('researchers') THEN v ELSE date_floor(v, 'month') END
  COMMENT 'anonymised: birth date to year-month';
CREATE MASKING POLICY postal3 AS (v TEXT) RETURNS TEXT ->
  CASE WHEN is_member('operators') THEN v ELSE substr(v, 1, 3) END
  COMMENT 'postal code to its first 3 digits';
CREATE ROW ACCESS POLICY resident_optout AS (id TEXT) RETURNS BOOLEAN ->
  is_member('operators') OR NOT EXISTS (SELECT 1 FROM consent.optout o WHERE o.atena_number = id)
  COMMENT 'opted-out persons are visible to operators only';
CREATE PROJECTION POLICY operators_only AS () RETURNS BOOLEAN -> is_member('operators')
  COMMENT 'columns nobody else may use at all';
CREATE AGGREGATION POLICY municipal_k10 AS () RETURNS INT -> CASE WHEN is_member('municipal') THEN 10 END
  COMMENT 'the national claims database publication rule: cells under 10 persons are suppressed';

ALTER TABLE resident.residents ALTER COLUMN name_kanji SET PROJECTION POLICY operators_only;
ALTER TABLE resident.residents ALTER COLUMN address SET PROJECTION POLICY operators_only;
ALTER TABLE resident.residents ALTER COLUMN atena_number SET MASKING POLICY person_number;
ALTER TABLE resident.residents ALTER COLUMN household_number SET MASKING POLICY identity_text;
ALTER TABLE resident.residents ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE resident.residents ALTER COLUMN birth_date SET MASKING POLICY birth_month;
ALTER TABLE resident.residents ALTER COLUMN birth_date_wareki SET MASKING POLICY identity_text;
ALTER TABLE resident.residents ALTER COLUMN postal_code SET MASKING POLICY postal3;
ALTER TABLE resident.residents ADD ROW ACCESS POLICY resident_optout ON (atena_number);
ALTER TABLE resident.residents SET AGGREGATION POLICY municipal_k10 ENTITY KEY (atena_number);

ALTER TABLE claims.medical_claims ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE claims.medical_claims ALTER COLUMN insured_number SET MASKING POLICY identity_text;
ALTER TABLE claims.medical_claims ALTER COLUMN insured_symbol SET MASKING POLICY identity_text;
ALTER TABLE claims.medical_claims ALTER COLUMN insured_suffix SET MASKING POLICY identity_text;
ALTER TABLE claims.medical_claims ALTER COLUMN birth_date SET MASKING POLICY birth_month;
ALTER TABLE claims.dental_claims ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE claims.dental_claims ALTER COLUMN insured_number SET MASKING POLICY identity_text;
ALTER TABLE claims.dental_claims ALTER COLUMN insured_symbol SET MASKING POLICY identity_text;
ALTER TABLE claims.dental_claims ALTER COLUMN insured_suffix SET MASKING POLICY identity_text;
ALTER TABLE claims.dental_claims ALTER COLUMN birth_date SET MASKING POLICY birth_month;
ALTER TABLE claims.pharmacy_claims ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE claims.pharmacy_claims ALTER COLUMN insured_number SET MASKING POLICY identity_text;
ALTER TABLE claims.pharmacy_claims ALTER COLUMN insured_symbol SET MASKING POLICY identity_text;
ALTER TABLE claims.pharmacy_claims ALTER COLUMN insured_suffix SET MASKING POLICY identity_text;
ALTER TABLE claims.pharmacy_claims ALTER COLUMN birth_date SET MASKING POLICY birth_month;
ALTER TABLE checkup.results ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE checkup.results ALTER COLUMN insured_number SET MASKING POLICY identity_text;
ALTER TABLE checkup.results ALTER COLUMN insured_symbol SET MASKING POLICY identity_text;
ALTER TABLE checkup.results ALTER COLUMN insured_suffix SET MASKING POLICY identity_text;
ALTER TABLE checkup.results ALTER COLUMN birth_date SET MASKING POLICY birth_month;
-- The checkup's own record key is the linkage source key: operators only.
ALTER TABLE checkup.results ALTER COLUMN checkup_id SET PROJECTION POLICY operators_only;
