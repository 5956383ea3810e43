//! The tables a claims (レセプト電算) load fills, and the columns of each.
//!
//! Identity stays in one place: the claim header (`claims`) holds everything that names or
//! numbers the patient (氏名, カタカナ氏名, birth date, sex, insurance card and public-fund
//! recipient numbers), like the generator's `claims.medical_claims`, so a linkage source reads
//! it and a linked table replaces it with `research_id`. The detail tables hold only the claim
//! ID and what was billed.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// One column: name, type, NULL-able.
pub(crate) type Col = (&'static str, DataType, bool);

/// A table of the load.
pub(crate) struct TableDef {
    pub name: &'static str,
    pub cols: fn() -> Vec<Col>,
}

impl TableDef {
    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new((self.cols)().into_iter().map(|(n, t, null)| Field::new(n, t, null)).collect::<Vec<_>>()))
    }
}

use DataType::{Boolean, Date32, Float64, Int16, Int32, Int64, Utf8};

fn claims() -> Vec<Col> {
    vec![
        ("claim_id", Int64, false),
        ("claim_kind", Utf8, false),
        ("payer", Utf8, true),
        ("facility_code", Utf8, false),
        ("billing_month", Date32, false),
        ("receipt_number", Int32, false),
        ("receipt_type", Utf8, false),
        ("setting", Utf8, true),
        ("service_month", Date32, false),
        ("fiscal_year", Int32, false),
        ("name_kanji", Utf8, true),
        ("name_kana", Utf8, true),
        ("sex", Int16, false),
        ("birth_date", Date32, false),
        ("insurer_number", Utf8, true),
        ("insured_symbol", Utf8, true),
        ("insured_number", Utf8, true),
        ("insured_suffix", Utf8, true),
        ("insured_number_public", Utf8, true),
        ("benefit_ratio", Int16, true),
        ("admission_date", Date32, true),
        ("actual_days", Int16, true),
        ("total_points", Int32, true),
        ("patient_burden", Int64, true),
        ("file", Utf8, false),
        ("line", Int64, false),
    ]
}

fn insurers() -> Vec<Col> {
    vec![
        ("claim_id", Int64, false),
        ("fiscal_year", Int32, false),
        ("seq", Int16, false),
        ("kind", Utf8, false),
        ("payer_number", Utf8, true),
        ("actual_days", Int16, true),
        ("total_points", Int32, true),
        ("burden", Int64, true),
    ]
}

fn diagnoses() -> Vec<Col> {
    vec![
        ("claim_id", Int64, false),
        ("fiscal_year", Int32, false),
        ("seq", Int16, false),
        ("disease_code", Utf8, false),
        ("start_date", Date32, true),
        ("outcome", Utf8, true),
        ("modifier_codes", Utf8, true),
        ("disease_name", Utf8, true),
        ("is_main", Boolean, false),
        ("is_suspected", Boolean, false),
        ("comment", Utf8, true),
    ]
}

fn items() -> Vec<Col> {
    vec![
        ("claim_id", Int64, false),
        ("fiscal_year", Int32, false),
        ("seq", Int16, false),
        ("category", Utf8, true),
        ("burden", Utf8, true),
        ("code", Utf8, false),
        ("quantity", Float64, true),
        ("points", Int32, true),
        ("times", Int32, true),
    ]
}

fn materials() -> Vec<Col> {
    let mut c = items();
    c.extend([("unit_code", Utf8, true), ("unit_price", Float64, true), ("product_name", Utf8, true)]);
    c
}

fn files() -> Vec<Col> {
    vec![
        ("batch_id", Utf8, false),
        ("file", Utf8, false),
        ("sha256", Utf8, false),
        ("claim_kind", Utf8, false),
        ("payer", Utf8, true),
        ("facility_code", Utf8, false),
        ("facility_name", Utf8, true),
        ("billing_month", Date32, false),
        ("receipts", Int64, false),
        ("total_points", Int64, false),
        ("loaded_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]
}

fn rejects() -> Vec<Col> {
    vec![
        ("batch_id", Utf8, false),
        ("file", Utf8, false),
        ("line", Int64, false),
        ("record_type", Utf8, true),
        ("receipt_line", Int64, true),
        ("field", Utf8, true),
        ("error", Utf8, false),
        ("rejected_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]
}

/// Index of each table in [`TABLES`].
pub(crate) mod t {
    pub const CLAIMS: usize = 0;
    pub const INSURERS: usize = 1;
    pub const DIAGNOSES: usize = 2;
    pub const PROCEDURES: usize = 3;
    pub const DRUGS: usize = 4;
    pub const MATERIALS: usize = 5;
    pub const FILES: usize = 6;
    pub const REJECTS: usize = 7;
    pub const COUNT: usize = 8;
}

/// The tables, in commit order: details first, the file list last but one (a batch is complete
/// when `receipt_files` has it), rejects last.
pub(crate) static TABLES: [TableDef; t::COUNT] = [
    TableDef { name: "claims", cols: claims },
    TableDef { name: "insurers", cols: insurers },
    TableDef { name: "diagnoses", cols: diagnoses },
    TableDef { name: "procedures", cols: items },
    TableDef { name: "drugs", cols: items },
    TableDef { name: "materials", cols: materials },
    TableDef { name: "receipt_files", cols: files },
    TableDef { name: "receipt_rejects", cols: rejects },
];
