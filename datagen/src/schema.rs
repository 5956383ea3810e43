//! The output files: table definitions (the single source of truth for CSV headers, `load.sql`
//! and `README.txt`).

use std::fmt::Write;

/// How a file is encoded on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileEncoding {
    /// Shift_JIS / CP932 (Windows-31J), as municipal systems deliver.
    ShiftJis,
    /// UTF-8 with a byte order mark.
    Utf8Bom,
    /// Plain UTF-8.
    Utf8,
}

impl FileEncoding {
    /// Name used in `load.sql`'s `ENCODING` option.
    pub fn sql_name(self) -> &'static str {
        match self {
            FileEncoding::ShiftJis => "shift_jis",
            FileEncoding::Utf8Bom | FileEncoding::Utf8 => "utf8",
        }
    }

    /// Human-readable label.
    pub fn label(self) -> &'static str {
        match self {
            FileEncoding::ShiftJis => "Shift_JIS (CP932)",
            FileEncoding::Utf8Bom => "UTF-8 with BOM",
            FileEncoding::Utf8 => "UTF-8",
        }
    }
}

/// A column of an output table.
#[derive(Clone, Copy)]
pub(crate) struct Col {
    pub name: &'static str,
    pub ty: &'static str,
    pub not_null: bool,
    pub desc: &'static str,
}

/// An output table backed by one CSV file.
pub(crate) struct Table {
    pub schema: &'static str,
    pub name: &'static str,
    pub file: &'static str,
    pub enc: FileEncoding,
    pub partitioned: bool,
    pub desc: &'static str,
    pub cols: &'static [Col],
}

macro_rules! cols {
    ($(($n:expr, $t:expr, $nn:expr, $d:expr)),* $(,)?) => { &[$(Col { name: $n, ty: $t, not_null: $nn, desc: $d }),*] };
}

/// Index of each file in [`TABLES`].
pub(crate) mod f {
    pub const RESIDENTS: usize = 0;
    pub const EVENTS: usize = 1;
    pub const MEDICAL: usize = 2;
    pub const DENTAL: usize = 3;
    pub const PHARMACY: usize = 4;
    pub const DIAGNOSES: usize = 5;
    pub const FACILITIES: usize = 6;
    pub const INSURERS: usize = 7;
    pub const DISEASES: usize = 8;
    pub const CHECKUPS: usize = 9;
    pub const CARE_CERT: usize = 10;
    pub const CARE_BENEFITS: usize = 11;
    pub const VACCINATIONS: usize = 12;
    pub const H_PATIENTS: usize = 13;
    pub const H_DIAGNOSES: usize = 14;
    pub const H_PRESCRIPTIONS: usize = 15;
    pub const H_LABS: usize = 16;
    pub const TRUTH: usize = 17;
    pub const TRUTH_PERSONS: usize = 18;
    pub const COUNT: usize = 19;
}

const CLAIM_HEAD: &[Col] = cols![
    ("claim_id", "BIGINT", true, "claim (receipt) identifier, unique across claim files"),
    ("insurer_number", "TEXT", false, "保険者番号 insurer number: 8 digits; 6 digits for municipal 国保 (National Health Insurance)"),
    ("insured_symbol", "TEXT", false, "被保険者証記号 insured symbol (empty for 後期高齢)"),
    ("insured_number", "TEXT", false, "被保険者証番号 insured number"),
    ("insured_suffix", "TEXT", false, "2-digit personal suffix 枝番 (個人単位被保険者番号); empty for 後期高齢"),
    ("name_kana", "TEXT", false, "patient name in katakana as billed (half-width in some insurers' files)"),
    ("birth_date", "DATE", false, "birth date as billed (may contain typing errors)"),
    ("birth_date_era", "TEXT", false, "birth date as era code + YYMMDD (1 明治 2 大正 3 昭和 4 平成 5 令和)"),
    ("sex", "SMALLINT", false, "1 male, 2 female"),
    ("facility_code", "TEXT", false, "10-digit 医療機関コード facility code (see claims.facilities)"),
];

/// All output tables, indexed by [`f`].
pub(crate) static TABLES: [Table; f::COUNT] = [
    Table {
        schema: "resident",
        name: "residents",
        file: "resident_residents.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: false,
        desc: "住民基本台帳 resident register: one row per person registered in the municipality at any time in the covered period (current or last state, incl. 除票 removed records)",
        cols: cols![
            ("atena_number", "TEXT", true, "宛名番号: the municipality's 10-digit person number"),
            ("household_number", "TEXT", false, "世帯番号 household number"),
            ("relationship", "TEXT", false, "続柄 relationship to the head of household (世帯主 head, 妻 wife, 夫 husband, 子 child, 父/母 parent, 孫 grandchild)"),
            ("name_kanji", "TEXT", false, "official name in kanji (may use old-form characters such as 髙 﨑 邊 齋), surname and given name separated by a full-width space"),
            ("name_kana", "TEXT", false, "name in full-width katakana, full-width space separated"),
            ("birth_date", "DATE", false, "birth date"),
            ("birth_date_wareki", "TEXT", false, "birth date written with the Japanese era, e.g. 昭和50年1月1日"),
            ("sex", "SMALLINT", false, "1 male, 2 female"),
            ("postal_code", "TEXT", false, "7-digit postal code of the current (or last) address"),
            ("address", "TEXT", false, "address within the municipality"),
            ("ward_code", "TEXT", false, "6-digit local government code of the ward (区)"),
            ("ward_name", "TEXT", false, "ward name"),
            ("resident_since", "DATE", false, "住民となった日: date of birth or move-in; NULL when before the register went digital"),
            ("status", "TEXT", false, "住民 resident / 転出 moved out / 死亡 deceased"),
            ("status_date", "DATE", false, "date of moving out or death; NULL for residents"),
        ],
    },
    Table {
        schema: "resident",
        name: "events",
        file: "resident_events.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: false,
        desc: "住民異動 resident register events in the covered period: 出生 birth, 転入 move-in, 転出 move-out, 死亡 death, 転居 move within the city, 氏変更 surname change (marriage)",
        cols: cols![
            ("event_id", "BIGINT", true, "event identifier"),
            ("atena_number", "TEXT", true, "宛名番号 of the person"),
            ("event_type", "TEXT", false, "出生 / 転入 / 転出 / 死亡 / 転居 / 氏変更"),
            ("event_date", "DATE", false, "date the event took effect (異動日)"),
            ("notified_date", "DATE", false, "date it was notified (届出日)"),
            ("fiscal_year", "INT", false, "fiscal year of event_date"),
            ("previous_value", "TEXT", false, "previous address / name / municipality code where relevant"),
            ("new_value", "TEXT", false, "new address / name / municipality code where relevant"),
        ],
    },
    Table {
        schema: "claims",
        name: "medical_claims",
        file: "claims_medical.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: true,
        desc: "医科レセプト medical claim headers, one per patient, facility and service month",
        cols: &[
            CLAIM_HEAD[0], CLAIM_HEAD[1], CLAIM_HEAD[2], CLAIM_HEAD[3], CLAIM_HEAD[4],
            CLAIM_HEAD[5], CLAIM_HEAD[6], CLAIM_HEAD[7], CLAIM_HEAD[8], CLAIM_HEAD[9],
            Col { name: "service_month", ty: "DATE", not_null: false, desc: "診療年月 first day of the service month" },
            Col { name: "fiscal_year", ty: "INT", not_null: true, desc: "fiscal year of the service month" },
            Col { name: "setting", ty: "TEXT", not_null: false, desc: "入院 inpatient / 入院外 outpatient" },
            Col { name: "actual_days", ty: "SMALLINT", not_null: false, desc: "診療実日数 days of care in the month" },
            Col { name: "total_points", ty: "INT", not_null: false, desc: "合計点数 total points (1 point = 10 yen)" },
        ],
    },
    Table {
        schema: "claims",
        name: "dental_claims",
        file: "claims_dental.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: true,
        desc: "歯科レセプト dental claim headers",
        cols: &[
            CLAIM_HEAD[0], CLAIM_HEAD[1], CLAIM_HEAD[2], CLAIM_HEAD[3], CLAIM_HEAD[4],
            CLAIM_HEAD[5], CLAIM_HEAD[6], CLAIM_HEAD[7], CLAIM_HEAD[8], CLAIM_HEAD[9],
            Col { name: "service_month", ty: "DATE", not_null: false, desc: "診療年月 first day of the service month" },
            Col { name: "fiscal_year", ty: "INT", not_null: true, desc: "fiscal year of the service month" },
            Col { name: "setting", ty: "TEXT", not_null: false, desc: "入院 inpatient / 入院外 outpatient" },
            Col { name: "actual_days", ty: "SMALLINT", not_null: false, desc: "診療実日数 days of care in the month" },
            Col { name: "total_points", ty: "INT", not_null: false, desc: "合計点数 total points (1 point = 10 yen)" },
        ],
    },
    Table {
        schema: "claims",
        name: "pharmacy_claims",
        file: "claims_pharmacy.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: true,
        desc: "調剤レセプト pharmacy (dispensing) claim headers",
        cols: &[
            CLAIM_HEAD[0], CLAIM_HEAD[1], CLAIM_HEAD[2], CLAIM_HEAD[3], CLAIM_HEAD[4],
            CLAIM_HEAD[5], CLAIM_HEAD[6], CLAIM_HEAD[7], CLAIM_HEAD[8], CLAIM_HEAD[9],
            Col { name: "service_month", ty: "DATE", not_null: false, desc: "調剤年月 first day of the dispensing month" },
            Col { name: "fiscal_year", ty: "INT", not_null: true, desc: "fiscal year of the service month" },
            Col { name: "prescribing_facility_code", ty: "TEXT", not_null: false, desc: "facility that issued the prescription" },
            Col { name: "prescriptions", ty: "SMALLINT", not_null: false, desc: "処方箋受付回数 prescriptions filled in the month" },
            Col { name: "total_points", ty: "INT", not_null: false, desc: "合計点数 total points (1 point = 10 yen)" },
        ],
    },
    Table {
        schema: "claims",
        name: "claim_diagnoses",
        file: "claims_diagnoses.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: true,
        desc: "傷病名 (SY records): diagnoses on medical and dental claims",
        cols: cols![
            ("claim_id", "BIGINT", true, "claim the diagnosis belongs to (medical_claims or dental_claims)"),
            ("claim_type", "TEXT", false, "医科 medical / 歯科 dental"),
            ("fiscal_year", "INT", true, "fiscal year of the claim's service month"),
            ("seq", "SMALLINT", false, "position on the claim"),
            ("icd10", "TEXT", false, "ICD-10 code"),
            ("disease_code", "TEXT", false, "7-digit 傷病名コード receipt disease code (names in claims.diseases)"),
            ("start_date", "DATE", false, "診療開始日 start of treatment for this disease"),
            ("is_main", "BOOLEAN", false, "主傷病 main disease of the claim"),
            ("is_suspected", "BOOLEAN", false, "疑い suspected (rule-out) diagnosis"),
        ],
    },
    Table {
        schema: "claims",
        name: "facilities",
        file: "facilities.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "医療機関マスタ facility master: hospitals, clinics, dental clinics and pharmacies in the municipality",
        cols: cols![
            ("facility_code", "TEXT", true, "10-digit facility code: prefecture(2) + table(1: 1 医科, 3 歯科, 4 調剤) + 7 digits"),
            ("facility_type", "TEXT", false, "病院 hospital / 診療所 clinic / 歯科診療所 dental clinic / 薬局 pharmacy"),
            ("name", "TEXT", false, "facility name"),
            ("ward_code", "TEXT", false, "ward (6-digit local government code)"),
            ("postal_code", "TEXT", false, "7-digit postal code"),
            ("beds", "INT", false, "number of beds (hospitals)"),
            ("ehr_participant", "BOOLEAN", false, "true if the hospital delivers EHR extracts (schema hospital)"),
            ("hospital_code", "TEXT", false, "hospital code used in the hospital.* tables"),
        ],
    },
    Table {
        schema: "claims",
        name: "insurers",
        file: "insurers.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "保険者マスタ insurer master",
        cols: cols![
            ("insurer_number", "TEXT", true, "保険者番号 (6 digits for municipal 国保, otherwise 8)"),
            ("insurer_type", "TEXT", false, "国保 National Health Insurance / 後期高齢 late-stage elderly (75+) / 協会けんぽ / 健保組合 / 共済"),
            ("name", "TEXT", false, "insurer name"),
        ],
    },
    Table {
        schema: "claims",
        name: "diseases",
        file: "diseases.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "傷病名マスタ receipt disease master (disease code, ICD-10, name)",
        cols: cols![
            ("disease_code", "TEXT", true, "7-digit receipt disease code"),
            ("icd10", "TEXT", false, "ICD-10 code"),
            ("disease_name", "TEXT", false, "傷病名 disease name in Japanese"),
        ],
    },
    Table {
        schema: "checkup",
        name: "results",
        file: "checkup_results.csv",
        enc: FileEncoding::Utf8Bom,
        partitioned: false,
        desc: "特定健診 specific health checkups (ages 40-74) and 後期高齢者健診 checkups for the late-stage elderly (75+), from the insurers",
        cols: cols![
            ("checkup_id", "BIGINT", true, "checkup record identifier"),
            ("checkup_type", "TEXT", false, "特定健診 / 後期高齢者健診"),
            ("fiscal_year", "INT", true, "fiscal year of the checkup"),
            ("checkup_date", "DATE", false, "date of the checkup"),
            ("insurer_number", "TEXT", false, "insurer number"),
            ("insured_symbol", "TEXT", false, "insured symbol"),
            ("insured_number", "TEXT", false, "insured number"),
            ("insured_suffix", "TEXT", false, "2-digit personal suffix"),
            ("name_kana", "TEXT", false, "name in katakana"),
            ("birth_date", "DATE", false, "birth date"),
            ("sex", "SMALLINT", false, "1 male, 2 female"),
            ("age", "INT", false, "age at the checkup"),
            ("facility_code", "TEXT", false, "facility that performed the checkup"),
            ("height_cm", "DECIMAL(4,1)", false, "height (cm)"),
            ("weight_kg", "DECIMAL(4,1)", false, "weight (kg)"),
            ("bmi", "DECIMAL(4,1)", false, "body mass index (kg/m2)"),
            ("waist_cm", "DECIMAL(4,1)", false, "waist circumference (cm)"),
            ("sbp", "SMALLINT", false, "systolic blood pressure (mmHg)"),
            ("dbp", "SMALLINT", false, "diastolic blood pressure (mmHg)"),
            ("triglycerides", "SMALLINT", false, "中性脂肪 triglycerides (mg/dL)"),
            ("hdl", "SMALLINT", false, "HDL cholesterol (mg/dL)"),
            ("ldl", "SMALLINT", false, "LDL cholesterol (mg/dL)"),
            ("ast", "SMALLINT", false, "AST/GOT (U/L)"),
            ("alt", "SMALLINT", false, "ALT/GPT (U/L)"),
            ("ggt", "SMALLINT", false, "gamma-GTP (U/L)"),
            ("fasting_glucose", "SMALLINT", false, "空腹時血糖 fasting plasma glucose (mg/dL); NULL when not fasting"),
            ("hba1c", "DECIMAL(3,1)", false, "HbA1c (NGSP, %)"),
            ("urine_glucose", "TEXT", false, "尿糖 urine glucose: - ± + 2+ 3+"),
            ("urine_protein", "TEXT", false, "尿蛋白 urine protein: - ± + 2+ 3+"),
            ("smoking", "BOOLEAN", false, "current smoker (questionnaire)"),
            ("on_bp_medication", "BOOLEAN", false, "taking antihypertensives (questionnaire)"),
            ("on_glucose_medication", "BOOLEAN", false, "taking glucose-lowering drugs or insulin (questionnaire)"),
            ("on_lipid_medication", "BOOLEAN", false, "taking lipid-lowering drugs (questionnaire)"),
        ],
    },
    Table {
        schema: "care",
        name: "certifications",
        file: "care_certifications.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: false,
        desc: "要介護認定 long-term care need certifications (care levels 要支援1-2 support, 要介護1-5 care) valid in the covered period",
        cols: cols![
            ("certification_id", "BIGINT", true, "certification identifier"),
            ("care_insured_number", "TEXT", true, "介護保険被保険者番号 10-digit long-term care insured number"),
            ("insured_category", "SMALLINT", false, "1: 第1号 (65+), 2: 第2号 (40-64, specified diseases)"),
            ("name_kanji", "TEXT", false, "name in kanji"),
            ("name_kana", "TEXT", false, "name in half-width katakana (legacy system)"),
            ("birth_date", "DATE", false, "birth date"),
            ("sex", "SMALLINT", false, "1 male, 2 female"),
            ("postal_code", "TEXT", false, "7-digit postal code"),
            ("application_type", "TEXT", false, "新規 new / 更新 renewal / 区分変更 change of level"),
            ("application_date", "DATE", false, "申請日 application date"),
            ("certification_date", "DATE", false, "認定日 decision date"),
            ("care_level", "TEXT", false, "要支援1 / 要支援2 / 要介護1 ... 要介護5"),
            ("care_level_code", "SMALLINT", false, "12, 13 (要支援1-2), 21-25 (要介護1-5)"),
            ("valid_from", "DATE", false, "認定有効期間 start"),
            ("valid_to", "DATE", false, "認定有効期間 end"),
            ("fiscal_year", "INT", false, "fiscal year of the certification date"),
        ],
    },
    Table {
        schema: "care",
        name: "benefits",
        file: "care_benefits.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: false,
        desc: "介護給付実績 long-term care benefit records, one per person and service month",
        cols: cols![
            ("care_insured_number", "TEXT", true, "介護保険被保険者番号"),
            ("service_month", "DATE", false, "サービス提供年月 first day of the month"),
            ("fiscal_year", "INT", false, "fiscal year of the service month"),
            ("care_level_code", "SMALLINT", false, "care level code in that month"),
            ("service_type", "TEXT", false, "main service used: 訪問介護 home help, 通所介護 day service, 短期入所 short stay, 介護老人福祉施設 nursing home, ..."),
            ("service_days", "SMALLINT", false, "days of service in the month"),
            ("units", "INT", false, "単位数 care units"),
            ("cost_yen", "INT", false, "費用額 total cost (yen)"),
            ("benefit_yen", "INT", false, "保険給付額 insurance benefit (yen)"),
            ("copay_yen", "INT", false, "利用者負担額 co-payment (yen)"),
        ],
    },
    Table {
        schema: "vaccination",
        name: "records",
        file: "vaccinations.csv",
        enc: FileEncoding::ShiftJis,
        partitioned: false,
        desc: "予防接種台帳 municipal vaccination records (routine and special temporary vaccinations)",
        cols: cols![
            ("record_id", "BIGINT", true, "record identifier"),
            ("health_person_number", "TEXT", true, "健康管理システム個人番号: the health-management system's own person number"),
            ("name_kanji", "TEXT", false, "name in kanji"),
            ("name_kana", "TEXT", false, "name in full-width katakana (no space)"),
            ("birth_date", "DATE", false, "birth date"),
            ("sex", "SMALLINT", false, "1 male, 2 female"),
            ("vaccine_code", "TEXT", false, "vaccine code (FLU, PPSV23, COVID19, MR1, MR2, HPV, HZ)"),
            ("vaccine_name", "TEXT", false, "vaccine name"),
            ("dose_number", "SMALLINT", false, "dose number within the series"),
            ("vaccination_date", "DATE", false, "date of vaccination"),
            ("fiscal_year", "INT", false, "fiscal year of vaccination"),
            ("facility_code", "TEXT", false, "facility that vaccinated"),
            ("routine", "BOOLEAN", false, "定期接種 routine vaccination (false: special/voluntary)"),
        ],
    },
    Table {
        schema: "hospital",
        name: "patients",
        file: "hospital_patients.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "EHR extract: patient master of each participating hospital",
        cols: cols![
            ("hospital_code", "TEXT", true, "hospital code (H01, H02, H03)"),
            ("patient_id", "TEXT", true, "the hospital's own patient ID (患者ID)"),
            ("name_kanji", "TEXT", false, "name in kanji as registered"),
            ("name_kana", "TEXT", false, "name in katakana as registered"),
            ("birth_date", "DATE", false, "birth date as registered"),
            ("sex", "TEXT", false, "M / F"),
            ("postal_code", "TEXT", false, "postal code at registration"),
            ("first_visit_date", "DATE", false, "初診日 first visit"),
            ("last_visit_date", "DATE", false, "last visit in the extract"),
        ],
    },
    Table {
        schema: "hospital",
        name: "diagnoses",
        file: "hospital_diagnoses.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "EHR extract: problem list / diagnoses",
        cols: cols![
            ("hospital_code", "TEXT", true, "hospital code"),
            ("patient_id", "TEXT", true, "patient ID"),
            ("icd10", "TEXT", false, "ICD-10 code"),
            ("diagnosis_name", "TEXT", false, "diagnosis name"),
            ("department", "TEXT", false, "診療科 department"),
            ("start_date", "DATE", false, "onset / diagnosis date"),
            ("end_date", "DATE", false, "end date (NULL while ongoing)"),
            ("outcome", "TEXT", false, "転帰: 継続 ongoing / 治癒 cured / 軽快 improved / 死亡 died"),
            ("is_main", "BOOLEAN", false, "main diagnosis of the admission or visit"),
        ],
    },
    Table {
        schema: "hospital",
        name: "prescriptions",
        file: "hospital_prescriptions.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "EHR extract: prescription orders",
        cols: cols![
            ("hospital_code", "TEXT", true, "hospital code"),
            ("patient_id", "TEXT", true, "patient ID"),
            ("order_id", "BIGINT", false, "order identifier"),
            ("order_date", "DATE", false, "order date"),
            ("setting", "TEXT", false, "外来 outpatient / 入院 inpatient"),
            ("drug_code", "TEXT", false, "12-character YJ drug code"),
            ("drug_name", "TEXT", false, "drug name"),
            ("daily_dose", "DOUBLE", false, "dose per day"),
            ("unit", "TEXT", false, "dose unit"),
            ("usage", "TEXT", false, "用法 directions"),
            ("days", "INT", false, "days supplied"),
        ],
    },
    Table {
        schema: "hospital",
        name: "labs",
        file: "hospital_labs.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "EHR extract: laboratory results",
        cols: cols![
            ("hospital_code", "TEXT", true, "hospital code"),
            ("patient_id", "TEXT", true, "patient ID"),
            ("specimen_date", "DATE", false, "specimen collection date"),
            ("test_code", "TEXT", false, "hospital-local test code"),
            ("jlac10", "TEXT", false, "JLAC10 standard test code (17 characters)"),
            ("test_name", "TEXT", false, "test name"),
            ("value", "DOUBLE", false, "numeric result"),
            ("unit", "TEXT", false, "unit"),
            ("ref_low", "DOUBLE", false, "reference range low"),
            ("ref_high", "DOUBLE", false, "reference range high"),
            ("flag", "TEXT", false, "H above / L below the reference range"),
        ],
    },
    Table {
        schema: "truth",
        name: "person_map",
        file: "ground_truth.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "GROUND TRUTH (synthetic data only): maps every source key to the true person; not available in real life",
        cols: cols![
            ("source", "TEXT", true, "resident / claims / checkup / care / vaccination / hospital"),
            ("source_key", "TEXT", true, "resident: atena_number; claims: insurer_number:insured_symbol:insured_number:insured_suffix; checkup: checkup_id; care: care_insured_number; vaccination: health_person_number; hospital: hospital_code:patient_id"),
            ("person_id", "BIGINT", true, "true person identifier (1..N)"),
        ],
    },
    Table {
        schema: "truth",
        name: "persons",
        file: "ground_truth_persons.csv",
        enc: FileEncoding::Utf8,
        partitioned: false,
        desc: "GROUND TRUTH: true attributes of every synthetic person",
        cols: cols![
            ("person_id", "BIGINT", true, "true person identifier"),
            ("household_id", "BIGINT", false, "true household"),
            ("sex", "SMALLINT", false, "1 male, 2 female"),
            ("birth_date", "DATE", false, "true birth date"),
            ("death_date", "DATE", false, "date of death if in the covered period"),
            ("in_date", "DATE", false, "birth or move-in date if in the covered period"),
            ("out_date", "DATE", false, "move-out date if in the covered period"),
            ("surname_kanji", "TEXT", false, "official surname at the start (or birth/move-in)"),
            ("surname_kanji_after_marriage", "TEXT", false, "new surname after a marriage in the period"),
            ("given_kanji", "TEXT", false, "given name"),
            ("name_kana", "TEXT", false, "katakana name at the start"),
            ("conditions", "TEXT", false, "true conditions as ICD10@onset_date, ';'-separated (onset may precede the period)"),
        ],
    },
];

/// The CSV header line of a table.
pub(crate) fn header(t: &Table) -> String {
    let mut s = String::new();
    for (i, c) in t.cols.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(c.name);
    }
    s.push('\n');
    s
}

/// Render `load.sql`.
pub(crate) fn load_sql(persons: u64, seed: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "-- Kura synthetic data load script (kura-datagen).");
    let _ = writeln!(s, "-- Synthetic municipality: {persons} persons, seed {seed}. All data is synthetic.");
    let _ = writeln!(s, "-- File paths are relative to the directory holding this script.");
    let _ = writeln!(s, "-- Dates are ISO YYYY-MM-DD; an empty field is NULL.");
    let mut schemas: Vec<&str> = Vec::new();
    for t in TABLES.iter() {
        if !schemas.contains(&t.schema) {
            schemas.push(t.schema);
        }
    }
    s.push('\n');
    for sc in &schemas {
        let _ = writeln!(s, "CREATE SCHEMA IF NOT EXISTS {sc};");
    }
    for t in TABLES.iter() {
        s.push('\n');
        let _ = writeln!(s, "-- {}.{}: {}", t.schema, t.name, t.desc);
        let _ = writeln!(s, "-- file {} ({})", t.file, t.enc.label());
        let _ = writeln!(s, "CREATE TABLE {}.{} (", t.schema, t.name);
        for (i, c) in t.cols.iter().enumerate() {
            let _ = write!(s, "  {} {}{}", c.name, c.ty, if c.not_null { " NOT NULL" } else { "" });
            s.push_str(if i + 1 < t.cols.len() { ",\n" } else { "\n" });
        }
        if t.partitioned {
            s.push_str(") PARTITIONED BY (fiscal_year);\n");
        } else {
            s.push_str(");\n");
        }
        let _ = writeln!(
            s,
            "COPY {}.{} FROM '{}' WITH (FORMAT csv, HEADER true, ENCODING '{}', DELIMITER ',', NULL '');",
            t.schema,
            t.name,
            t.file,
            t.enc.sql_name()
        );
    }
    s
}

/// Render `README.txt`.
pub(crate) fn readme(persons: u64, seed: u64, municipality: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Kura synthetic medical data (kura-datagen)");
    let _ = writeln!(s, "==========================================");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "A synthetic municipality ({municipality}) of {persons} persons (seed {seed}), fiscal years 2021-2025 \
         (2021-04-01 to 2026-03-31), with its hospitals, insurers and care system. Nothing here is real data."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "Load everything with load.sql (bare file names, relative to this directory).");
    let _ = writeln!(s, "CSV: comma-separated, header line, RFC 4180 quoting when needed, empty field = NULL,");
    let _ = writeln!(s, "dates as YYYY-MM-DD. Municipal files are Shift_JIS (CP932, incl. IBM extension kanji such as");
    let _ = writeln!(s, "髙 and 﨑); checkups are UTF-8 with BOM; hospital EHR extracts and ground truth are plain UTF-8.");
    let _ = writeln!(s);
    let _ = writeln!(s, "Each source has its own keys; none carries the true person ID. truth.person_map maps every");
    let _ = writeln!(s, "(source, source_key) to the true person_id. Identity noise as in real sources: half-width");
    let _ = writeln!(s, "kana, varying separators, old kanji forms, kana typos, surname changes on marriage, insurer");
    let _ = writeln!(s, "changes (jobs, age 75), moves, and occasional mistyped birth dates.");
    for t in TABLES.iter() {
        let _ = writeln!(s);
        let _ = writeln!(s, "{}  ->  {}.{}  [{}]{}", t.file, t.schema, t.name, t.enc.label(), if t.partitioned { "  partitioned by fiscal_year" } else { "" });
        let _ = writeln!(s, "  {}", t.desc);
        for c in t.cols {
            let _ = writeln!(s, "  - {} {}{}: {}", c.name, c.ty, if c.not_null { " NOT NULL" } else { "" }, c.desc);
        }
    }
    s
}
