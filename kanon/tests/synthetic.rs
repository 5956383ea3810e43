//! Seeded synthetic patients: id, age, sex, birth_date, postal_code, icd10, cost.

use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use kura_kanon::{ExtractSpec, Hierarchy, QuasiIdentifier};

/// SplitMix64: tiny, seeded, identical on every platform and toolchain.
pub struct Mix(u64);

impl Mix {
    pub fn new(seed: u64) -> Self {
        Mix(seed)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    /// True with probability `percent / 100`.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// 2025-04-01 (start of fiscal year 2025) in days since 1970-01-01.
pub const REFERENCE_DAY: i32 = 20_179;

const ZONES: &[&str] = &[
    "060", "062", "100", "104", "150", "160", "170", "220", "230", "260", "330", "350", "460",
    "464", "530", "540", "600", "650", "700", "730", "812", "860", "900", "980", "950", "960",
];

const ICD10: &[&str] = &[
    "E119", "E785", "I10", "I48", "I639", "J449", "J189", "C349", "C509", "C169", "K297", "K219",
    "M545", "M170", "F329", "F200", "N184", "G309", "H251", "L209",
];

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("age", DataType::Int32, true),
        Field::new("sex", DataType::Utf8, true),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("postal_code", DataType::Utf8, true),
        Field::new("icd10", DataType::Utf8, true),
        Field::new("cost", DataType::Int64, true),
    ]))
}

/// `rows` patients in batches of `batch_size`. Ages skew old (the max of two uniform draws),
/// birth dates agree with the ages at [`REFERENCE_DAY`], postal codes cluster in 26 zones of
/// 40 towns, about 1% of postal codes and 2% of diagnoses are NULL.
pub fn patients(rows: usize, seed: u64, batch_size: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = schema();
    let mut rng = Mix::new(seed);
    let mut batches = Vec::new();
    let mut id = 0i64;
    while (id as usize) < rows {
        let n = batch_size.min(rows - id as usize);
        let (mut ids, mut ages, mut sexes, mut births, mut postals, mut icds, mut costs) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let age = rng.below(100).max(rng.below(100)) as i32;
            let birth = REFERENCE_DAY - (f64::from(age) * 365.2425) as i32 - rng.below(365) as i32;
            let age = ((REFERENCE_DAY - birth) as f64 / 365.2425) as i32;
            ids.push(id);
            ages.push(age);
            sexes.push(if rng.chance(50) { "M" } else { "F" });
            births.push(birth);
            postals.push((!rng.chance(1)).then(|| {
                let zone = ZONES[rng.below(ZONES.len() as u64) as usize];
                format!("{zone}{:04}", rng.below(40) * 25)
            }));
            icds.push((!rng.chance(2)).then(|| ICD10[rng.below(ICD10.len() as u64) as usize]));
            costs.push(100 + rng.below(100_000) as i64);
            id += 1;
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int32Array::from(ages)),
                Arc::new(StringArray::from(sexes)),
                Arc::new(Date32Array::from(births)),
                Arc::new(StringArray::from(postals)),
                Arc::new(StringArray::from(icds)),
                Arc::new(Int64Array::from(costs)),
            ],
        )
        .unwrap();
        batches.push(batch);
    }
    (schema, batches)
}

/// The four quasi-identifiers of these tests and their hierarchies.
pub fn quasi_identifiers() -> Vec<QuasiIdentifier> {
    vec![
        QuasiIdentifier::new(
            "age",
            Hierarchy::Age {
                widths: vec![5, 10],
                top: Some(90),
            },
        ),
        QuasiIdentifier::new("sex", Hierarchy::Custom { levels: vec![] }),
        QuasiIdentifier::new("birth_date", Hierarchy::Date),
        QuasiIdentifier::new("postal_code", Hierarchy::Postal),
    ]
}

pub const QI_NAMES: [&str; 4] = ["age", "sex", "birth_date", "postal_code"];

/// The spec used throughout: the four quasi-identifiers, 5% suppression.
pub fn spec(k: usize) -> ExtractSpec {
    ExtractSpec::new(quasi_identifiers(), k).with_max_suppression(0.05)
}
