//! k-anonymous extracts of medical data: the last measure of 匿名加工医療情報 (anonymised medical
//! information), the one that fits the database as a whole.
//!
//! This crate owns choosing a generalisation and a suppression that make a table k-anonymous
//! (every combination of quasi-identifier values shared by at least k rows), optionally
//! distinct l-diverse on a sensitive column, with minimal information loss; applying it to Arrow
//! record batches; and reporting what it did ([`Report`]), for the provision record and the
//! review committee.
//!
//! It must not run SQL, read or write storage, or depend on the engine: it takes batches and a
//! spec and returns batches and a report. Deleting direct identifiers, replacing identification
//! codes and choosing the quasi-identifiers are the caller's steps; columns the spec does not
//! name pass through unchanged.
//!
//! Design, following ARX: full-domain generalisation over the lattice of level combinations of
//! the quasi-identifiers' [`Hierarchy`]s, with record suppression of the equivalence classes
//! that stay smaller than k, up to a limit. The input is grouped once into distinct
//! quasi-identifier tuples; each lattice node is evaluated over those tuples, never the rows.
//! Nodes are visited in increasing lower bound of information loss, nodes below a failing node
//! are pruned (anonymity is monotone), and the search stops when the bound passes the best loss
//! found. Errors name columns and counts, never values.
//!
//! ```
//! use std::sync::Arc;
//! use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
//! use datafusion::arrow::datatypes::{DataType, Field, Schema};
//! use kura_kanon::{anonymize, ExtractSpec, Hierarchy, QuasiIdentifier};
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("age", DataType::Int32, true),
//!     Field::new("icd10", DataType::Utf8, true),
//! ]));
//! let batch = RecordBatch::try_new(Arc::clone(&schema), vec![
//!     Arc::new(Int32Array::from(vec![41, 42, 43, 47, 93])),
//!     Arc::new(StringArray::from(vec!["E11", "I10", "E11", "C34", "I10"])),
//! ])?;
//! let spec = ExtractSpec::new(
//!     vec![QuasiIdentifier::new("age", Hierarchy::Age { widths: vec![5, 10], top: Some(90) })],
//!     2,
//! )
//! .with_max_suppression(0.2);
//!
//! let (_schema, batches, report) = anonymize(schema, &[batch], &spec)?;
//! // Ages fall in the 5-year band 40-44 (three rows); 47 and 93 are alone in their
//! // bands and one suppressed row is allowed, so the 10-year band wins: 40-49 (four rows),
//! // with 93 (top-coded "90+", alone) suppressed.
//! assert_eq!(report.levels[0].level, 2);
//! assert_eq!(report.rows_suppressed, 1);
//! assert!(report.k_reached >= 2);
//! assert_eq!(batches[0].num_rows(), 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod error;
mod extract;
mod group;
mod hierarchy;
mod postal;
mod search;
mod spec;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use extract::anonymize;
pub use hierarchy::Hierarchy;
pub use spec::{AppliedLevel, ExtractSpec, LDiversity, QuasiIdentifier, Report};
