//! Parsing claims files (レセプト電算処理システム, "electronic receipt processing" format) into
//! rows of the tables in [`super::layout`].
//!
//! A file is CSV without quoting, in Shift_JIS (CP932), one record per line (CR LF; a final
//! 0x1A end-of-file mark is allowed). Each record starts with its two-letter type. Kura reads the
//! fields below (1-based, per the 記録条件仕様 "record specification"; later fields are ignored):
//!
//! | record | fields read |
//! | --- | --- |
//! | `IR` 医療機関情報 facility | 2 審査支払機関 payer (1 社保, 2 国保), 3 都道府県 prefecture, 4 点数表 (1 医科 medical, 3 歯科 dental), 5 医療機関コード (7 digits), 7 name, 8 請求年月 billing month |
//! | `RE` レセプト共通 receipt | 2 レセプト番号, 3 レセプト種別 (4 digits), 4 診療年月 service month, 5 氏名 name, 6 男女区分 sex, 7 生年月日 birth date, 8 給付割合 benefit ratio, 9 入院年月日 admission, 37 カタカナ氏名 kana name |
//! | `HO` 医療保険 insurance | 2 保険者番号, 3 記号, 4 番号, 5 診療実日数 days, 6 合計点数 points, 12 負担金額 burden, 16 枝番 suffix |
//! | `KO` 公費 public fund | 2 公費負担者番号, 3 公費受給者番号, 5 days, 6 points, 7 burden |
//! | `SY` 傷病名 diagnosis | 2 傷病名コード, 3 診療開始日, 4 転帰区分 outcome, 5 修飾語コード modifiers (8002 疑い suspected), 6 傷病名称, 7 主傷病 (01 main), 8 comment |
//! | `SI` 診療行為 procedure, `IY` 医薬品 drug, `TO` 特定器材 material | 2 診療識別, 3 負担区分, 4 code (9 digits), 5 数量/使用量 quantity, 6 点数, 7 回数; `TO` also 8 単位コード, 9 単価, 11 商品名 |
//! | `GO` 請求書 trailer | 2 総件数 receipts, 3 総合計点数 points |
//!
//! Dates are era code (1 明治 .. 5 令和) + `YYMMDD`, months era code + `YYMM`. Records of types
//! Kura does not load (`CO` comments, `SJ` 症状詳記, `JD` 受診日, `MF` 窓口負担, `GR`, `KH`, `SN`,
//! `TI`, `TR`, `TS`) are accepted and counted; any other type is malformed.
//!
//! The unit of acceptance is the receipt, as in the claims review itself (返戻, a receipt sent
//! back whole): a malformed record rejects the receipt it belongs to. A malformed `IR`, a missing
//! or disagreeing `GO` trailer (a truncated file) or a byte sequence invalid in the encoding
//! rejects the file. Error messages name the file, line, record type and field, never a value:
//! these records carry names and card numbers.

use crate::receipts::layout::t;

/// A field value on its way into a column.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Null,
    Str(String),
    I64(i64),
    F64(f64),
    Date(i32),
    Bool(bool),
}

/// Rows for each table (in [`super::layout::TABLES`] order), in columns' order.
pub(crate) type Rows = [Vec<Vec<Val>>; t::COUNT];

/// One rejected record (or file).
#[derive(Debug, Clone)]
pub(crate) struct Reject {
    pub file: String,
    pub line: u64,
    pub record_type: Option<String>,
    /// Line of the RE record of the receipt rejected with it, if any.
    pub receipt_line: Option<u64>,
    /// Which field (`field 3 (診療開始日 start date)`), if one.
    pub field: Option<String>,
    pub error: String,
}

/// What a file's sections add to `receipt_files`.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub claim_kind: &'static str,
    pub payer: Option<&'static str>,
    pub facility_code: String,
    pub facility_name: Option<String>,
    pub billing_month: i32,
    pub receipts: i64,
    pub points: i64,
}

/// Everything parsed from one file.
#[derive(Debug, Default)]
pub(crate) struct FileResult {
    pub rows: Rows,
    pub rejects: Vec<Reject>,
    pub sections: Vec<Section>,
    pub receipts: u64,
    pub skipped_records: u64,
}

/// Record types that are valid but not loaded.
const SKIPPED: &[&str] = &["CO", "SJ", "JD", "MF", "GR", "KH", "SN", "TI", "TR", "TS"];

struct Bad {
    field: Option<String>,
    error: String,
}

fn bad(field: usize, what: &str, problem: &str) -> Bad {
    Bad { field: Some(format!("field {field} ({what})")), error: format!("field {field} ({what}) {problem}") }
}

/// The record's fields.
struct Rec<'a> {
    fields: Vec<&'a str>,
}

impl<'a> Rec<'a> {
    /// Field `i` (1-based), trimmed of spaces (full-width too); "" when absent.
    fn get(&self, i: usize) -> &'a str {
        self.fields.get(i - 1).map_or("", |s| s.trim_matches([' ', '\u{3000}']))
    }
    fn opt(&self, i: usize) -> Option<&'a str> {
        Some(self.get(i)).filter(|s| !s.is_empty())
    }
    fn text(&self, i: usize) -> Val {
        self.opt(i).map_or(Val::Null, |s| Val::Str(s.to_string()))
    }
    fn required(&self, i: usize, what: &str) -> Result<&'a str, Bad> {
        self.opt(i).ok_or_else(|| bad(i, what, "is empty"))
    }
    fn digits(&self, i: usize, what: &str, lens: &[usize]) -> Result<Option<&'a str>, Bad> {
        match self.opt(i) {
            None => Ok(None),
            Some(s) if s.bytes().all(|b| b.is_ascii_digit()) && (lens.is_empty() || lens.contains(&s.len())) => {
                Ok(Some(s))
            }
            Some(_) if lens.is_empty() => Err(bad(i, what, "is not a number")),
            Some(_) => Err(bad(
                i,
                what,
                &format!("must be {} digits", lens.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(" or ")),
            )),
        }
    }
    fn int(&self, i: usize, what: &str, max: i64) -> Result<Val, Bad> {
        match self.digits(i, what, &[])? {
            None => Ok(Val::Null),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n <= max => Ok(Val::I64(n)),
                _ => Err(bad(i, what, "is out of range")),
            },
        }
    }
    fn number(&self, i: usize, what: &str) -> Result<Val, Bad> {
        match self.opt(i) {
            None => Ok(Val::Null),
            Some(s) if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                s.parse::<f64>().map(Val::F64).map_err(|_| bad(i, what, "is not a number"))
            }
            Some(_) => Err(bad(i, what, "is not a number")),
        }
    }
    fn date(&self, i: usize, what: &str) -> Result<Option<i32>, Bad> {
        match self.opt(i) {
            None => Ok(None),
            Some(s) => kura_udfs::era_code_date(s)
                .map(Some)
                .ok_or_else(|| bad(i, what, "is not an era date (era code 1-5 + YYMMDD)")),
        }
    }
    fn month(&self, i: usize, what: &str) -> Result<i32, Bad> {
        let s = self.required(i, what)?;
        kura_udfs::era_code_month(s).ok_or_else(|| bad(i, what, "is not an era month (era code 1-5 + YYMM)"))
    }
    fn min_fields(&self, n: usize) -> Result<(), Bad> {
        if self.fields.len() < n {
            return Err(Bad { field: None, error: format!("has {} fields, at least {n} expected", self.fields.len()) });
        }
        Ok(())
    }
}

/// The facility section being read (from its IR record).
struct Ir {
    kind: &'static str,
    kind_digit: u8,
    payer: Option<&'static str>,
    facility_code: String,
    facility_name: Option<String>,
    billing_month: i32,
    receipts: i64,
    points: i64,
}

/// The receipt being read: its rows wait here until the receipt is complete and sound.
struct Receipt {
    line: u64,
    claim_id: i64,
    fiscal_year: i32,
    header: Vec<Val>,
    rows: Vec<(usize, Vec<Val>)>,
    seq: [i64; t::COUNT],
    insurance_points: Option<i64>,
    has_ho: bool,
    public_recipients: Vec<String>,
    bad: Vec<Reject>,
}

fn fiscal_year(days: i32) -> i32 {
    let d = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap_or_default();
    use chrono::Datelike;
    if d.month() >= 4 { d.year() } else { d.year() - 1 }
}

/// A claim's ID: 63 bits of SHA-256 over the file's digest and the RE record's line, so a
/// reload of the same file gives the same IDs and no two receipts share one.
fn claim_id(file_digest: &[u8], line: u64) -> i64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(file_digest);
    ctx.update(&line.to_be_bytes());
    let d = ctx.finish();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    (u64::from_be_bytes(b) >> 1) as i64
}

/// Parses one file's bytes. `display` names it in rejects; `digest` is its SHA-256.
pub(crate) fn parse_file(display: &str, bytes: &[u8], digest: &[u8], shift_jis: bool) -> FileResult {
    let mut out = FileResult::default();
    let mut ir: Option<Ir> = None;
    let mut receipt: Option<Receipt> = None;
    // Receipts of the open section, held until its GO trailer vouches for them.
    let mut section: Vec<Receipt> = Vec::new();
    let mut file_error: Option<Reject> = None;
    let reject = |line: u64, ty: Option<&str>, b: Bad| Reject {
        file: display.to_string(),
        line,
        record_type: ty.map(str::to_string),
        receipt_line: None,
        field: b.field,
        error: b.error,
    };
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = raw.strip_suffix(&[0x1a]).unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        let text = if shift_jis {
            encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(raw)
        } else {
            std::str::from_utf8(raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)).ok().map(std::borrow::Cow::Borrowed)
        };
        let Some(text) = text else {
            file_error = Some(reject(
                line,
                None,
                Bad {
                    field: None,
                    error: format!(
                        "invalid byte sequence for encoding {}",
                        if shift_jis { "Shift_JIS" } else { "UTF-8" }
                    ),
                },
            ));
            break;
        };
        let rec = Rec { fields: text.split(',').collect() };
        let ty = rec.get(1);
        match ty {
            "IR" => {
                if ir.is_some() {
                    file_error = Some(reject(
                        line,
                        Some("IR"),
                        Bad { field: None, error: "a second IR record before the GO trailer".into() },
                    ));
                    break;
                }
                match parse_ir(&rec) {
                    Ok(x) => ir = Some(x),
                    Err(b) => {
                        file_error = Some(reject(line, Some("IR"), b));
                        break;
                    }
                }
            }
            "GO" => {
                let Some(section_ir) = ir.take() else {
                    file_error = Some(reject(
                        line,
                        Some("GO"),
                        Bad { field: None, error: "GO record without an IR record before it".into() },
                    ));
                    break;
                };
                if let Some(r) = receipt.take() {
                    section.push(r);
                }
                let counted = section.len() as i64;
                let points: i64 = section.iter().filter_map(|r| r.insurance_points).sum();
                // A malformed receipt's points may not have been read: its own reject says so.
                let sound = section.iter().all(|r| r.bad.is_empty());
                let check = (|| {
                    rec.min_fields(3)?;
                    let n = rec.int(2, "総件数 receipts", i64::MAX)?;
                    let p = rec.int(3, "総合計点数 total points", i64::MAX)?;
                    if !matches!(n, Val::I64(n) if n == counted) {
                        return Err(bad(
                            2,
                            "総件数 receipts",
                            &format!("does not match the {counted} receipts in the file (truncated or edited?)"),
                        ));
                    }
                    if sound && !matches!(p, Val::I64(p) if p == points) {
                        return Err(bad(
                            3,
                            "総合計点数 total points",
                            "does not match the sum of the receipts' points (truncated or edited?)",
                        ));
                    }
                    Ok(())
                })();
                if let Err(b) = check {
                    file_error = Some(reject(line, Some("GO"), b));
                    break;
                }
                let mut sec = Section {
                    claim_kind: section_ir.kind,
                    payer: section_ir.payer,
                    facility_code: section_ir.facility_code.clone(),
                    facility_name: section_ir.facility_name.clone(),
                    billing_month: section_ir.billing_month,
                    receipts: section_ir.receipts,
                    points: section_ir.points,
                };
                for r in section.drain(..) {
                    finish_receipt(r, &mut out, &mut sec);
                }
                out.sections.push(sec);
            }
            _ => {
                let Some(cur_ir) = ir.as_mut() else {
                    file_error = Some(reject(
                        line,
                        Some(ty).filter(|t| t.len() == 2),
                        Bad { field: None, error: "record before the file's IR record".into() },
                    ));
                    break;
                };
                if ty == "RE" {
                    if let Some(r) = receipt.take() {
                        section.push(r);
                    }
                    cur_ir.receipts += 1;
                    let mut r = Receipt {
                        line,
                        claim_id: claim_id(digest, line),
                        fiscal_year: 0,
                        header: Vec::new(),
                        rows: Vec::new(),
                        seq: [0; t::COUNT],
                        insurance_points: None,
                        has_ho: false,
                        public_recipients: Vec::new(),
                        bad: Vec::new(),
                    };
                    match parse_re(&rec, cur_ir, display, line, &mut r) {
                        Ok(()) => {}
                        Err(b) => r.bad.push(reject(line, Some("RE"), b)),
                    }
                    receipt = Some(r);
                    continue;
                }
                let Some(r) = receipt.as_mut() else {
                    file_error = Some(reject(
                        line,
                        Some(ty).filter(|t| t.len() == 2),
                        Bad { field: None, error: "record before the first RE (receipt) record".into() },
                    ));
                    break;
                };
                if SKIPPED.contains(&ty) {
                    out.skipped_records += 1;
                    continue;
                }
                let parsed = match ty {
                    "HO" => parse_ho(&rec, r),
                    "KO" => parse_ko(&rec, r),
                    "SY" => parse_sy(&rec, r),
                    "SI" => parse_item(&rec, r, t::PROCEDURES),
                    "IY" => parse_item(&rec, r, t::DRUGS),
                    "TO" => parse_item(&rec, r, t::MATERIALS),
                    _ => Err(Bad { field: None, error: "unknown record type".into() }),
                };
                if let Err(b) = parsed {
                    let known = ["HO", "KO", "SY", "SI", "IY", "TO"].contains(&ty);
                    r.bad.push(reject(line, known.then_some(ty), b));
                }
            }
        }
    }
    if file_error.is_none() && ir.is_some() {
        file_error = Some(reject(
            bytes.split(|b| *b == b'\n').count() as u64,
            None,
            Bad { field: None, error: "the file ends without its GO trailer record (truncated?)".into() },
        ));
    }
    if file_error.is_none() && out.sections.is_empty() {
        file_error = Some(reject(1, None, Bad { field: None, error: "no IR record: not a claims file".into() }));
    }
    if let Some(e) = file_error {
        // The whole file goes back: drop what its sections added.
        out.rows = Default::default();
        out.sections.clear();
        out.receipts = 0;
        out.rejects = vec![e];
    }
    out
}

fn parse_ir(rec: &Rec) -> Result<Ir, Bad> {
    rec.min_fields(8)?;
    let payer = match rec.get(2) {
        "1" => Some("社保"),
        "2" => Some("国保"),
        "" => None,
        _ => return Err(bad(2, "審査支払機関 payer", "must be 1 (社保) or 2 (国保)")),
    };
    let pref = rec.digits(3, "都道府県 prefecture", &[2])?.ok_or_else(|| bad(3, "都道府県 prefecture", "is empty"))?;
    let (kind, kind_digit) = match rec.get(4) {
        "1" => ("医科", b'1'),
        "3" => ("歯科", b'3'),
        "4" | "6" => {
            return Err(bad(4, "点数表 fee table", "names pharmacy or DPC claims, which Kura does not load yet"));
        }
        _ => return Err(bad(4, "点数表 fee table", "must be 1 (医科) or 3 (歯科)")),
    };
    let code = rec
        .digits(5, "医療機関コード facility code", &[7])?
        .ok_or_else(|| bad(5, "医療機関コード facility code", "is empty"))?;
    let billing_month = rec.month(8, "請求年月 billing month")?;
    Ok(Ir {
        kind,
        kind_digit,
        payer,
        facility_code: format!("{pref}{}{code}", kind_digit as char),
        facility_name: rec.opt(7).map(str::to_string),
        billing_month,
        receipts: 0,
        points: 0,
    })
}

/// Katakana (full- or half-width, the middle dot ・ included) and spaces only.
fn is_kana(s: &str) -> bool {
    s.chars().all(|c| matches!(c, '\u{30A0}'..='\u{30FF}' | '\u{FF65}'..='\u{FF9F}' | ' ' | '\u{3000}'))
}

fn parse_re(rec: &Rec, ir: &Ir, display: &str, line: u64, r: &mut Receipt) -> Result<(), Bad> {
    rec.min_fields(7)?;
    let number = rec.int(2, "レセプト番号 receipt number", i32::MAX as i64)?;
    if matches!(number, Val::Null) {
        return Err(bad(2, "レセプト番号 receipt number", "is empty"));
    }
    let rtype = rec
        .digits(3, "レセプト種別 receipt type", &[4])?
        .ok_or_else(|| bad(3, "レセプト種別 receipt type", "is empty"))?;
    if rtype.as_bytes()[0] != ir.kind_digit {
        return Err(bad(
            3,
            "レセプト種別 receipt type",
            &format!("is not a {} receipt type, as the IR record says", ir.kind),
        ));
    }
    let setting = if (rtype.as_bytes()[3] - b'0') % 2 == 1 { "入院" } else { "入院外" };
    let service = rec.month(4, "診療年月 service month")?;
    if service > ir.billing_month {
        return Err(bad(4, "診療年月 service month", "is after the billing month"));
    }
    let name = rec.required(5, "氏名 name")?;
    let sex = match rec.get(6) {
        "1" => 1,
        "2" => 2,
        _ => return Err(bad(6, "男女区分 sex", "must be 1 or 2")),
    };
    let birth = rec.date(7, "生年月日 birth date")?.ok_or_else(|| bad(7, "生年月日 birth date", "is empty"))?;
    // A birth date after the service month is kept: it is a typing error the linkage weighs,
    // not a reason to lose the claim.
    let ratio = rec.int(8, "給付割合 benefit ratio", 100)?;
    let admission = rec.date(9, "入院年月日 admission date")?;
    let kana = rec.opt(37).map(str::to_string).or_else(|| is_kana(name).then(|| name.to_string()));
    let kanji = (!is_kana(name)).then(|| name.to_string());
    r.fiscal_year = fiscal_year(service);
    r.header = vec![
        Val::I64(r.claim_id),
        Val::Str(ir.kind.to_string()),
        ir.payer.map_or(Val::Null, |p| Val::Str(p.to_string())),
        Val::Str(ir.facility_code.clone()),
        Val::Date(ir.billing_month),
        number,
        Val::Str(rtype.to_string()),
        Val::Str(setting.to_string()),
        Val::Date(service),
        Val::I64(r.fiscal_year as i64),
        kanji.map_or(Val::Null, Val::Str),
        kana.map_or(Val::Null, Val::Str),
        Val::I64(sex),
        Val::Date(birth),
        // insurer, symbol, number, suffix, public recipients: from HO / KO
        Val::Null,
        Val::Null,
        Val::Null,
        Val::Null,
        Val::Null,
        ratio,
        admission.map_or(Val::Null, Val::Date),
        // days, points, burden: from HO (or the first KO)
        Val::Null,
        Val::Null,
        Val::Null,
        Val::Str(display.to_string()),
        Val::I64(line as i64),
    ];
    Ok(())
}

// Header column positions filled by HO / KO.
const H_INSURER: usize = 14;
const H_PUBLIC: usize = 18;
const H_DAYS: usize = 21;

fn next_seq(r: &mut Receipt, table: usize) -> Val {
    r.seq[table] += 1;
    Val::I64(r.seq[table])
}

fn parse_ho(rec: &Rec, r: &mut Receipt) -> Result<(), Bad> {
    rec.min_fields(6)?;
    let insurer = rec
        .digits(2, "保険者番号 insurer number", &[6, 8])?
        .ok_or_else(|| bad(2, "保険者番号 insurer number", "is empty"))?;
    let number = rec.required(4, "被保険者証番号 insured number")?;
    let days = rec.int(5, "診療実日数 days", i16::MAX as i64)?;
    let points = rec.int(6, "合計点数 points", i32::MAX as i64)?;
    let burden = rec.int(12, "負担金額 burden", i64::MAX)?;
    let suffix = rec.digits(16, "枝番 suffix", &[2])?;
    if r.has_ho {
        return Err(Bad { field: None, error: "a second HO record on one receipt".into() });
    }
    r.has_ho = true;
    if !r.header.is_empty() {
        r.header[H_INSURER] = Val::Str(insurer.to_string());
        r.header[H_INSURER + 1] = rec.text(3);
        r.header[H_INSURER + 2] = Val::Str(number.to_string());
        r.header[H_INSURER + 3] = suffix.map_or(Val::Null, |s| Val::Str(s.to_string()));
    }
    set_totals(r, &days, &points, &burden);
    payer_row(r, "医保", insurer, days, points, burden);
    Ok(())
}

/// The receipt's days, points and burden (from its HO record, or the first KO without one).
fn set_totals(r: &mut Receipt, days: &Val, points: &Val, burden: &Val) {
    if !r.header.is_empty() {
        r.header[H_DAYS] = days.clone();
        r.header[H_DAYS + 1] = points.clone();
        r.header[H_DAYS + 2] = burden.clone();
    }
    if let Val::I64(p) = points {
        r.insurance_points = Some(*p);
    }
}

/// An `insurers` row: a payer of the receipt (医保 insurance or 公費 public fund).
fn payer_row(r: &mut Receipt, kind: &str, number: &str, days: Val, points: Val, burden: Val) {
    let seq = next_seq(r, t::INSURERS);
    let row = vec![
        Val::I64(r.claim_id),
        Val::I64(r.fiscal_year as i64),
        seq,
        Val::Str(kind.into()),
        Val::Str(number.to_string()),
        days,
        points,
        burden,
    ];
    r.rows.push((t::INSURERS, row));
}

fn parse_ko(rec: &Rec, r: &mut Receipt) -> Result<(), Bad> {
    rec.min_fields(6)?;
    let payer = rec
        .digits(2, "公費負担者番号 public payer number", &[8])?
        .ok_or_else(|| bad(2, "公費負担者番号 public payer number", "is empty"))?;
    let recipient = rec.digits(3, "公費受給者番号 recipient number", &[7])?;
    let days = rec.int(5, "診療実日数 days", i16::MAX as i64)?;
    let points = rec.int(6, "合計点数 points", i32::MAX as i64)?;
    let burden = rec.int(7, "負担金額 burden", i64::MAX)?;
    if let Some(n) = recipient {
        r.public_recipients.push(n.to_string());
    }
    if !r.header.is_empty() && !r.public_recipients.is_empty() {
        r.header[H_PUBLIC] = Val::Str(r.public_recipients.join(";"));
    }
    // 公費単独 (no HO): the first public fund carries the receipt's days and points.
    if r.insurance_points.is_none() {
        set_totals(r, &days, &points, &burden);
    }
    payer_row(r, "公費", payer, days, points, burden);
    Ok(())
}

fn parse_sy(rec: &Rec, r: &mut Receipt) -> Result<(), Bad> {
    rec.min_fields(3)?;
    let code = rec
        .digits(2, "傷病名コード disease code", &[7])?
        .ok_or_else(|| bad(2, "傷病名コード disease code", "is empty"))?;
    let start = rec.date(3, "診療開始日 start date")?;
    let outcome = match rec.get(4) {
        "" | "1" => None,
        "2" => Some("治ゆ"),
        "3" => Some("死亡"),
        "4" => Some("中止"),
        _ => return Err(bad(4, "転帰区分 outcome", "must be 1, 2, 3 or 4")),
    };
    let modifiers = rec.get(5);
    if !modifiers.bytes().all(|b| b.is_ascii_digit()) || modifiers.len() % 4 != 0 {
        return Err(bad(5, "修飾語コード modifier codes", "must be 4-digit codes"));
    }
    let suspected = modifiers.as_bytes().chunks(4).any(|c| c == b"8002");
    let main = match rec.get(7) {
        "" => false,
        "01" => true,
        _ => return Err(bad(7, "主傷病 main disease", "must be empty or 01")),
    };
    if code == "0000999" && rec.opt(6).is_none() {
        return Err(bad(6, "傷病名称 disease name", "is empty for an uncoded disease (0000999)"));
    }
    let seq = next_seq(r, t::DIAGNOSES);
    r.rows.push((
        t::DIAGNOSES,
        vec![
            Val::I64(r.claim_id),
            Val::I64(r.fiscal_year as i64),
            seq,
            Val::Str(code.to_string()),
            start.map_or(Val::Null, Val::Date),
            outcome.map_or(Val::Null, |o| Val::Str(o.to_string())),
            rec.text(5),
            rec.text(6),
            Val::Bool(main),
            Val::Bool(suspected),
            rec.text(8),
        ],
    ));
    Ok(())
}

fn parse_item(rec: &Rec, r: &mut Receipt, table: usize) -> Result<(), Bad> {
    rec.min_fields(7)?;
    let category = rec.digits(2, "診療識別 category", &[2])?;
    let burden = rec.opt(3);
    let code = rec.digits(4, "code", &[9])?.ok_or_else(|| bad(4, "code", "is empty"))?;
    let quantity = rec.number(5, "quantity")?;
    let points = rec.int(6, "点数 points", i32::MAX as i64)?;
    let times = rec.int(7, "回数 times", i32::MAX as i64)?;
    let seq = next_seq(r, table);
    let mut row = vec![
        Val::I64(r.claim_id),
        Val::I64(r.fiscal_year as i64),
        seq,
        category.map_or(Val::Null, |s| Val::Str(s.to_string())),
        burden.map_or(Val::Null, |s| Val::Str(s.to_string())),
        Val::Str(code.to_string()),
        quantity,
        points,
        times,
    ];
    if table == t::MATERIALS {
        row.push(rec.text(8));
        row.push(rec.number(9, "単価 unit price")?);
        row.push(rec.text(11));
    }
    r.rows.push((table, row));
    Ok(())
}

/// Moves a complete receipt's rows into the output, or its rejects if any record was bad.
fn finish_receipt(mut r: Receipt, out: &mut FileResult, sec: &mut Section) {
    if r.header.is_empty() && r.bad.is_empty() {
        return;
    }
    if !r.bad.is_empty() {
        for b in &mut r.bad {
            b.receipt_line = Some(r.line);
        }
        sec.receipts -= 1;
        out.rejects.append(&mut r.bad);
        return;
    }
    // Rows parsed before the RE's fiscal year was known do not exist: RE comes first.
    sec.points += r.insurance_points.unwrap_or(0);
    out.receipts += 1;
    out.rows[t::CLAIMS].push(r.header);
    for (table, row) in r.rows {
        out.rows[table].push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sjis(s: &str) -> Vec<u8> {
        encoding_rs::SHIFT_JIS.encode(s).0.into_owned()
    }

    const GOOD: &str = "IR,2,40,1,1234567,,若葉市民病院,50705,00,0921234567\r\n\
RE,1,1112,50704,ﾔﾏﾀﾞ ﾀﾛｳ,1,3500101,70,,,,,,,,,,,,,,,,,,,,,,,,,,,,,ヤマダ タロウ\r\n\
HO,06400012,12,3456,2,1200,,,,,,3600,,,,01\r\n\
SY,2500013,5070401,1,,,01\r\n\
SY,4019002,5070401,1,8002\r\n\
SI,12,1,112007410,,73,2\r\n\
IY,21,1,620000001,1,1054,1\r\n\
RE,2,1111,50704,山田花子,2,4050505,70,5070410\r\n\
HO,06400012,12,3457,5,16500,,,,,,49500\r\n\
KO,54136015,1234567,,5,16500,0\r\n\
SY,0000999,5070410,,,右大腿骨頸部骨折,01\r\n\
SI,90,1,190077410,,3300,5\r\n\
TO,50,1,700010000,1,1000,1,001,10000.5,,人工骨頭\r\n\
CO,50,1,810000001\r\n\
GO,2,17700,99\r\n\x1a";

    fn parse(s: &str) -> FileResult {
        parse_file("RECEIPTC.UKE", &sjis(s), b"digest", true)
    }

    #[test]
    fn reads_a_file() {
        let r = parse(GOOD);
        assert!(r.rejects.is_empty(), "{:?}", r.rejects);
        assert_eq!(r.receipts, 2);
        assert_eq!(r.rows[t::CLAIMS].len(), 2);
        assert_eq!(r.rows[t::DIAGNOSES].len(), 3);
        assert_eq!(r.rows[t::PROCEDURES].len(), 2);
        assert_eq!(r.rows[t::DRUGS].len(), 1);
        assert_eq!(r.rows[t::MATERIALS].len(), 1);
        assert_eq!(r.rows[t::INSURERS].len(), 3);
        assert_eq!(r.skipped_records, 1);
        let first = &r.rows[t::CLAIMS][0];
        assert!(matches!(&first[3], Val::Str(s) if s == "4011234567"), "facility code = prefecture + table + code");
        assert!(matches!(&first[7], Val::Str(s) if s == "入院外"));
        assert!(matches!(&first[10], Val::Null), "a kana name is no kanji name");
        assert!(matches!(&first[11], Val::Str(s) if s == "ヤマダ タロウ"), "the RE's kana field wins");
        assert!(matches!(&first[17], Val::Str(s) if s == "01"), "suffix from HO field 16");
        let second = &r.rows[t::CLAIMS][1];
        assert!(matches!(&second[10], Val::Str(s) if s == "山田花子"));
        assert!(matches!(&second[18], Val::Str(s) if s == "1234567"), "public-fund recipient on the header");
        assert!(matches!(&r.rows[t::DIAGNOSES][1][9], Val::Bool(true)), "8002 is suspected");
        assert_eq!(r.sections[0].receipts, 2);
        assert_eq!(r.sections[0].points, 17700);
    }

    #[test]
    fn a_bad_record_rejects_its_receipt_only() {
        let r = parse(&GOOD.replace("SY,4019002,5070401", "SY,4019002,5079999"));
        assert_eq!(r.receipts, 1);
        assert_eq!(r.rejects.len(), 1);
        let e = &r.rejects[0];
        assert_eq!((e.line, e.record_type.as_deref(), e.receipt_line), (5, Some("SY"), Some(2)));
        assert!(e.error.contains("field 3"), "{}", e.error);
        assert_eq!(r.rows[t::CLAIMS].len(), 1);
        assert!(r.rows[t::DIAGNOSES].len() == 1, "the rejected receipt's good diagnosis went with it");
    }

    #[test]
    fn file_level_faults_reject_the_file() {
        let truncated = &GOOD[..GOOD.find("GO,").unwrap()];
        let r = parse(truncated);
        assert_eq!(r.receipts, 0);
        assert!(r.rejects[0].error.contains("GO trailer"), "{:?}", r.rejects);
        let r = parse(&GOOD.replace("GO,2,", "GO,3,"));
        assert_eq!((r.receipts, r.rejects[0].record_type.as_deref()), (0, Some("GO")));
        let r = parse(&GOOD.replace("HO,06400012,12,3457,5,16500", "HO,06400012,12,3457,5,16501"));
        assert!(r.rejects[0].error.contains("points"), "{:?}", r.rejects);
        let mut bytes = sjis(GOOD);
        bytes[40] = 0x81;
        bytes[41] = 0x0d; // not a Shift_JIS trail byte
        let r = parse_file("x", &bytes, b"d", true);
        assert!(r.rejects[0].error.contains("Shift_JIS"), "{:?}", r.rejects);
        let r = parse("hello,world\r\n");
        assert_eq!(r.receipts, 0);
        assert!(!r.rejects.is_empty());
    }

    #[test]
    fn errors_never_echo_values() {
        let r = parse(&GOOD.replace("RE,2,1111,50704,山田花子,2,4050505", "RE,2,1111,50704,山田花子,9,4050505"));
        let e = &r.rejects[0];
        assert!(!e.error.contains("山田") && !e.error.contains('9'), "{}", e.error);
        assert_eq!(e.field.as_deref(), Some("field 6 (男女区分 sex)"));
    }
}
