//! SQL-level behaviour of Kura's functions, as a user of a session sees it.

use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::prelude::SessionContext;
use kura_udfs::{StaticKeyRing, register_all, register_keyed};

const KEY_A: &[u8] = b"kura-test-secret-key-AAAAAAAAAAAA";
const KEY_B: &[u8] = b"kura-test-secret-key-BBBBBBBBBBBB";

fn context() -> SessionContext {
    let ctx = SessionContext::new();
    register_all(&ctx);
    let keys = StaticKeyRing::default().with_key("a", KEY_A).with_key("b", KEY_B);
    register_keyed(&ctx, Arc::new(keys));
    ctx
}

/// Every row of every column, as display strings ("NULL" for NULL).
async fn rows_of(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let batches = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await;
    let batches = batches.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = vec![];
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            "NULL".to_string()
                        } else {
                            ScalarValue::try_from_array(c, r).unwrap().to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The first row.
async fn row(ctx: &SessionContext, sql: &str) -> Vec<String> {
    rows_of(ctx, sql).await.remove(0)
}

/// The error a statement raises at planning or execution.
async fn error_of(ctx: &SessionContext, sql: &str) -> DataFusionError {
    match ctx.sql(sql).await {
        Err(e) => e,
        Ok(df) => match df.collect().await {
            Err(e) => e,
            Ok(b) => panic!("{sql} succeeded: {b:?}"),
        },
    }
}

/// The Kura error at the root of `e`, as the server's edge recovers it.
fn kura_error(e: &DataFusionError) -> &kura_udfs::Error {
    match e.find_root() {
        DataFusionError::External(inner) => inner.downcast_ref().unwrap_or_else(|| panic!("not a Kura error: {e}")),
        other => panic!("not a Kura error: {other}"),
    }
}

// ---------------------------------------------------------------- kana_normalize

#[tokio::test]
async fn kana_spellings_of_one_name_agree() {
    let ctx = context();
    ctx.sql(
        "CREATE TABLE names (n VARCHAR) AS VALUES ('ﾔﾏﾀﾞ ﾀﾛｳ'), ('ヤマダ　タロウ'), ('やまだ　たろう'), ('ヤマダ・タロウ'), \
         ('ﾔﾏﾀﾞ･ﾀﾛｳ'), (NULL)",
    )
    .await
    .unwrap();
    let rows = rows_of(&ctx, "SELECT kana_normalize(n) FROM names").await;
    let expected: Vec<Vec<String>> =
        ["ヤマダタロウ", "ヤマダタロウ", "ヤマダタロウ", "ヤマダタロウ", "ヤマダタロウ", "NULL"]
            .iter()
            .map(|s| vec![s.to_string()])
            .collect();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn kana_small_voiced_and_long_vowels() {
    let ctx = context();
    let r = row(
        &ctx,
        "SELECT kana_normalize('ﾊｯﾄﾘ ｷｮｳｺ'), kana_normalize('ハツトリ　キヨウコ'), kana_normalize('ヴァイオリン'), \
         kana_normalize('ちぢみ　つづき'), kana_normalize('ｻｰﾄｰ'), kana_normalize('サ-ト－'), kana_normalize('A-1')",
    )
    .await;
    assert_eq!(
        r,
        ["ハツトリキヨウコ", "ハツトリキヨウコ", "バイオリン", "チジミツズキ", "サートー", "サートー", "A-1"]
    );
}

#[tokio::test]
async fn kana_accepts_every_string_type() {
    let r = row(
        &context(),
        "SELECT kana_normalize(arrow_cast('ﾀﾞ', 'Utf8View')), kana_normalize(arrow_cast('ﾀﾞ', 'LargeUtf8')), \
         arrow_typeof(kana_normalize(arrow_cast('ﾀﾞ', 'Utf8View')))",
    )
    .await;
    assert_eq!(r, ["ダ", "ダ", "Utf8"]);
}

// ---------------------------------------------------------------- pseudonymize

#[tokio::test]
async fn pseudonyms_are_stable_keyed_and_canonical() {
    let ctx = context();
    let sql = "SELECT pseudonymize('P000123', 'a'), pseudonymize('P000123', 'b'), pseudonymize(42, 'a'), \
               pseudonymize('42', 'a'), pseudonymize(arrow_cast(42, 'Int32'), 'a'), \
               pseudonymize(arrow_cast('42', 'Utf8View'), 'a'), pseudonymize(arrow_cast('42', 'LargeUtf8'), 'a'), \
               pseudonymize(CAST(NULL AS VARCHAR), 'a')";
    let first = row(&ctx, sql).await;
    let again = row(&context(), sql).await;
    assert_eq!(first, again, "stable across calls and sessions");
    assert_eq!(first[0].len(), 32);
    assert!(first[0].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_ne!(first[0], first[1], "different keys give different pseudonyms");
    for i in 3..7 {
        assert_eq!(first[2], first[i], "42 in every type is one identifier");
    }
    assert_eq!(first[7], "NULL");
}

#[tokio::test]
async fn pseudonym_is_hmac_sha256_truncated() {
    // Independent computation with the hmac crate's test vector key: RFC 4231 case 2.
    let ctx = SessionContext::new();
    register_keyed(&ctx, Arc::new(StaticKeyRing::default().with_key("jefe", b"Jefe")));
    let r = row(&ctx, "SELECT pseudonymize('what do ya want for nothing?', 'jefe')").await;
    assert_eq!(r, ["5bdcc146bf60754e6a042426089575c7"]);
}

#[tokio::test]
async fn pseudonymize_over_a_column_keeps_nulls() {
    let ctx = context();
    ctx.sql("CREATE TABLE ids (id BIGINT) AS VALUES (1), (NULL), (1), (2)").await.unwrap();
    let rows = rows_of(&ctx, "SELECT pseudonymize(id, 'a') FROM ids").await;
    assert_eq!(rows[0], rows[2]);
    assert_ne!(rows[0], rows[3]);
    assert_eq!(rows[1], ["NULL"]);
}

#[tokio::test]
async fn unknown_key_and_non_literal_key_are_errors() {
    let ctx = context();
    let e = error_of(&ctx, "SELECT pseudonymize('x', 'nope')").await;
    assert_eq!(kura_error(&e), &kura_udfs::Error::UnknownKey("nope".into()));
    assert!(e.to_string().contains("unknown key \"nope\""), "{e}");

    ctx.sql("CREATE TABLE k (id VARCHAR, key_name VARCHAR) AS VALUES ('x', 'a')").await.unwrap();
    let e = error_of(&ctx, "SELECT pseudonymize(id, key_name) FROM k").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::NotLiteral { argument: "key_name", .. }), "{e}");
}

#[tokio::test]
async fn explain_never_shows_key_bytes() {
    let ctx = context();
    ctx.sql("CREATE TABLE p (id VARCHAR, d DATE) AS VALUES ('P1', DATE '2025-04-01')").await.unwrap();
    let hex: String = KEY_A.iter().map(|b| format!("{b:02x}")).collect();
    let secret = std::str::from_utf8(KEY_A).unwrap();
    for explain in ["EXPLAIN", "EXPLAIN VERBOSE"] {
        let sql = format!("{explain} SELECT pseudonymize(id, 'a'), date_shift(d, id, 'a', 30) FROM p");
        let text = rows_of(&ctx, &sql).await.concat().join("\n");
        assert!(text.contains("pseudonymize"), "{text}");
        assert!(!text.contains(secret) && !text.contains("kura-test-secret") && !text.contains(&hex), "{text}");
        assert!(!text.contains("107, 117, 114, 97"), "key bytes as a Debug byte list: {text}");
    }
}

// ---------------------------------------------------------------- date_shift

#[tokio::test]
async fn date_shift_is_per_person_consistent_and_bounded() {
    let ctx = context();
    ctx.sql(
        "CREATE TABLE v AS SELECT CAST(value AS VARCHAR) AS person, DATE '2025-04-01' AS admitted, \
         DATE '2025-04-11' AS discharged FROM generate_series(1, 400)",
    )
    .await
    .unwrap();
    let rows = rows_of(
        &ctx,
        "SELECT date_shift(discharged, person, 'a', 30) - date_shift(admitted, person, 'a', 30), \
                date_shift(admitted, person, 'a', 30) - admitted, \
                date_shift(admitted, person, 'b', 30) - admitted FROM v",
    )
    .await;
    let mut offsets = std::collections::BTreeSet::new();
    let mut differ_by_key = 0;
    for r in &rows {
        assert_eq!(r[0], "10", "the interval survives the shift");
        let off: i64 = r[1].parse().unwrap();
        assert!((-30..=30).contains(&off));
        offsets.insert(off);
        differ_by_key += usize::from(r[1] != r[2]);
    }
    assert!(offsets.len() > 50, "offsets spread over the range: {offsets:?}");
    assert!(offsets.contains(&-30) || offsets.contains(&30) || offsets.len() > 55);
    assert!(differ_by_key > 350, "a different key gives different offsets");
}

#[tokio::test]
async fn date_shift_offset_cannot_be_read_from_the_pseudonym() {
    // Domain separation: if date_shift used HMAC(key, id) as pseudonymize does, a recipient of
    // pseudonyms could recompute each offset. Recompute it that way and expect no agreement
    // beyond chance (1 in 201 per person).
    let ctx = context();
    let rows = rows_of(
        &ctx,
        "SELECT pseudonymize(CAST(value AS VARCHAR), 'a'), \
                date_shift(DATE '2000-01-01', CAST(value AS VARCHAR), 'a', 100) - DATE '2000-01-01' \
         FROM generate_series(1, 300)",
    )
    .await;
    let agree = rows
        .iter()
        .filter(|r| {
            let first = u64::from_str_radix(&r[0][..16], 16).unwrap();
            let naive = ((u128::from(first) * 201) >> 64) as i64 - 100;
            naive.to_string() == r[1]
        })
        .count();
    assert!(agree < 10, "{agree} of 300 offsets follow from the pseudonym");
}

#[tokio::test]
async fn date_shift_types_nulls_and_arguments() {
    let ctx = context();
    let r = row(
        &ctx,
        "SELECT date_shift(DATE '2025-04-01', 'P1', 'a', 0), date_shift(DATE '2025-04-01', NULL, 'a', 30), \
                date_shift(CAST(NULL AS DATE), 'P1', 'a', 30), \
                arrow_typeof(date_shift(TIMESTAMP '2025-04-01T10:30:00', 'P1', 'a', 30)), \
                CAST(date_shift(TIMESTAMP '2025-04-01T10:30:00', 'P1', 'a', 30) AS DATE) \
                  = date_shift(DATE '2025-04-01', 'P1', 'a', 30), \
                to_char(date_shift(TIMESTAMP '2025-04-01T10:30:00', 'P1', 'a', 30), '%H:%M'), \
                date_shift(DATE '2025-04-01', 7, 'a', 30) = date_shift(DATE '2025-04-01', '7', 'a', 30)",
    )
    .await;
    assert_eq!(r, ["2025-04-01", "NULL", "NULL", "Timestamp(ns)", "true", "10:30", "true"]);

    for (sql, argument) in [
        ("SELECT date_shift(DATE '2025-04-01', 'P1', 'a', -1)", "max_days"),
        ("SELECT date_shift(DATE '2025-04-01', 'P1', 'a', 40000)", "max_days"),
    ] {
        let e = error_of(&ctx, sql).await;
        assert!(
            matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: a, .. } if *a == argument),
            "{e}"
        );
    }
    ctx.sql("CREATE TABLE m (d DATE, n BIGINT) AS VALUES (DATE '2025-04-01', 30)").await.unwrap();
    let e = error_of(&ctx, "SELECT date_shift(d, 'P1', 'a', n) FROM m").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::NotLiteral { argument: "max_days", .. }), "{e}");
}

// ---------------------------------------------------------------- generalize_date, fiscal_year

#[tokio::test]
async fn generalize_date_units_and_fiscal_boundary() {
    let r = row(
        &context(),
        "SELECT generalize_date(DATE '2025-05-17', 'year'), generalize_date(DATE '2025-05-17', 'month'), \
                generalize_date(DATE '2025-05-17', 'quarter'), generalize_date(DATE '2026-03-31', 'fiscal_year'), \
                generalize_date(DATE '2026-04-01', 'fiscal_year'), generalize_date(DATE '2025-12-31', 'quarter'), \
                generalize_date(CAST(NULL AS DATE), 'month'), \
                generalize_date(arrow_cast(arrow_cast(TIMESTAMP '2026-03-31T20:00:00', 'Timestamp(ns, \"UTC\")'), \
                  'Timestamp(ns, \"Asia/Tokyo\")'), 'fiscal_year'), \
                fiscal_year(DATE '2026-03-31')",
    )
    .await;
    assert_eq!(r, ["2025", "2025-05", "2025-Q2", "FY2025", "FY2026", "2025-Q4", "NULL", "FY2026", "2025"]);
}

#[tokio::test]
async fn date_floor_keeps_dates_and_agrees_with_date_trunc() {
    let ctx = context();
    let r = row(
        &ctx,
        "SELECT date_floor(DATE '2025-05-17', 'year'), date_floor(DATE '2025-05-17', 'month'), \
                date_floor(DATE '2025-05-17', 'quarter'), date_floor(DATE '2026-03-31', 'fiscal_year'), \
                date_floor(DATE '2026-04-01', 'fiscal_year'), date_floor(DATE '1900-02-28', 'month'), \
                date_floor(CAST(NULL AS DATE), 'month'), arrow_typeof(date_floor(DATE '2025-05-17', 'month'))",
    )
    .await;
    assert_eq!(r, ["2025-01-01", "2025-05-01", "2025-04-01", "2025-04-01", "2026-04-01", "1900-02-01", "NULL", "Date32"]);
    // Every day of several years, against DataFusion's date_trunc.
    let r = row(
        &ctx,
        "SELECT count(*) FROM (SELECT CAST(DATE '1999-01-01' + arrow_cast(n, 'Int32') AS DATE) AS d FROM unnest(range(0, 3000)) AS t(n)) \
         WHERE date_floor(d, 'month') <> CAST(date_trunc('month', d) AS DATE) \
            OR date_floor(d, 'year') <> CAST(date_trunc('year', d) AS DATE) \
            OR date_floor(d, 'quarter') <> CAST(date_trunc('quarter', d) AS DATE)",
    )
    .await;
    assert_eq!(r, ["0"]);
    let e = error_of(&ctx, "SELECT date_floor(DATE '2025-05-17', 'week')").await;
    assert!(
        matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { function: "date_floor", argument: "unit", .. }),
        "the error names date_floor: {e}"
    );
}

#[tokio::test]
async fn generalize_date_unit_must_be_a_known_literal() {
    let ctx = context();
    let e = error_of(&ctx, "SELECT generalize_date(DATE '2025-05-17', 'week')").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "unit", .. }), "{e}");
    ctx.sql("CREATE TABLE g (d DATE, u VARCHAR) AS VALUES (DATE '2025-05-17', 'year')").await.unwrap();
    let e = error_of(&ctx, "SELECT generalize_date(d, u) FROM g").await;
    assert!(e.to_string().contains("argument `unit` must be a literal"), "{e}");
}

// ---------------------------------------------------------------- age_at, age_band

#[tokio::test]
async fn age_at_counts_completed_years_and_leap_birthdays() {
    let r = row(
        &context(),
        "SELECT age_at(DATE '2000-02-29', DATE '2025-02-28'), age_at(DATE '2000-02-29', DATE '2025-03-01'), \
                age_at(DATE '2000-02-29', DATE '2024-02-29'), age_at(DATE '1960-04-02', DATE '2025-04-01'), \
                age_at(DATE '1960-04-02', DATE '2025-04-02'), age_at(DATE '2025-04-02', DATE '2025-04-01'), \
                age_at(NULL, DATE '2025-04-01'), age_at(DATE '1960-04-02', NULL), \
                age_at(TIMESTAMP '1960-04-02T23:00:00', DATE '2025-04-02'), arrow_typeof(age_at(DATE '2000-01-01', DATE '2001-01-01'))",
    )
    .await;
    assert_eq!(r, ["24", "25", "24", "64", "65", "NULL", "NULL", "NULL", "65", "Int32"]);
}

#[tokio::test]
async fn age_at_over_columns() {
    let ctx = context();
    ctx.sql(
        "CREATE TABLE people (birth DATE, seen DATE) AS VALUES (DATE '1988-02-29', DATE '2023-02-28'), \
         (DATE '1988-02-29', DATE '2023-03-01'), (NULL, DATE '2023-03-01')",
    )
    .await
    .unwrap();
    let rows = rows_of(&ctx, "SELECT age_at(birth, seen), age_at(birth, DATE '2024-02-29') FROM people").await;
    assert_eq!(rows, [["34", "36"], ["35", "36"], ["NULL", "NULL"]]);
}

#[tokio::test]
async fn age_bands_and_top_coding() {
    let ctx = context();
    ctx.sql("CREATE TABLE a (age INT) AS VALUES (0), (4), (42), (89), (90), (104), (-1), (NULL)").await.unwrap();
    let rows = rows_of(&ctx, "SELECT age_band(age, 5, 90), age_band(age, 5), age_band(age, 1) FROM a").await;
    let expected = [
        ["0-4", "0-4", "0"],
        ["0-4", "0-4", "4"],
        ["40-44", "40-44", "42"],
        ["85-89", "85-89", "89"],
        ["90+", "90-94", "90"],
        ["90+", "100-104", "104"],
        ["NULL", "NULL", "NULL"],
        ["NULL", "NULL", "NULL"],
    ];
    assert_eq!(rows, expected);
    let e = error_of(&ctx, "SELECT age_band(age, 5, 92) FROM a").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "top", .. }), "{e}");
    let e = error_of(&ctx, "SELECT age_band(age, 0) FROM a").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "width", .. }), "{e}");
    let e = error_of(&ctx, "SELECT age_band(age, age) FROM a").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::NotLiteral { argument: "width", .. }), "{e}");
}

// ---------------------------------------------------------------- postal_truncate, icd10_truncate

#[tokio::test]
async fn postal_codes_truncate_or_null() {
    let ctx = context();
    ctx.sql(
        "CREATE TABLE z (p VARCHAR) AS VALUES ('8020011'), ('802-0011'), ('８０２－００１１'), ('〒060-0001'), \
         ('80-20011'), ('802001'), ('abc'), (NULL)",
    )
    .await
    .unwrap();
    let rows = rows_of(&ctx, "SELECT postal_truncate(p, 3), postal_truncate(p, 7) FROM z").await;
    let expected = [
        ["802", "8020011"],
        ["802", "8020011"],
        ["802", "8020011"],
        ["060", "0600001"],
        ["NULL", "NULL"],
        ["NULL", "NULL"],
        ["NULL", "NULL"],
        ["NULL", "NULL"],
    ];
    assert_eq!(rows, expected);
    let e = error_of(&ctx, "SELECT postal_truncate(p, 8) FROM z").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "digits", .. }), "{e}");
}

#[tokio::test]
async fn icd10_codes_normalise_truncate_or_null() {
    let r = row(
        &context(),
        "SELECT icd10_truncate('e11.9', 3), icd10_truncate('E11.9', 4), icd10_truncate(' i10 ', 4), \
                icd10_truncate('Ｃ１８．９', 3), icd10_truncate('A18.0+', 4), icd10_truncate('E1', 3), \
                icd10_truncate('11.9', 3), icd10_truncate('糖尿病', 3), icd10_truncate(NULL, 3)",
    )
    .await;
    assert_eq!(r, ["E11", "E119", "I10", "C18", "A180", "NULL", "NULL", "NULL", "NULL"]);
    let e = error_of(&context(), "SELECT icd10_truncate('E11', 2)").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "len", .. }), "{e}");
}

// ---------------------------------------------------------------- round_to, top_code, bottom_code

#[tokio::test]
async fn numeric_coding_by_type() {
    let r = row(
        &context(),
        "SELECT round_to(147, 5), round_to(148, 5), round_to(-15, 10), round_to(arrow_cast(15, 'Int32'), 10), \
                arrow_typeof(round_to(arrow_cast(15, 'Int16'), 10)), round_to(2.5, 1), round_to(-7.5, 5), \
                round_to(CAST(99.95 AS DECIMAL(4,2)), 0.1), arrow_typeof(round_to(CAST(99.95 AS DECIMAL(4,2)), 0.1)), \
                top_code(104, 90), top_code(85, 90), bottom_code(12.5, 15), bottom_code(arrow_cast(3, 'Int32'), 5), \
                top_code(CAST(123.45 AS DECIMAL(5,2)), 100), top_code(CAST(NULL AS BIGINT), 90), \
                arrow_typeof(top_code(1.5, 1))",
    )
    .await;
    assert_eq!(
        r,
        [
            "145",
            "150",
            "-20",
            "20",
            "Int32",
            "3",
            "-10",
            "100.00",
            "Decimal128(5, 2)",
            "90",
            "85",
            "15",
            "5",
            "100.00",
            "NULL",
            "Float64"
        ]
    );
}

#[tokio::test]
async fn numeric_coding_arguments_and_overflow() {
    let ctx = context();
    for (sql, argument) in [
        ("SELECT round_to(10, 0)", "step"),
        ("SELECT round_to(10, -5)", "step"),
        ("SELECT round_to(10, 2.5)", "step"),
        ("SELECT top_code(CAST(1.5 AS DECIMAL(3,1)), 1.25)", "max"),
    ] {
        let e = error_of(&ctx, sql).await;
        assert!(
            matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: a, .. } if *a == argument),
            "{sql}: {e}"
        );
    }
    ctx.sql("CREATE TABLE big (x INT) AS VALUES (2147483647)").await.unwrap();
    let e = error_of(&ctx, "SELECT round_to(x, 10) FROM big").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::OutOfRange { .. }), "{e}");
    assert!(!e.to_string().contains("2147483647"), "{e}");
}

// ---------------------------------------------------------------- mask_text

#[tokio::test]
async fn mask_text_by_character() {
    let r = row(
        &context(),
        "SELECT mask_text('山田太郎', 1, 1), mask_text('09012345678', 3, 2, '#'), mask_text('山田', 1, 1), \
                mask_text('abc', 2, 2), mask_text('', 1, 1), mask_text(NULL, 1, 1), mask_text('ﾔﾏﾀﾞ', 1, 0, '＊'), \
                mask_text(arrow_cast('secret', 'Utf8View'), 0, 0)",
    )
    .await;
    assert_eq!(r, ["山**郎", "090######78", "**", "***", "", "NULL", "ﾔ＊＊＊", "******"]);
    let e = error_of(&context(), "SELECT mask_text('abc', 1, 1, '**')").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "mask_char", .. }), "{e}");
}

// ---------------------------------------------------------------- wareki

#[tokio::test]
async fn wareki_forms_and_era_boundaries() {
    let r = row(
        &context(),
        "SELECT wareki_to_date('R7.4.1'), wareki_to_date('R07.04.01'), wareki_to_date('H31.4.30'), \
                wareki_to_date('令和7年4月1日'), wareki_to_date('令和元年5月1日'), wareki_to_date('S64.1.7'), \
                wareki_to_date('5070401'), wareki_to_date('H1.1.8'), wareki_to_date(NULL), wareki_to_date(''), \
                wareki_to_date(arrow_cast('Ｒ７．４．１', 'Utf8View'))",
    )
    .await;
    assert_eq!(
        r,
        [
            "2025-04-01",
            "2025-04-01",
            "2019-04-30",
            "2025-04-01",
            "2019-05-01",
            "1989-01-07",
            "2025-04-01",
            "1989-01-08",
            "NULL",
            "NULL",
            "2025-04-01"
        ]
    );
}

#[tokio::test]
async fn to_wareki_styles_and_transitions() {
    let r = row(
        &context(),
        "SELECT to_wareki(DATE '2019-04-30'), to_wareki(DATE '2019-05-01'), to_wareki(DATE '1989-01-07'), \
                to_wareki(DATE '1989-01-08'), to_wareki(DATE '2019-05-01', 'kanji'), to_wareki(DATE '2025-04-01', 'kanji'), \
                to_wareki(DATE '2025-04-01', 'code'), to_wareki(DATE '1989-01-07', 'code'), to_wareki(DATE '1868-01-24'), \
                to_wareki(NULL), to_wareki(TIMESTAMP '2019-04-30T23:59:59')",
    )
    .await;
    assert_eq!(
        r,
        [
            "H31.4.30",
            "R1.5.1",
            "S64.1.7",
            "H1.1.8",
            "令和元年5月1日",
            "令和7年4月1日",
            "5070401",
            "3640107",
            "NULL",
            "NULL",
            "H31.4.30"
        ]
    );
    let e = error_of(&context(), "SELECT to_wareki(DATE '2025-04-01', 'long')").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "style", .. }), "{e}");
}

#[tokio::test]
async fn wareki_errors_never_echo_the_value() {
    let ctx = context();
    for bad in ["H31.5.1", "S64.1.8", "R1.4.30", "R7.2.30", "ヤマダタロウ", "5990431", "令和七年"] {
        let e = error_of(&ctx, &format!("SELECT wareki_to_date('{bad}')")).await;
        let message = e.to_string();
        assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidValue { argument: "text", .. }), "{message}");
        assert!(message.contains("wareki_to_date"), "{message}");
        assert!(!message.contains(bad), "error echoes the value: {message}");
    }
    // Over a column, as a probing query would run it.
    ctx.sql("CREATE TABLE patients (name VARCHAR) AS VALUES ('R7.4.1'), ('サトウハナコ')").await.unwrap();
    let e = error_of(&ctx, "SELECT wareki_to_date(name) FROM patients").await;
    assert!(!e.to_string().contains("サトウハナコ"), "{e}");
    assert!(e.to_string().contains("era date"), "{e}");
}

#[tokio::test]
async fn every_function_is_documented_and_immutable() {
    let ctx = context();
    let state = ctx.state();
    let names = [
        "fiscal_year",
        "generalize_date",
        "date_floor",
        "age_at",
        "age_band",
        "postal_truncate",
        "icd10_truncate",
        "round_to",
        "top_code",
        "bottom_code",
        "mask_text",
        "kana_normalize",
        "wareki_to_date",
        "to_wareki",
        "pseudonymize",
        "date_shift",
    ];
    for name in names {
        let udf = state.scalar_functions().get(name).unwrap_or_else(|| panic!("{name} not registered"));
        assert_eq!(udf.signature().volatility, datafusion::logical_expr::Volatility::Immutable, "{name}");
        let doc = udf.documentation().unwrap_or_else(|| panic!("{name} undocumented"));
        assert!(doc.sql_example.is_some(), "{name}");
    }
    assert_eq!(kura_udfs::all().len() + 2, names.len());
}

#[tokio::test]
async fn null_literals_propagate() {
    let r = row(
        &context(),
        "SELECT pseudonymize(NULL, 'a'), date_shift(NULL, NULL, 'a', 3), generalize_date(NULL, 'month'), \
                age_band(NULL, 5), age_band(42, NULL), postal_truncate(NULL, 3), round_to(NULL, 5), top_code(7, NULL), \
                mask_text(NULL, 1, 1), kana_normalize(NULL), to_wareki(NULL, 'kanji'), icd10_truncate('E11', NULL), \
                pseudonymize('x', NULL)",
    )
    .await;
    assert!(r.iter().all(|v| v == "NULL"), "{r:?}");
}

#[tokio::test]
async fn keyed_functions_debug_without_key_bytes() {
    // DataFusion prints function structs with Debug (plans, logs): the ring must not print bytes.
    let ring: Arc<dyn kura_udfs::KeyRing> = Arc::new(StaticKeyRing::default().with_key("a", KEY_A));
    for udf in kura_udfs::keyed(ring) {
        let debug = format!("{:?} {:#?}", udf, udf.inner());
        assert!(debug.contains("\"a\""), "{debug}");
        assert!(!debug.contains("kura-test-secret") && !debug.contains("107, 117, 114, 97"), "{debug}");
    }
}

#[tokio::test]
async fn key_name_from_data_is_never_looked_up() {
    // SECURITY: a key name computed from data (a scalar subquery over patients) must fail the
    // literal check, not reach the ring, whose `unknown key "..."` error would echo the name.
    let ctx = context();
    ctx.sql("CREATE TABLE patients (name VARCHAR) AS VALUES ('サトウハナコ')").await.unwrap();
    let e = error_of(&ctx, "SELECT pseudonymize('x', (SELECT name FROM patients LIMIT 1))").await;
    assert!(!e.to_string().contains("サトウハナコ"), "{e}");
    let e = error_of(&ctx, "SELECT pseudonymize('x', 5)").await;
    assert!(matches!(kura_error(&e), kura_udfs::Error::InvalidArgument { argument: "key_name", .. }), "{e}");
}

#[tokio::test]
async fn fiscal_year_of_malformed_text_is_null_not_an_error() {
    let ctx = context();
    ctx.sql("CREATE TABLE f (t VARCHAR) AS VALUES ('2025-04-01'), ('ヤマダタロウ')").await.unwrap();
    let rows = rows_of(&ctx, "SELECT fiscal_year(t) FROM f").await;
    assert_eq!(rows, [["2025"], ["NULL"]]);
}
