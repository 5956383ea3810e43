//! Kura's SQL functions for Japanese medical data: the generalisation and pseudonymisation steps
//! of 加工 (processing) that turn source records into 匿名加工 (anonymised) and 仮名加工
//! (pseudonymised) extracts, plus the parsing a linker needs (era dates, kana names).
//!
//! | concern | functions |
//! | --- | --- |
//! | keyed ([`keyed`]) | `pseudonymize`, `date_shift` |
//! | dates | `fiscal_year`, `generalize_date`, `age_at`, `age_band`, `wareki_to_date`, `to_wareki` |
//! | numbers | `round_to`, `top_code`, `bottom_code` |
//! | codes and text | `postal_truncate`, `icd10_truncate`, `mask_text`, `kana_normalize` |
//!
//! Invariants every function holds:
//! - Vectorised over Arrow arrays and NULL-safe: NULL in gives NULL out (`is_strict`).
//! - SECURITY: errors never contain a data value ([`Error`] cannot carry one), because an error
//!   is an oracle: malformed data gives NULL where the function is a generaliser, and an error
//!   naming only the function, argument and expected form where it is a parser.
//! - SECURITY: key bytes come from a [`KeyRing`] held by the function struct, never from SQL
//!   arguments: query text is logged and printed by `EXPLAIN`.
//! - Configuration arguments (units, widths, key names) are literals, checked when the query is
//!   planned.
//!
//! This crate must not depend on the engine, catalog or storage; the engine decides which
//! functions a role's session gets.
//!
//! ```
//! use std::sync::Arc;
//! let ctx = datafusion::prelude::SessionContext::new();
//! kura_udfs::register_all(&ctx);
//! let keys = kura_udfs::StaticKeyRing::default().with_key("provision_2026_04", [7u8; 32]);
//! kura_udfs::register_keyed(&ctx, Arc::new(keys));
//! ```
#![deny(missing_docs)]

mod age;
mod args;
mod calendar;
mod codes;
mod error;
mod fiscal;
mod generalize;
mod kana;
mod keys;
mod mask;
mod numeric;
mod pseudonym;
mod shift;
mod wareki;

pub use age::{AgeAt, AgeBand};
pub use codes::{Icd10Truncate, PostalTruncate};
pub use error::{Error, Result};
pub use fiscal::FiscalYear;
pub use generalize::{DateFloor, GeneralizeDate};
pub use kana::KanaNormalize;
pub use keys::{KeyRing, StaticKeyRing};
pub use mask::MaskText;
pub use numeric::NumericCoding;
pub use pseudonym::Pseudonymize;
pub use shift::DateShift;
pub use wareki::{ToWareki, WarekiToDate, era_code_date, era_code_month};

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Every Kura function that needs no key, ready to register.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(FiscalYear::new()),
        ScalarUDF::from(GeneralizeDate::new()),
        ScalarUDF::from(DateFloor::new()),
        ScalarUDF::from(AgeAt::new()),
        ScalarUDF::from(AgeBand::new()),
        ScalarUDF::from(PostalTruncate::new()),
        ScalarUDF::from(Icd10Truncate::new()),
        ScalarUDF::from(NumericCoding::round_to()),
        ScalarUDF::from(NumericCoding::top_code()),
        ScalarUDF::from(NumericCoding::bottom_code()),
        ScalarUDF::from(MaskText::new()),
        ScalarUDF::from(KanaNormalize::new()),
        ScalarUDF::from(WarekiToDate::new()),
        ScalarUDF::from(ToWareki::new()),
    ]
}

/// The keyed functions (`pseudonymize`, `date_shift`) over `keys`.
pub fn keyed(keys: Arc<dyn KeyRing>) -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(Pseudonymize::new(keys.clone())), ScalarUDF::from(DateShift::new(keys))]
}

/// Registers every key-free Kura function in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    for udf in all() {
        ctx.register_udf(udf);
    }
}

/// Registers the keyed functions over `keys` in `ctx`.
pub fn register_keyed(ctx: &SessionContext, keys: Arc<dyn KeyRing>) {
    for udf in keyed(keys) {
        ctx.register_udf(udf);
    }
}
