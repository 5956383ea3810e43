//! Kura's test support: the sqllogictest driver and synthetic fixture files.
//!
//! It owns nothing the product uses; it must never be a dependency of a product crate.
#![deny(missing_docs)]

pub mod fixtures;
pub mod slt_db;
