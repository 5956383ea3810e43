//! Micro-benchmarks: each Kura function against the nearest plain DataFusion expression, over a
//! 1,000,000-row in-memory table, through `ctx.sql`. Median of 7 runs after one warm-up, on one
//! partition (target_partitions = 1) so the numbers do not depend on the machine's other load.
//!
//! Run: `cargo bench -p kura-udfs --bench functions`

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

const ROWS: usize = 1_000_000;
const BATCH: usize = 8192;
const RUNS: usize = 7;

/// SplitMix64: deterministic data without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KANA: &[&str] =
    &["ﾔﾏﾀﾞ ﾀﾛｳ", "サトウ　ハナコ", "すずき　いちろう", "ﾊｯﾄﾘ ｷｮｳｺ", "タカハシ・ジュン", "ヴァレンタイン　エミ"];
const ICD: &[&str] = &["E11.9", "i10", "C18.9", "J45", "e785", "M49.0*", "bad"];

fn batch(rng: &mut Rng, n: usize, schema: &Arc<Schema>) -> RecordBatch {
    let mut d = vec![];
    let mut birth = vec![];
    let mut age = vec![];
    let mut x = vec![];
    let mut xi = vec![];
    let mut id = vec![];
    let mut postal = vec![];
    let mut icd = vec![];
    let mut name = vec![];
    let mut wareki = vec![];
    let mut iso = vec![];
    for _ in 0..n {
        let day = 12_000 + rng.below(8_000) as i32; // 2002..2024
        d.push(day);
        birth.push(-14_000 + rng.below(30_000) as i32);
        age.push(rng.below(106) as i32);
        x.push(rng.below(1_000_000) as f64 / 100.0);
        xi.push(rng.below(10_000_000) as i64);
        id.push(format!("P{:08}", rng.below(300_000)));
        let p = rng.below(10_000_000);
        postal.push(if p.is_multiple_of(2) { format!("{:07}", p) } else { format!("{:03}-{:04}", p / 10_000, p % 10_000) });
        icd.push(ICD[rng.below(ICD.len() as u64) as usize].to_string());
        name.push(KANA[rng.below(KANA.len() as u64) as usize].to_string());
        let (y, m, dd) = (2019 + rng.below(7), 1 + rng.below(12), 1 + rng.below(28));
        let (y, m) = if y == 2019 && m < 5 { (2019, 5) } else { (y, m) };
        wareki.push(format!("R{}.{}.{}", y - 2018, m, dd));
        iso.push(format!("{y}-{m:02}-{dd:02}"));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(d)),
        Arc::new(Date32Array::from(birth)),
        Arc::new(Int32Array::from(age)),
        Arc::new(Float64Array::from(x)),
        Arc::new(Int64Array::from(xi)),
        Arc::new(StringArray::from(id)),
        Arc::new(StringArray::from(postal)),
        Arc::new(StringArray::from(icd)),
        Arc::new(StringArray::from(name)),
        Arc::new(StringArray::from(wareki)),
        Arc::new(StringArray::from(iso)),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("batch")
}

fn table() -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("d", DataType::Date32, false),
        Field::new("birth", DataType::Date32, false),
        Field::new("age", DataType::Int32, false),
        Field::new("x", DataType::Float64, false),
        Field::new("xi", DataType::Int64, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("postal", DataType::Utf8, false),
        Field::new("icd", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("wareki", DataType::Utf8, false),
        Field::new("iso", DataType::Utf8, false),
    ]));
    let mut rng = Rng(20_260_401);
    let mut batches = vec![];
    let mut left = ROWS;
    while left > 0 {
        let n = left.min(BATCH);
        batches.push(batch(&mut rng, n, &schema));
        left -= n;
    }
    MemTable::try_new(schema, vec![batches]).expect("memtable")
}

async fn time(ctx: &SessionContext, expr: &str) -> Duration {
    // count(expr) forces evaluation of every row without timing the transfer of 1M strings.
    let sql = format!("SELECT count({expr}) FROM t");
    let run = || async {
        let start = Instant::now();
        let batches = ctx.sql(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await;
        batches.unwrap_or_else(|e| panic!("{sql}: {e}"));
        start.elapsed()
    };
    run().await;
    let mut times = vec![];
    for _ in 0..RUNS {
        times.push(run().await);
    }
    times.sort();
    times[RUNS / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    kura_udfs::register_all(&ctx);
    let keys = kura_udfs::StaticKeyRing::default().with_key("k", [0x5a; 32]);
    kura_udfs::register_keyed(&ctx, Arc::new(keys));
    ctx.register_table("t", Arc::new(table())).expect("register");

    let cases: &[(&str, &str, &str)] = &[
        ("generalize_date month", "generalize_date(d, 'month')", "to_char(d, '%Y-%m')"),
        (
            "generalize_date fiscal_year",
            "generalize_date(d, 'fiscal_year')",
            "concat('FY', CAST(date_part('year', d) - CASE WHEN date_part('month', d) < 4 THEN 1 ELSE 0 END AS BIGINT))",
        ),
        (
            "age_at",
            "age_at(birth, DATE '2025-04-01')",
            "2025 - date_part('year', birth) - CASE WHEN to_char(birth, '%m%d') > '0401' THEN 1 ELSE 0 END",
        ),
        (
            "age_band(age, 5, 90)",
            "age_band(age, 5, 90)",
            "CASE WHEN age >= 90 THEN '90+' WHEN age >= 0 THEN concat(CAST(age / 5 * 5 AS VARCHAR), '-', CAST(age / 5 * 5 + 4 AS VARCHAR)) END",
        ),
        ("round_to int", "round_to(xi, 5)", "CAST(round(xi / 5.0) * 5 AS BIGINT)"),
        ("round_to float", "round_to(x, 0.5)", "round(x / 0.5) * 0.5"),
        ("top_code", "top_code(age, 90)", "least(age, 90)"),
        ("bottom_code", "bottom_code(x, 15.0)", "greatest(x, 15.0)"),
        ("postal_truncate", "postal_truncate(postal, 3)", "substr(replace(postal, '-', ''), 1, 3)"),
        ("icd10_truncate", "icd10_truncate(icd, 3)", "substr(upper(replace(icd, '.', '')), 1, 3)"),
        (
            "mask_text",
            "mask_text(name, 1, 1)",
            "concat(substr(name, 1, 1), repeat('*', character_length(name) - 2), right(name, 1))",
        ),
        ("kana_normalize", "kana_normalize(name)", ""),
        ("pseudonymize", "pseudonymize(id, 'k')", "substr(encode(digest(id, 'sha256'), 'hex'), 1, 32)"),
        ("date_shift", "date_shift(d, id, 'k', 180)", ""),
        ("wareki_to_date", "wareki_to_date(wareki)", "to_date(iso)"),
        ("to_wareki", "to_wareki(d)", "to_char(d, '%Y.%m.%d')"),
    ];

    println!("| function | UDF ms | plain-expression ms | ratio | plain expression |");
    println!("| --- | ---: | ---: | ---: | --- |");
    for (label, udf, plain) in cases {
        let u = time(&ctx, udf).await.as_secs_f64() * 1e3;
        if plain.is_empty() {
            println!("| {label} | {u:.1} | - | - | (no plain equivalent) |");
        } else {
            let p = time(&ctx, plain).await.as_secs_f64() * 1e3;
            println!("| {label} | {u:.1} | {p:.1} | {:.2} | `{plain}` |", u / p);
        }
    }
}
