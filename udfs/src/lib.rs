//! Kura's SQL functions for Japanese medical data: date generalisation by fiscal year and, as the
//! anonymisation issue lands, pseudonymisation, age bands, era dates and kana normalisation.
//!
//! Every function here is a vectorised, NULL-safe `ScalarUDFImpl` over Arrow arrays. This crate
//! must not hold or read secrets from SQL arguments (keys live in the engine's key store and are
//! passed into function structs), and must not depend on the engine, catalog or storage.
//!
//! ```
//! let ctx = datafusion::prelude::SessionContext::new();
//! kura_udfs::register_all(&ctx);
//! ```
#![deny(missing_docs)]

mod fiscal;

pub use fiscal::FiscalYear;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Every Kura function, ready to register.
pub fn all() -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(FiscalYear::new())]
}

/// Registers every Kura function in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    for udf in all() {
        ctx.register_udf(udf);
    }
}
