//! Writing every source's rows for a simulated household into per-chunk buffers.

use crate::csvw::Row;
use crate::date::{self, Date, MONTHS, PERIOD_END, PERIOD_START, days_in_month, month_end, month_start};
use crate::kana;
use crate::receipt;
use crate::medical::{CONDS, DRUGS, Kind, LABS, c, l};
use crate::names::{SURNAMES, surname_variant};
use crate::rng::{Perm, Rand, RandExt, digits_for, hash, stream, unit};
use crate::schema::f;
use crate::sim::{Cov, Household, Person, coverage, is_cancer, noise_u};
use crate::world::{CITY_NAME, FacKind, HOSPITALS, InsKind, Insurer, KanaStyle, Spec, World};

/// Keyed permutations producing every source's own identifiers.
pub(crate) struct Keys {
    atena: Perm,
    hh: Perm,
    koki: Perm,
    koki_digits: usize,
    emp: Perm,
    nhi: Perm,
    nhi_digits: usize,
    care: Perm,
    health: Perm,
    hosp: [(Perm, usize); 3],
    claim: Perm,
    checkup: Perm,
    event: Perm,
    cert: Perm,
    vacc: Perm,
    order: Perm,
}

impl Keys {
    pub(crate) fn new(seed: u64, n: u64) -> Keys {
        let k = |salt: u64| hash(&[seed, salt, 0x4B45_5953]);
        let n = n.max(1);
        let (kd, km) = digits_for(n, 8);
        let (nd, nm) = digits_for(n, 7);
        let (_, em) = digits_for(n * 8, 8);
        let (h1d, h1m) = digits_for(n * 2, 8);
        let (h2d, h2m) = digits_for(n * 2, 10);
        let (h3d, h3m) = digits_for(n * 2, 7);
        Keys {
            atena: Perm::new(k(1), digits_for(n, 10).1),
            hh: Perm::new(k(2), digits_for(n, 9).1),
            koki: Perm::new(k(3), km),
            koki_digits: kd as usize,
            emp: Perm::new(k(4), em),
            nhi: Perm::new(k(5), nm),
            nhi_digits: nd as usize,
            care: Perm::new(k(6), digits_for(n, 10).1),
            health: Perm::new(k(7), digits_for(n, 9).1),
            hosp: [(Perm::new(k(8), h1m), h1d as usize), (Perm::new(k(9), h2m), h2d as usize), (Perm::new(k(10), h3m), h3d as usize)],
            claim: Perm::new(k(11), digits_for(n << 12, 12).1),
            checkup: Perm::new(k(12), digits_for(n * 8, 11).1),
            event: Perm::new(k(13), digits_for(n * 16, 10).1),
            cert: Perm::new(k(14), digits_for(n * 64, 10).1),
            vacc: Perm::new(k(15), digits_for(n * 64, 11).1),
            order: Perm::new(k(16), digits_for(n << 14, 12).1),
        }
    }
}

/// Per-chunk output buffers (UTF-8 text; encoded later).
pub(crate) struct Out {
    pub bufs: Vec<Vec<u8>>,
    pub rows: Vec<u64>,
    /// Claims in the receipt format (when the run writes them).
    pub receipts: Vec<receipt::Block>,
    /// A character a receipt could not encode in Shift_JIS.
    pub unencodable: Option<char>,
}

impl Out {
    pub(crate) fn new() -> Out {
        Out {
            bufs: (0..f::COUNT).map(|_| Vec::with_capacity(1 << 16)).collect(),
            rows: vec![0; f::COUNT],
            receipts: Vec::new(),
            unencodable: None,
        }
    }
    fn receipt(&mut self, claim: &receipt::Claim) {
        match receipt::block(claim) {
            Ok(b) => self.receipts.push(b),
            Err(c) => self.unencodable = Some(c),
        }
    }
    #[inline]
    fn row(&mut self, file: usize) -> Row<'_> {
        self.rows[file] += 1;
        Row::new(&mut self.bufs[file])
    }
}

/// Shared read-only context.
pub(crate) struct Ctx<'a> {
    pub world: &'a World,
    pub seed: u64,
    pub keys: Keys,
    /// Also write claims in the receipt format.
    pub receipts: bool,
}

/// The patient as a claim of `d` bills them (kanji name of the day, kana and birth date as
/// registered at the facility).
fn billed<'a>(p: &Person, d: Date, insurer: &'a Insurer, id: &'a InsId, kana: &'a str, birth: Date) -> receipt::Patient<'a> {
    let mut name_kanji = String::new();
    kanji_name(p, d, false, "　", &mut name_kanji);
    receipt::Patient {
        insurer: &insurer.number,
        insurer_kind: insurer.kind,
        symbol: &id.symbol,
        number: &id.number,
        suffix: &id.suffix,
        name_kanji,
        name_kana: kana,
        sex: sex_code(p),
        birth,
    }
}

/// Sex code used by public-sector sources.
fn sex_code(p: &Person) -> i64 {
    if p.female { 2 } else { 1 }
}

/// Surname kanji on a date, official (possibly old-form) or common form.
fn surname_kanji(p: &Person, d: Date, official: bool) -> &'static str {
    let s = p.surname_on(d);
    if s == p.surname && official {
        if let Some(v) = p.variant {
            return v;
        }
    }
    SURNAMES[s as usize].kanji
}

fn kanji_name(p: &Person, d: Date, official: bool, sep: &str, out: &mut String) {
    out.clear();
    out.push_str(surname_kanji(p, d, official));
    out.push_str(sep);
    out.push_str(p.given.kanji);
}

/// Katakana name on a date in a given style; optional typo driven by `typo_u`.
fn kana_name(p: &Person, d: Date, style: KanaStyle, typo: Option<(f64, f64)>, out: &mut String) {
    let s = &SURNAMES[p.surname_on(d) as usize];
    let mut full = String::with_capacity(32);
    full.push_str(s.kana);
    full.push('　');
    full.push_str(p.given.kana);
    if let Some((u1, u2)) = typo {
        full = kana::typo(&full, u1, u2);
    }
    out.clear();
    match style {
        KanaStyle::FullWide => out.push_str(&full),
        KanaStyle::FullAscii => out.push_str(&full.replace('　', " ")),
        KanaStyle::FullNone => out.push_str(&full.replace('　', "")),
        KanaStyle::Half => kana::to_half_width(&full, out),
        KanaStyle::HalfLarge => {
            let mut large = String::with_capacity(full.len());
            kana::large_kana(&full, &mut large);
            kana::to_half_width(&large, out);
        }
    }
}

/// Katakana name through a small per-person cache keyed by (surname, style, typo facility).
fn cached_kana<'c>(cache: &'c mut Vec<(u64, String)>, p: &Person, d: Date, style: KanaStyle, typo: Option<(u32, (f64, f64))>) -> &'c str {
    let key = ((p.surname_on(d) as u64) << 40) | ((style as u64) << 32) | typo.map_or(0, |t| t.0 as u64 + 1);
    let pos = match cache.iter().position(|x| x.0 == key) {
        Some(k) => k,
        None => {
            let mut s = String::new();
            kana_name(p, d, style, typo.map(|t| t.1), &mut s);
            cache.push((key, s));
            cache.len() - 1
        }
    };
    &cache[pos].1
}

/// A mistyped birth date (swapped day/month or one digit off).
fn mistype(d: Date, u: f64) -> Date {
    let (y, m, dd) = d.ymd();
    if u < 0.35 && dd <= 12 && dd != m {
        return Date::from_ymd(y, dd, m.min(days_in_month(y, dd)));
    }
    if u < 0.6 {
        return Date::from_ymd(y + if u < 0.5 { 1 } else { -1 }, m, dd.min(days_in_month(y + 1, m).min(28).max(dd.min(28))));
    }
    if u < 0.8 {
        let nd = if dd < 28 { dd + 1 } else { dd - 1 };
        return Date::from_ymd(y, m, nd);
    }
    let nd = if dd <= 18 { dd + 10 } else { dd - 10 };
    Date::from_ymd(y, m, nd.min(days_in_month(y, m)))
}

/// Formatted insurance identity: insurer index, symbol, number, suffix.
struct InsId {
    insurer: u8,
    symbol: String,
    number: String,
    suffix: String,
}

fn ins_id(ctx: &Ctx, hh: &Household, p: &Person, cov: Cov) -> InsId {
    let w = ctx.world;
    match cov {
        Cov::Nhi => InsId {
            insurer: w.nhi,
            symbol: format!("{:02}", 10 + hh.addrs[0].1.ward),
            number: format!("{:0width$}", ctx.keys.nhi.apply(hh.idx), width = ctx.keys.nhi_digits),
            suffix: format!("{:02}", p.member + 1),
        },
        Cov::Koki => InsId {
            insurer: w.koki,
            symbol: String::new(),
            number: format!("{:0width$}", ctx.keys.koki.apply(p.pidx), width = ctx.keys.koki_digits),
            suffix: String::new(),
        },
        Cov::Emp { insurer, owner, suffix } => {
            let h = hash(&[ctx.seed, owner, 31]);
            let symbol = match w.insurers[insurer as usize].kind {
                InsKind::Kyokai => format!("{}", 40_100_000 + h % 900_000),
                InsKind::Kumiai => format!("{}", 100 + h % 400),
                _ => format!("{:02}", 10 + h % 80),
            };
            InsId { insurer, symbol, number: format!("{}", ctx.keys.emp.apply(owner) + 1), suffix: format!("{suffix:02}") }
        }
    }
}

fn address_text(w: &World, a: crate::sim::Addr) -> String {
    let ward = &w.wards[a.ward as usize];
    format!("{CITY_NAME}{}{}{}丁目{}-{}", ward.name, ward.towns[a.town as usize].name, a.chome, a.ban, a.go)
}

fn postal(w: &World, a: crate::sim::Addr) -> &str {
    &w.wards[a.ward as usize].towns[a.town as usize].postal
}

fn truth(out: &mut Out, source: &str, key: &str, p: &Person) {
    out.row(f::TRUTH).s(source).s(key).i(p.pidx as i64 + 1).end();
}

/// A hospital registration (EHR patient record).
struct Reg {
    h: usize,
    id: String,
    first: Date,
    last: Date,
    dup_from: Option<Date>,
    is_dup: bool,
    seen: Vec<u8>,
}

/// A billed encounter in a month.
struct Visit {
    fac: u32,
    inpatient: bool,
    date: Date,
    days: i32,
    points: f64,
    diags: Vec<(u8, Date, bool)>,
    acute: bool,
}

/// Emit every source's rows for one household.
pub(crate) fn emit_household(ctx: &Ctx, hh: &Household, out: &mut Out) {
    for i in 0..hh.members.len() {
        emit_person(ctx, hh, i, out);
    }
}

fn emit_person(ctx: &Ctx, hh: &Household, i: usize, out: &mut Out) {
    let p = &hh.members[i];
    let w = ctx.world;
    let mut rng = stream(ctx.seed, 0x454D_4954, p.pidx);
    let mut s1 = String::with_capacity(64);
    let mut s2 = String::with_capacity(64);

    // ---------------- resident register
    let atena = format!("{:010}", ctx.keys.atena.apply(p.pidx));
    let end = p.end();
    let last_addr = hh.addr_on(end);
    kanji_name(p, end, true, "　", &mut s1);
    kana_name(p, end, KanaStyle::FullWide, None, &mut s2);
    let (status, status_date) = match (p.death, p.out_date) {
        (Some(d), _) => ("死亡", Some(d)),
        (None, Some(o)) if o <= PERIOD_END => ("転出", Some(o)),
        _ => ("住民", None),
    };
    let since = p.in_date.or_else(|| {
        let u = noise_u(ctx.seed, p.pidx, 11);
        if u < 0.4 || p.age(PERIOD_START) < 18 {
            Some(p.birth)
        } else {
            let lo = p.birth.add_years(18).0;
            let hi = PERIOD_START.0 - 1;
            if hi > lo { Some(Date(lo + ((u - 0.4) / 0.6 * (hi - lo) as f64) as i32)) } else { Some(p.birth) }
        }
    });
    let ward = &w.wards[last_addr.ward as usize];
    out.row(f::RESIDENTS)
        .s(&atena)
        .z(ctx.keys.hh.apply(hh.idx), 9)
        .s(p.rel)
        .s(&s1)
        .s(&s2)
        .d(p.birth)
        .era_text(p.birth)
        .i(sex_code(p))
        .s(postal(w, last_addr))
        .s(&address_text(w, last_addr))
        .s(&ward.code)
        .s(ward.name)
        .od(since)
        .s(status)
        .od(status_date)
        .end();
    truth(out, "resident", &atena, p);
    let mut ev_seq = 0u64;
    let mut event = |out: &mut Out, kind: &str, d: Date, prev: Option<&str>, new: Option<&str>, rng: &mut Rand| {
        let id = ctx.keys.event.apply(p.pidx * 16 + ev_seq);
        ev_seq += 1;
        out.row(f::EVENTS)
            .i(id as i64)
            .s(&atena)
            .s(kind)
            .d(d)
            .d(d.add(rng.int(0, 13) as i32))
            .i(d.fiscal_year() as i64)
            .os(prev)
            .os(new)
            .end();
    };
    if p.in_date == Some(p.birth) {
        event(out, "出生", p.birth, None, Some(&address_text(w, hh.addr_on(p.birth))), &mut rng);
    } else if p.moved_in {
        let d = p.in_date.unwrap_or(PERIOD_START);
        let from = format!("{}{}", hh.from_code, crate::world::lg_check(hh.from_code));
        event(out, "転入", d, Some(&from), Some(&address_text(w, hh.addr_on(d))), &mut rng);
    }
    if let Some((d, a)) = hh.addrs.get(1) {
        if p.present(*d) {
            event(out, "転居", *d, Some(&address_text(w, hh.addrs[0].1)), Some(&address_text(w, *a)), &mut rng);
        }
    }
    if let Some((d, _)) = p.marriage {
        if p.present(d) {
            kanji_name(p, d.add(-1), true, "　", &mut s1);
            kanji_name(p, d, true, "　", &mut s2);
            event(out, "氏変更", d, Some(&s1), Some(&s2), &mut rng);
        }
    }
    if status == "転出" {
        let d = p.out_date.unwrap_or(PERIOD_END);
        let to = 40000 + (hash(&[p.pidx, 3]) % 900) as u32 + 100;
        let to = format!("{to}{}", crate::world::lg_check(to));
        event(out, "転出", d, Some(&address_text(w, hh.addr_on(d.add(-1)))), Some(&to), &mut rng);
    } else if let Some(d) = p.death {
        event(out, "死亡", d, None, None, &mut rng);
    }

    // ---------------- claims and hospital EHR
    emit_claims(ctx, hh, i, out, &mut rng);

    // ---------------- checkups
    emit_checkups(ctx, hh, i, out, &mut rng);

    // ---------------- care
    emit_care(ctx, hh, p, out, &mut rng);

    // ---------------- vaccinations
    emit_vaccinations(ctx, hh, p, out, &mut rng);

    // ---------------- truth.persons
    let mut conds = String::new();
    for ci in &p.conds {
        if !conds.is_empty() {
            conds.push(';');
        }
        conds.push_str(CONDS[ci.c as usize].icd);
        conds.push('@');
        let mut b = Vec::new();
        ci.onset.write_iso(&mut b);
        conds.push_str(std::str::from_utf8(&b).unwrap_or(""));
    }
    let start_name = p.surname;
    let mut kana0 = String::new();
    kana_name(p, p.start(), KanaStyle::FullWide, None, &mut kana0);
    out.row(f::TRUTH_PERSONS)
        .i(p.pidx as i64 + 1)
        .i(hh.idx as i64 + 1)
        .i(sex_code(p))
        .d(p.birth)
        .od(p.death)
        .od(p.in_date)
        .od(p.out_date.filter(|d| *d <= PERIOD_END && p.death.is_none_or(|x| x >= *d)))
        .s(p.variant.unwrap_or(SURNAMES[start_name as usize].kanji))
        .os(p.marriage.map(|(_, s)| SURNAMES[s as usize].kanji))
        .s(p.given.kanji)
        .s(&kana0)
        .s(&conds)
        .end();
}

/// Monthly visit probability of a treated condition.
fn visit_prob(ci: usize, months_since: i32, age: i32) -> f64 {
    match ci {
        c::I10 => 0.62,
        c::E11 => 0.75,
        c::E78 => 0.45,
        c::K21 => 0.35,
        c::M81 => 0.5,
        c::M17 => 0.45,
        c::M48 => 0.4,
        c::J45 => if age < 15 { 0.2 } else { 0.35 },
        c::J44 => 0.6,
        c::I48 => 0.75,
        c::I50 => 0.8,
        c::I25 => 0.55,
        c::N18 => 0.7,
        c::F03 => 0.65,
        c::F32 => 0.7,
        c::H25 => 0.2,
        c::L20 => 0.25,
        c::E03 => 0.35,
        c::I63 => if months_since < 12 { 0.9 } else { 0.55 },
        c::S72 => 0.9,
        c::I21 => 0.9,
        c::J18 => 0.5,
        x if is_cancer(x) => if months_since < 12 { 0.85 } else if months_since < 36 { 0.4 } else { 0.15 },
        _ => 0.3,
    }
}

/// Monthly probability of an acute outpatient episode.
fn acute_rate(ci: usize, age: i32, female: bool, ms: Date) -> f64 {
    let (y, m, _) = ms.ymd();
    let winter = matches!(m, 12 | 1 | 2 | 3);
    let covid_era = ms < Date::from_ymd(2022, 4, 1);
    let season = if winter { 1.6 } else if matches!(m, 6..=9) { 0.6 } else { 1.0 };
    match ci {
        c::J06 => (if age < 6 { 0.2 } else if age < 15 { 0.09 } else if age < 65 { 0.03 } else { 0.035 }) * season * if covid_era { 0.6 } else { 1.0 },
        c::J20 => if age < 6 { 0.025 } else if age >= 65 { 0.012 } else { 0.006 },
        c::A09 => (if age < 6 { 0.045 } else if age < 15 { 0.02 } else { 0.007 }) * if winter { 1.5 } else { 1.0 },
        c::J30 => if (5..65).contains(&age) && matches!(m, 2..=4) { 0.06 } else { 0.006 },
        c::H10 => 0.004,
        c::L30 => if age < 15 { 0.015 } else { 0.008 },
        c::M54 => if age < 20 { 0.002 } else if age < 65 { 0.01 } else { 0.016 },
        c::S93 => if (10..45).contains(&age) { 0.004 } else { 0.001 },
        c::U07 => {
            let base = match (y, m) {
                (2022, 1..=2) => 0.015,
                (2022, 7..=8) => 0.035,
                (2022, 11..=12) | (2023, 1) => 0.02,
                (2023, 8..=9) => 0.012,
                (2024, 7..=8) => 0.008,
                (2025, 8..=9) => 0.006,
                (2021, _) => 0.002,
                _ => 0.002,
            };
            base * if age < 15 { 1.3 } else if age >= 65 { 0.7 } else { 1.0 }
        }
        c::J10 => {
            let flu_season = matches!(m, 12 | 1 | 2) && ms >= Date::from_ymd(2023, 12, 1);
            if flu_season { if age < 15 { 0.045 } else { 0.015 } } else { 0.0003 }
        }
        c::H66 => if age < 6 { 0.03 } else if age < 12 { 0.008 } else { 0.0005 },
        c::N39 => if female { if age >= 65 { 0.01 } else { 0.005 } } else if age >= 65 { 0.004 } else { 0.0008 },
        c::K29 => if age >= 40 { 0.006 } else { 0.002 },
        _ => 0.0,
    }
}

const ACUTE: [usize; 13] = [c::J06, c::J20, c::A09, c::J30, c::H10, c::L30, c::M54, c::S93, c::U07, c::J10, c::H66, c::N39, c::K29];

fn acute_facility(w: &World, p: &Person, ci: usize, age: i32) -> u32 {
    let spec = CONDS[ci].spec;
    let spec = if age < 15 && matches!(spec, Spec::Internal) { Spec::Peds } else { spec };
    let list = w.clinics(spec);
    let h = hash(&[p.pidx, spec as u64, if ci == c::U07 { 9 } else { 0 }]);
    list[(h % list.len() as u64) as usize]
}

fn add_diag(visits: &mut Vec<Visit>, fac: u32, inpatient: bool, date: Date, diag: (u8, Date, bool), acute: bool) {
    if let Some(v) = visits.iter_mut().find(|v| v.fac == fac && v.inpatient == inpatient) {
        if !v.diags.iter().any(|d| d.0 == diag.0) {
            v.diags.push(diag);
        }
        v.acute |= acute;
        if date < v.date {
            v.date = date;
        }
        return;
    }
    visits.push(Visit { fac, inpatient, date, days: 1, points: 0.0, diags: vec![diag], acute });
}

/// Drugs of a person's regimen for a condition (stable per person).
fn regimen(pidx: u64, ci: usize, out: &mut Vec<u8>) {
    let ds = CONDS[ci].drugs;
    if ds.is_empty() {
        return;
    }
    let h = hash(&[pidx, ci as u64, 0xD2]);
    let first = ds[(h % ds.len() as u64) as usize];
    if !out.contains(&first) {
        out.push(first);
    }
    if ds.len() > 1 && (h >> 20) % 10 < 4 {
        let second = ds[((h >> 8) % ds.len() as u64) as usize];
        if !out.contains(&second) {
            out.push(second);
        }
    }
}

fn emit_claims(ctx: &Ctx, hh: &Household, i: usize, out: &mut Out, rng: &mut Rand) {
    let p = &hh.members[i];
    let w = ctx.world;
    let start = p.start();
    let end = p.end();
    let late_month = match p.death {
        Some(d) if noise_u(ctx.seed, p.pidx, 21) < 0.01 => date::month_index(d).map(|m| m + 1),
        _ => None,
    };
    let mut visits: Vec<Visit> = Vec::new();
    let mut ids: Vec<(Cov, InsId)> = Vec::new();
    let mut kana_cache: Vec<(u64, String)> = Vec::new();
    let mut regs: Vec<Reg> = Vec::new();
    let mut claim_seq: u64 = 0;
    let mut order_seq: u64 = 0;
    let mut drugs: Vec<u8> = Vec::new();
    let mut dental_left = 0i32;
    let mut dental_dx = c::K02;
    let dental_rate = 0.008 + 0.025 * p.dental_prop;
    for m in 0..MONTHS {
        let ms = month_start(m);
        let me = month_end(m);
        let late = late_month == Some(m);
        if !late && (me < start || ms > end) {
            continue;
        }
        if claim_seq > 4000 {
            break;
        }
        let mid = if late { ms } else { ms.add(14).max(start).min(end) };
        let age = p.age(mid).max(0);
        let span_lo = if late { ms } else { ms.max(start) };
        let span_hi = if late { ms.add(10) } else { me.min(end) };
        let span = (span_hi.0 - span_lo.0).max(0) as i64;
        visits.clear();
        // admissions
        for a in &p.admissions {
            let a_end = a.start.add(a.days - 1).min(end);
            let lo = a.start.max(ms);
            let hi = a_end.min(me);
            if hi < lo || late {
                continue;
            }
            let days = hi.0 - lo.0 + 1;
            let mut v = Visit { fac: a.fac, inpatient: true, date: lo, days, points: 0.0, diags: vec![(a.c, a.start, false)], acute: false };
            for ci in p.conds.iter().filter(|ci| ci.diagnosed && (ci.c as usize) < c::N_CHRONIC && ci.onset <= hi && ci.end.is_none_or(|e| e > lo)).take(3) {
                v.diags.push((ci.c, ci.onset, false));
            }
            let mut pts = days as f64 * rng.lognormal(3300.0, 0.25);
            if a.start >= ms {
                pts += match a.c as usize {
                    c::I21 => rng.lognormal(60000.0, 0.3),
                    c::S72 => rng.lognormal(40000.0, 0.3),
                    x if is_cancer(x) && rng.p(0.7) => rng.lognormal(45000.0, 0.4),
                    _ => 0.0,
                };
            }
            v.points = pts;
            visits.push(v);
        }
        // treated conditions (outpatient follow-up)
        for ci in &p.conds {
            if !ci.diagnosed || ci.onset > me || ci.end.is_some_and(|e| e < ms) || late {
                continue;
            }
            let cond = ci.c as usize;
            // not while admitted for it the same month
            if visits.iter().any(|v| v.inpatient && v.diags[0].0 as usize == cond) {
                continue;
            }
            let since = (ms.0 - ci.onset.0) / 30;
            if rng.p(0.4 * visit_prob(cond, since, age)) {
                let d = span_lo.add(rng.int(0, span) as i32);
                add_diag(&mut visits, ci.fac, false, d, (ci.c, ci.onset.max(p.birth), false), false);
            }
        }
        // acute episodes
        if !late {
            for &ci in ACUTE.iter() {
                if rng.p(0.45 * acute_rate(ci, age, p.female, ms)) {
                    let d = span_lo.add(rng.int(0, span) as i32);
                    let fac = acute_facility(w, p, ci, age);
                    add_diag(&mut visits, fac, false, d, (ci as u8, d, false), true);
                }
            }
        }
        if late && visits.is_empty() {
            let fac = acute_facility(w, p, c::J06, age);
            add_diag(&mut visits, fac, false, ms, (c::J06 as u8, ms, false), true);
        }
        // claims for the month
        let mut covid = None;
        for v in visits.iter_mut() {
            let cov = coverage(hh, i, v.date);
            let idi = match ids.iter().position(|x| x.0 == cov) {
                Some(k) => k,
                None => {
                    ids.push((cov, ins_id(ctx, hh, p, cov)));
                    ids.len() - 1
                }
            };
            let id = &ids[idi].1;
            let insurer = &w.insurers[id.insurer as usize];
            let fac = &w.facilities[v.fac as usize];
            if !v.inpatient {
                v.days = 1 + rng.p(0.22) as i32 + if v.diags.iter().any(|d| matches!(d.0 as usize, c::M17 | c::M48 | c::S72)) { rng.int(0, 6) as i32 } else { 0 };
                let nd = v.diags.len() as f64;
                let mut pts = rng.lognormal(280.0 + 140.0 * nd, 0.5) * v.days as f64 / (1.0 + 0.3 * (v.days - 1) as f64);
                if v.acute {
                    pts += 288.0;
                }
                if fac.kind == FacKind::Hospital {
                    pts *= 1.5;
                    if v.diags.iter().any(|d| is_cancer(d.0 as usize) && d.1.add(365) > v.date) && rng.p(0.5) {
                        pts += rng.lognormal(15000.0, 0.8);
                    }
                }
                v.points = pts;
                // a suspected (rule-out) diagnosis now and then
                if rng.p(0.03) {
                    let sc = [c::E11, c::C16, c::K21, c::I10][rng.int(0, 3) as usize];
                    if !v.diags.iter().any(|d| d.0 as usize == sc) {
                        v.diags.push((sc as u8, v.date, true));
                    }
                }
            }
            let claim_id = ctx.keys.claim.apply((p.pidx << 12) | claim_seq);
            claim_seq += 1;
            // identity as registered at the facility: typo / mistyped birth date per registration
            let reg_u = noise_u(ctx.seed, p.pidx, 1000 + v.fac as u64);
            let typo = if reg_u < 0.008 { Some((unit(hash(&[p.pidx, v.fac as u64, 1])), unit(hash(&[p.pidx, v.fac as u64, 2])))) } else { None };
            let bd = if (0.008..0.013).contains(&reg_u) { mistype(p.birth, (reg_u - 0.008) / 0.005) } else { p.birth };
            let kana = cached_kana(&mut kana_cache, p, v.date, insurer.kana, typo.map(|t| (v.fac, t)));
            let file = if fac.kind == FacKind::Dental { f::DENTAL } else { f::MEDICAL };
            out.row(file)
                .i(claim_id as i64)
                .s(&insurer.number)
                .s(&id.symbol)
                .s(&id.number)
                .s(&id.suffix)
                .s(kana)
                .d(bd)
                .era_code(bd)
                .i(sex_code(p))
                .s(&fac.code)
                .d(ms)
                .i(ms.fiscal_year() as i64)
                .s(if v.inpatient { "入院" } else { "入院外" })
                .i(v.days as i64)
                .i(v.points.round().max(1.0) as i64)
                .end();
            for (k, (dc, dstart, susp)) in v.diags.iter().enumerate() {
                let cd = &CONDS[*dc as usize];
                out.row(f::DIAGNOSES)
                    .i(claim_id as i64)
                    .s("医科")
                    .i(ms.fiscal_year() as i64)
                    .i(k as i64 + 1)
                    .s(cd.icd)
                    .s(cd.code)
                    .d(*dstart)
                    .b(k == 0)
                    .b(*susp)
                    .end();
            }
            // drugs
            drugs.clear();
            for (dc, _, susp) in &v.diags {
                if !*susp {
                    regimen(p.pidx, *dc as usize, &mut drugs);
                }
            }
            if v.diags.iter().any(|d| d.0 as usize == c::U07) {
                covid = Some(v.date);
            }
            if ctx.receipts {
                let first = v.diags[0];
                let material = match first.0 as usize {
                    c::S72 if v.inpatient && first.1 == v.date => Some("700590000"),
                    c::I21 if v.inpatient && first.1 == v.date => Some("730080000"),
                    _ => None,
                };
                out.receipt(&receipt::Claim {
                    patient: billed(p, v.date, insurer, id, kana, bd),
                    dental: fac.kind == FacKind::Dental,
                    inpatient: v.inpatient,
                    service_month: m,
                    facility: v.fac,
                    days: v.days as i64,
                    points: v.points.round().max(1.0) as i64,
                    admission: v.inpatient.then_some(first.1),
                    diagnoses: v.diags.iter().enumerate().map(|(k, d)| (d.0 as usize, d.1, k == 0, d.2)).collect(),
                    drugs: &drugs,
                    material,
                    key: claim_id,
                });
            }
            if !v.inpatient && !drugs.is_empty() && rng.p(if fac.kind == FacKind::Hospital { 0.7 } else { 0.62 }) {
                let ph = if rng.p(0.7) {
                    w.pharmacies[(hash(&[p.pidx, 44]) % w.pharmacies.len() as u64) as usize]
                } else {
                    w.pharmacies[(hash(&[v.fac as u64, 45]) % w.pharmacies.len() as u64) as usize]
                };
                let phf = &w.facilities[ph as usize];
                let chronic = v.diags.iter().any(|d| (d.0 as usize) < c::N_CHRONIC);
                let pts = rng.lognormal(260.0 + 170.0 * drugs.len() as f64 * if chronic { 2.0 } else { 1.0 }, 0.5);
                let pid = ctx.keys.claim.apply((p.pidx << 12) | claim_seq);
                claim_seq += 1;
                out.row(f::PHARMACY)
                    .i(pid as i64)
                    .s(&insurer.number)
                    .s(&id.symbol)
                    .s(&id.number)
                    .s(&id.suffix)
                    .s(kana)
                    .d(bd)
                    .era_code(bd)
                    .i(sex_code(p))
                    .s(&phf.code)
                    .d(ms)
                    .i(ms.fiscal_year() as i64)
                    .s(&fac.code)
                    .i(1 + (v.days > 2) as i64)
                    .i(pts.round() as i64)
                    .end();
            }
            // hospital EHR
            if let Some(h) = fac.ehr {
                emit_ehr(ctx, p, h, v, &drugs, out, rng, &mut regs, &mut order_seq);
            }
        }
        let _ = covid;
        // dental
        if !late {
            if dental_left == 0 && rng.p(dental_rate) {
                dental_left = rng.int(1, 4) as i32;
                dental_dx = if age < 20 {
                    c::K02
                } else if age < 65 {
                    if rng.p(0.6) { c::K05 } else { c::K02 }
                } else if rng.p(0.5) {
                    c::K05
                } else {
                    c::K08
                };
            }
            if dental_left > 0 && age >= 1 {
                dental_left -= 1;
                let d = span_lo.add(rng.int(0, span) as i32);
                let fac_i = w.dental[(hash(&[p.pidx, 46]) % w.dental.len() as u64) as usize];
                let fac = &w.facilities[fac_i as usize];
                let cov = coverage(hh, i, d);
                let idi = match ids.iter().position(|x| x.0 == cov) {
                    Some(k) => k,
                    None => {
                        ids.push((cov, ins_id(ctx, hh, p, cov)));
                        ids.len() - 1
                    }
                };
                let id = &ids[idi].1;
                let insurer = &w.insurers[id.insurer as usize];
                let reg_u = noise_u(ctx.seed, p.pidx, 1000 + fac_i as u64);
                let typo = if reg_u < 0.008 { Some((unit(hash(&[p.pidx, fac_i as u64, 1])), unit(hash(&[p.pidx, fac_i as u64, 2])))) } else { None };
                let bd = if (0.008..0.013).contains(&reg_u) { mistype(p.birth, (reg_u - 0.008) / 0.005) } else { p.birth };
                let kana = cached_kana(&mut kana_cache, p, d, insurer.kana, typo.map(|t| (fac_i, t)));
                let claim_id = ctx.keys.claim.apply((p.pidx << 12) | claim_seq);
                claim_seq += 1;
                let days = rng.int(1, 3);
                let pts = if dental_dx == c::K08 { rng.lognormal(1800.0, 0.6) } else { rng.lognormal(620.0, 0.5) } * (0.7 + 0.3 * days as f64);
                out.row(f::DENTAL)
                    .i(claim_id as i64)
                    .s(&insurer.number)
                    .s(&id.symbol)
                    .s(&id.number)
                    .s(&id.suffix)
                    .s(kana)
                    .d(bd)
                    .era_code(bd)
                    .i(sex_code(p))
                    .s(&fac.code)
                    .d(ms)
                    .i(ms.fiscal_year() as i64)
                    .s("入院外")
                    .i(days)
                    .i(pts.round() as i64)
                    .end();
                if ctx.receipts {
                    out.receipt(&receipt::Claim {
                        patient: billed(p, d, insurer, id, kana, bd),
                        dental: true,
                        inpatient: false,
                        service_month: m,
                        facility: fac_i,
                        days,
                        points: pts.round() as i64,
                        admission: None,
                        diagnoses: vec![(dental_dx, d, true, false)],
                        drugs: &[],
                        material: None,
                        key: claim_id,
                    });
                }
                let cd = &CONDS[dental_dx];
                out.row(f::DIAGNOSES)
                    .i(claim_id as i64)
                    .s("歯科")
                    .i(ms.fiscal_year() as i64)
                    .i(1)
                    .s(cd.icd)
                    .s(cd.code)
                    .d(d)
                    .b(true)
                    .b(false)
                    .end();
            }
        }
    }
    // truth for claims identities
    for (_, id) in &ids {
        let key = format!("{}:{}:{}:{}", w.insurers[id.insurer as usize].number, id.symbol, id.number, id.suffix);
        truth(out, "claims", &key, p);
    }
    // hospital patient masters
    for r in &regs {
        let (sep, style, official) = match r.h {
            0 => ("　", KanaStyle::FullWide, true),
            1 => (" ", KanaStyle::FullAscii, false),
            _ => ("", KanaStyle::Half, false),
        };
        // the hospital updates the name after a marriage only sometimes
        let name_date = if noise_u(ctx.seed, p.pidx, 300 + r.h as u64) < 0.4 { r.last } else { r.first };
        let ru = noise_u(ctx.seed, p.pidx, 310 + r.h as u64 + r.is_dup as u64 * 7);
        let mut kn = String::new();
        let typo = if ru < 0.01 || (r.is_dup && ru < 0.3) { Some((unit(hash(&[p.pidx, r.h as u64, 3])), unit(hash(&[p.pidx, r.h as u64, 4])))) } else { None };
        kana_name(p, name_date, style, typo, &mut kn);
        let mut kj = String::new();
        kanji_name(p, name_date, official && noise_u(ctx.seed, p.pidx, 320) < 0.5, sep, &mut kj);
        let bd = if (0.01..0.015).contains(&ru) { mistype(p.birth, (ru - 0.01) / 0.005) } else { p.birth };
        let a = hh.addr_on(r.first);
        out.row(f::H_PATIENTS)
            .s(HOSPITALS[r.h].0)
            .s(&r.id)
            .s(&kj)
            .s(&kn)
            .d(bd)
            .s(if p.female { "F" } else { "M" })
            .s(postal(w, a))
            .d(r.first)
            .d(r.last)
            .end();
        let key = format!("{}:{}", HOSPITALS[r.h].0, r.id);
        truth(out, "hospital", &key, p);
    }
}

#[allow(clippy::too_many_arguments)]
fn emit_ehr(ctx: &Ctx, p: &Person, h: usize, v: &Visit, drugs: &[u8], out: &mut Out, rng: &mut Rand, regs: &mut Vec<Reg>, order_seq: &mut u64) {
    // find or create the registration
    let mut ri = regs.iter().rposition(|r| r.h == h);
    if ri.is_none() {
        let earlier = noise_u(ctx.seed, p.pidx, 200 + h as u64) < 0.3;
        let first = if earlier { v.date.add(-(rng.int(100, 3650) as i32)).max(p.birth) } else { v.date };
        let dup_from = if noise_u(ctx.seed, p.pidx, 210 + h as u64) < 0.004 { Some(v.date.add(rng.int(60, 900) as i32)) } else { None };
        let (perm, digits) = &ctx.keys.hosp[h];
        regs.push(Reg { h, id: format!("{:0digits$}", perm.apply(p.pidx * 2), digits = *digits), first, last: v.date, dup_from, is_dup: false, seen: Vec::new() });
        ri = Some(regs.len() - 1);
    }
    let mut ri = ri.unwrap_or(0);
    if let Some(df) = regs[ri].dup_from {
        if v.date >= df && !regs[ri].is_dup {
            // registered again as a new patient (duplicate patient ID)
            regs[ri].dup_from = None;
            let (perm, digits) = &ctx.keys.hosp[h];
            regs.push(Reg { h, id: format!("{:0digits$}", perm.apply(p.pidx * 2 + 1), digits = *digits), first: v.date, last: v.date, dup_from: None, is_dup: true, seen: Vec::new() });
            ri = regs.len() - 1;
        }
    }
    let reg = &mut regs[ri];
    reg.last = reg.last.max(v.date.add(if v.inpatient { v.days - 1 } else { 0 }));
    let hcode = HOSPITALS[h].0;
    let id = reg.id.clone();
    for (k, (dc, dstart, susp)) in v.diags.iter().enumerate() {
        if *susp || reg.seen.contains(dc) {
            continue;
        }
        reg.seen.push(*dc);
        let cd = &CONDS[*dc as usize];
        let ci = *dc as usize;
        let (end, outcome) = if let Some(dd) = p.death.filter(|dd| dd.0 - dstart.0 < 90 && *dd >= *dstart && (cd.kind == Kind::Event)) {
            (Some(dd), "死亡")
        } else {
            match cd.kind {
                Kind::Acute => (Some(dstart.add(rng.int(5, 14) as i32)), "治癒"),
                Kind::Event if matches!(ci, c::J18 | c::S72 | c::I21) => (Some(dstart.add(v.days.max(7))), "軽快"),
                _ => (None, "継続"),
            }
        };
        out.row(f::H_DIAGNOSES).s(hcode).s(&id).s(cd.icd).s(cd.name).s(cd.dept).d(*dstart).od(end).s(outcome).b(k == 0).end();
    }
    for &dg in drugs {
        let d = &DRUGS[dg as usize];
        let chronic = v.diags.iter().any(|x| CONDS[x.0 as usize].drugs.contains(&dg) && (x.0 as usize) < c::N_CHRONIC);
        let days = if v.inpatient { 7 } else if chronic { [28, 28, 56, 30][(hash(&[p.pidx, dg as u64]) % 4) as usize] } else { rng.int(3, 7) };
        let oid = ctx.keys.order.apply((p.pidx << 14) | (*order_seq & 0x3FFF));
        *order_seq += 1;
        out.row(f::H_PRESCRIPTIONS)
            .s(hcode)
            .s(&id)
            .i(oid as i64)
            .d(v.date)
            .s(if v.inpatient { "入院" } else { "外来" })
            .s(d.yj)
            .s(d.name)
            .f(d.dose, 1)
            .s(d.unit)
            .s(d.usage)
            .i(days)
            .end();
    }
    // labs
    let mut tests: Vec<u8> = Vec::new();
    for (dc, _, _) in &v.diags {
        for &t in CONDS[*dc as usize].labs {
            if !tests.contains(&t) {
                tests.push(t);
            }
        }
    }
    if v.inpatient {
        for t in [l::WBC as u8, l::HB as u8, l::CRP as u8, l::CRE as u8] {
            if !tests.contains(&t) {
                tests.push(t);
            }
        }
    }
    for t in tests {
        let lab = &LABS[t as usize];
        let val = lab_value(p, t as usize, v, rng);
        let flag = if val > lab.high { "H" } else if val < lab.low { "L" } else { "" };
        out.row(f::H_LABS)
            .s(hcode)
            .s(&id)
            .d(v.date)
            .s(lab.local)
            .s(lab.jlac10)
            .s(lab.name)
            .f(val, lab.dec)
            .s(lab.unit)
            .f(lab.low, lab.dec)
            .f(lab.high, lab.dec)
            .s(flag)
            .end();
    }
}

fn lab_value(p: &Person, t: usize, v: &Visit, rng: &mut Rand) -> f64 {
    let d = v.date;
    let age = p.age(d) as f64;
    let dm = p.has(c::E11, d);
    let ckd = p.has(c::N18, d);
    let cre = || (if p.female { 0.68 } else { 0.88 }) * (1.0 + 0.005 * (age - 50.0).max(0.0)) * if ckd { 1.9 } else { 1.0 };
    match t {
        l::HBA1C => hba1c(p, d, rng),
        l::GLU => if dm { rng.gauss(155.0, 40.0) } else { rng.gauss(102.0, 14.0) }.max(55.0),
        l::CRE => cre() * rng.lognormal(1.0, 0.12),
        l::EGFR => {
            let cr = cre() * rng.lognormal(1.0, 0.08);
            194.0 * cr.powf(-1.094) * age.max(18.0).powf(-0.287) * if p.female { 0.739 } else { 1.0 }
        }
        l::WBC => if v.diags.iter().any(|x| x.0 as usize == c::J18) { rng.lognormal(12.5, 0.25) } else { rng.lognormal(6.0, 0.25) },
        l::LDL => if p.treated(c::E78, d) { rng.gauss(100.0, 22.0) } else if p.has(c::E78, d) { rng.gauss(165.0, 25.0) } else { rng.gauss(118.0, 28.0) }.max(30.0),
        l::HDL => rng.gauss(if p.female { 66.0 } else { 54.0 } - 1.5 * (p.bmi_z * 3.3), 12.0).max(20.0),
        l::TG => rng.lognormal(if p.female { 90.0 } else { 120.0 }, 0.5),
        l::HB => rng.gauss(if p.female { 12.8 } else { 14.4 } - 0.02 * (age - 50.0).max(0.0) - if v.inpatient { 0.8 } else { 0.0 }, 1.2).max(6.0),
        l::CRP => if v.diags.iter().any(|x| x.0 as usize == c::J18) { rng.lognormal(8.0, 0.6) } else { rng.lognormal(0.08, 1.0) },
        l::BNP => if p.has(c::I50, d) { rng.lognormal(320.0, 0.7) } else { rng.lognormal(22.0, 0.7) },
        l::K => rng.gauss(4.2, 0.35) + if ckd { 0.4 } else { 0.0 },
        l::CEA => if v.diags.iter().any(|x| matches!(x.0 as usize, c::C16 | c::C18 | c::C34)) { rng.lognormal(7.0, 0.9) } else { rng.lognormal(2.0, 0.5) },
        l::PSA => if v.diags.iter().any(|x| x.0 as usize == c::C61) { rng.lognormal(18.0, 1.0) } else { rng.lognormal(1.2, 0.6) },
        _ => 0.0,
    }
}

/// HbA1c on a date: consistent with the person's diabetes status and BMI.
fn hba1c(p: &Person, d: Date, rng: &mut Rand) -> f64 {
    let age = p.age(d) as f64;
    let v = if p.has(c::E11, d) {
        if p.treated(c::E11, d) { rng.gauss(7.0, 0.8).max(5.9) } else { rng.gauss(7.3, 1.0).max(6.4) }
    } else {
        (5.45 + 0.008 * (age - 40.0) + 0.12 * p.bmi_z + rng.gauss(0.0, 0.25)).min(6.4)
    };
    v.clamp(4.2, 14.0)
}

fn std_normal(h: u64) -> f64 {
    let u1 = unit(h).max(1e-12);
    let u2 = unit(mix(h));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn mix(h: u64) -> u64 {
    crate::rng::mix64(h ^ 0xABCD)
}

fn emit_checkups(ctx: &Ctx, hh: &Household, i: usize, out: &mut Out, rng: &mut Rand) {
    let p = &hh.members[i];
    let w = ctx.world;
    let height_z = std_normal(hash(&[ctx.seed, p.pidx, 501]));
    let (by, _, _) = p.birth.ymd();
    let mut kana = String::new();
    for fy in date::FIRST_FY..=date::LAST_FY {
        let fy_end = Date::from_ymd(fy + 1, 3, 31);
        let age_end = p.age(fy_end);
        if age_end < 40 {
            continue;
        }
        let d = Date::from_ymd(fy, 6, 1).add(rng.int(0, 200) as i32);
        if !p.present(d) {
            continue;
        }
        let cov = coverage(hh, i, d);
        let koki = cov == Cov::Koki;
        if !koki && age_end > 74 {
            continue;
        }
        if p.certs.iter().any(|c| c.from <= d && c.to >= d && c.level >= 4) {
            continue;
        }
        let pr = if koki {
            if p.checkup_prop > 0.76 { 0.8 } else { 0.03 }
        } else if p.checkup_prop > 0.62 {
            0.88
        } else if p.checkup_prop > 0.5 {
            0.3
        } else {
            0.03
        };
        if !rng.p(pr) {
            continue;
        }
        let age = p.age(d) as f64;
        let id = ins_id(ctx, hh, p, cov);
        let insurer = &w.insurers[id.insurer as usize];
        let cid = ctx.keys.checkup.apply(p.pidx * 8 + (fy - date::FIRST_FY) as u64);
        let typo = if rng.p(0.003) { Some((rng.u(), rng.u())) } else { None };
        kana_name(p, d, KanaStyle::FullWide, typo, &mut kana);
        let bd = if rng.p(0.002) { mistype(p.birth, rng.u()) } else { p.birth };
        let fac = if rng.p(0.1) { w.ehr_hospitals[0] } else { pick_internal(w, p) };
        // physiology
        let cohort = (1990 - by).max(0) as f64;
        let height = if p.female { 158.5 - 0.16 * cohort + 5.3 * height_z } else { 171.5 - 0.18 * cohort + 5.8 * height_z } - 0.05 * (age - 60.0).max(0.0);
        let bmi_mean = if p.female { 21.6 + 0.03 * (age - 40.0) } else { 23.9 - 0.02 * (age - 50.0).max(0.0) };
        let bmi = (bmi_mean + 3.3 * p.bmi_z + rng.gauss(0.0, 0.5)).clamp(14.0, 45.0);
        let weight = bmi * (height / 100.0).powi(2);
        let waist = if p.female { 80.5 + 2.4 * (bmi - 22.3) } else { 84.5 + 2.6 * (bmi - 23.8) } + rng.gauss(0.0, 3.2);
        let ht = p.has(c::I10, d);
        let ht_treated = p.treated(c::I10, d);
        let sbp = if ht_treated {
            rng.gauss(134.0, 13.0)
        } else if ht {
            rng.gauss(152.0, 13.0)
        } else {
            112.0 + 0.45 * (age - 40.0) + 1.0 * (bmi - 23.0) + if p.female { 0.0 } else { 4.0 } + rng.gauss(0.0, 11.0)
        }
        .clamp(85.0, 220.0);
        let dbp = (0.5 * sbp + 14.0 - 0.2 * (age - 60.0).max(0.0) + rng.gauss(0.0, 7.0)).clamp(45.0, 130.0);
        let tg = rng.lognormal(if p.female { 85.0 } else { 115.0 } * (0.08 * (bmi - 23.0)).exp() * (1.0 + 0.3 * p.drinker), 0.45).clamp(25.0, 1500.0);
        let hdl = rng.gauss(if p.female { 67.0 } else { 55.0 } - 1.4 * (bmi - 23.0), 12.0).clamp(20.0, 140.0);
        let ldl = if p.treated(c::E78, d) {
            rng.gauss(104.0, 23.0)
        } else if p.has(c::E78, d) {
            rng.gauss(168.0, 25.0)
        } else {
            rng.gauss(if p.female && age > 50.0 { 128.0 } else { 118.0 }, 27.0)
        }
        .clamp(30.0, 350.0);
        let ast = rng.lognormal(21.0 * (1.0 + 0.3 * p.drinker), 0.28).clamp(8.0, 500.0);
        let alt = rng.lognormal(if p.female { 15.0 } else { 21.0 } * (0.07 * (bmi - 23.0)).exp(), 0.45).clamp(4.0, 600.0);
        let ggt = rng.lognormal(if p.female { 19.0 } else { 32.0 } * (1.0 + 2.0 * p.drinker.powi(3)), 0.5).clamp(5.0, 1500.0);
        let a1c = hba1c(p, d, rng);
        let dm = p.has(c::E11, d);
        let glu = if rng.p(0.22) {
            None
        } else if dm {
            Some((24.0 * a1c - 30.0 + rng.gauss(0.0, 14.0)).clamp(80.0, 400.0))
        } else {
            Some((90.0 + 0.2 * (age - 40.0) + 1.1 * (bmi - 23.0) + rng.gauss(0.0, 8.0)).clamp(65.0, 125.0))
        };
        let a1c_opt = if rng.p(0.04) { None } else { Some(a1c) };
        let ug = if dm && a1c > 7.5 { ["+", "2+", "3+"][rng.int(0, 2) as usize] } else if rng.p(0.02) { "±" } else { "-" };
        let up = if p.has(c::N18, d) {
            ["±", "+", "2+", "-"][rng.weighted(&[0.25, 0.35, 0.15, 0.25])]
        } else if rng.p(0.06) {
            "±"
        } else if rng.p(0.02) {
            "+"
        } else {
            "-"
        };
        out.row(f::CHECKUPS)
            .i(cid as i64)
            .s(if koki { "後期高齢者健診" } else { "特定健診" })
            .i(fy as i64)
            .d(d)
            .s(&insurer.number)
            .s(&id.symbol)
            .s(&id.number)
            .s(&id.suffix)
            .s(&kana)
            .d(bd)
            .i(sex_code(p))
            .i(age as i64)
            .s(&w.facilities[fac as usize].code)
            .f(height, 1)
            .f(weight, 1)
            .f(bmi, 1)
            .f(waist, 1)
            .i(sbp as i64)
            .i(dbp as i64)
            .i(tg as i64)
            .i(hdl as i64)
            .i(ldl as i64)
            .i(ast as i64)
            .i(alt as i64)
            .i(ggt as i64)
            .oi(glu.map(|g| g as i64))
            .of(a1c_opt, 1)
            .s(ug)
            .s(up)
            .b(p.smoker)
            .b(ht_treated)
            .b(p.treated(c::E11, d))
            .b(p.treated(c::E78, d))
            .end();
        truth(out, "checkup", &cid.to_string(), p);
    }
}

fn pick_internal(w: &World, p: &Person) -> u32 {
    let list = w.clinics(Spec::Internal);
    list[(hash(&[p.pidx, Spec::Internal as u64, 0]) % list.len() as u64) as usize]
}

const LEVELS: [(&str, i64); 7] = [("要支援1", 12), ("要支援2", 13), ("要介護1", 21), ("要介護2", 22), ("要介護3", 23), ("要介護4", 24), ("要介護5", 25)];
const APP_TYPES: [&str; 3] = ["新規", "更新", "区分変更"];

fn emit_care(ctx: &Ctx, hh: &Household, p: &Person, out: &mut Out, rng: &mut Rand) {
    let w = ctx.world;
    let certs: Vec<_> = p.certs.iter().filter(|c| c.to >= PERIOD_START && c.decided <= PERIOD_END && c.decided <= p.end().max(c.decided)).collect();
    if certs.is_empty() {
        return;
    }
    let number = format!("{:010}", ctx.keys.care.apply(p.pidx));
    let mut kj = String::new();
    let mut kn = String::new();
    let bu = noise_u(ctx.seed, p.pidx, 600);
    let bd = if bu < 0.003 { mistype(p.birth, bu / 0.003) } else { p.birth };
    for (k, cert) in certs.iter().enumerate() {
        kanji_name(p, cert.decided, true, "　", &mut kj);
        let typo = if noise_u(ctx.seed, p.pidx, 601) < 0.005 { Some((unit(hash(&[p.pidx, 602])), unit(hash(&[p.pidx, 603])))) } else { None };
        kana_name(p, cert.decided, KanaStyle::Half, typo, &mut kn);
        let (lname, lcode) = LEVELS[cert.level as usize];
        out.row(f::CARE_CERT)
            .i(ctx.keys.cert.apply(p.pidx * 64 + k as u64) as i64)
            .s(&number)
            .i(if p.age(cert.decided) >= 65 { 1 } else { 2 })
            .s(&kj)
            .s(&kn)
            .d(bd)
            .i(sex_code(p))
            .s(postal(w, hh.addr_on(cert.decided)))
            .s(APP_TYPES[cert.app_type as usize])
            .d(cert.applied)
            .d(cert.decided)
            .s(lname)
            .i(lcode)
            .d(cert.from)
            .d(cert.to)
            .i(cert.decided.fiscal_year() as i64)
            .end();
    }
    truth(out, "care", &number, p);
    if !p.care_user {
        return;
    }
    for m in 0..MONTHS {
        let ms = month_start(m);
        let me = month_end(m);
        let mid = ms.add(14);
        if me < p.start() || ms > p.end() {
            continue;
        }
        let Some(cert) = certs.iter().rev().find(|c| c.from <= mid && c.to >= mid && c.decided <= me) else { continue };
        if !rng.p(0.9) {
            continue;
        }
        let level = cert.level as usize;
        let facility = level >= 4 && p.nursing_home;
        let (stype, base_units) = if facility {
            ("介護老人福祉施設", 24000.0 + 2500.0 * (level - 4) as f64)
        } else {
            match level {
                0 => ("介護予防通所型サービス", 1700.0),
                1 => ("介護予防通所型サービス", 3400.0),
                2 => (if p.pidx % 2 == 0 { "通所介護" } else { "訪問介護" }, 7500.0),
                3 => ("通所介護", 10500.0),
                4 => ("短期入所生活介護", 15500.0),
                5 => ("訪問介護", 19000.0),
                _ => ("訪問看護", 23000.0),
            }
        };
        let frac = ((p.end().min(me).0 - p.start().max(ms).0 + 1) as f64 / (me.0 - ms.0 + 1) as f64).clamp(0.05, 1.0);
        let units = (rng.lognormal(base_units, 0.25) * frac).round();
        let days = if facility { (30.0 * frac).round() as i64 } else { ((4.0 + level as f64 * 2.5) * frac * rng.lognormal(1.0, 0.2)).round().clamp(1.0, 31.0) as i64 };
        let cost = (units * 10.33).floor();
        let benefit = (cost * 0.9).floor();
        out.row(f::CARE_BENEFITS)
            .s(&number)
            .d(ms)
            .i(ms.fiscal_year() as i64)
            .i(LEVELS[level].1)
            .s(stype)
            .i(days)
            .i(units as i64)
            .i(cost as i64)
            .i(benefit as i64)
            .i((cost - benefit) as i64)
            .end();
    }
}

fn emit_vaccinations(ctx: &Ctx, hh: &Household, p: &Person, out: &mut Out, rng: &mut Rand) {
    let _ = hh;
    let w = ctx.world;
    let mut recs: Vec<(&'static str, &'static str, i64, Date, bool)> = Vec::new();
    let prop = p.vacc_prop;
    // COVID-19 (special temporary vaccination until FY2023, routine for 65+ from FY2024)
    let doses: [(Date, Date, i32); 7] = [
        (Date::from_ymd(2021, 5, 10), Date::from_ymd(2021, 10, 31), 0),
        (Date::from_ymd(2021, 6, 1), Date::from_ymd(2021, 12, 15), 21),
        (Date::from_ymd(2021, 12, 1), Date::from_ymd(2022, 5, 31), 150),
        (Date::from_ymd(2022, 5, 25), Date::from_ymd(2022, 9, 30), 150),
        (Date::from_ymd(2022, 10, 1), Date::from_ymd(2023, 1, 31), 90),
        (Date::from_ymd(2023, 5, 8), Date::from_ymd(2023, 8, 31), 90),
        (Date::from_ymd(2023, 9, 20), Date::from_ymd(2024, 3, 31), 90),
    ];
    let mut last: Option<Date> = None;
    let mut n = 0;
    for (k, (lo, hi, gap)) in doses.iter().enumerate() {
        let age = p.age(*lo);
        let group = if age >= 65 { 0 } else if age >= 20 { 1 } else if age >= 12 { 2 } else if age >= 5 { 3 } else { 4 };
        let cov: [f64; 5] = match k {
            0 => [0.92, 0.80, 0.70, 0.0, 0.0],
            1 => [0.98, 0.97, 0.96, 0.0, 0.0],
            2 => [0.93, 0.72, 0.55, 0.0, 0.0],
            3 => [0.85, 0.2, 0.0, 0.0, 0.0],
            4 => [0.8, 0.5, 0.3, 0.0, 0.0],
            5 => [0.7, 0.0, 0.0, 0.0, 0.0],
            _ => [0.8, 0.35, 0.2, 0.0, 0.0],
        };
        if k > 0 && last.is_none() {
            break;
        }
        let pr = (cov[group] * (0.75 + 0.5 * prop)).min(0.995);
        if !rng.p(pr) {
            if k < 2 {
                break;
            }
            continue;
        }
        let earliest = last.map_or(*lo, |l| (*lo).max(l.add(*gap)));
        if earliest > *hi {
            continue;
        }
        let span = (hi.0 - earliest.0) as f64;
        let d = earliest.add((span * rng.u().powf(2.0)) as i32);
        if !p.present(d) {
            continue;
        }
        n += 1;
        last = Some(d);
        recs.push(("COVID19", "新型コロナウイルスワクチン", n, d, false));
    }
    // children 5-11 (from 2022)
    if p.age(Date::from_ymd(2022, 3, 1)) >= 5 && p.age(Date::from_ymd(2022, 3, 1)) < 12 && rng.p(0.2) {
        let d = Date::from_ymd(2022, 3, 1).add(rng.int(0, 120) as i32);
        if p.present(d) {
            recs.push(("COVID19", "新型コロナウイルスワクチン", 1, d, false));
            recs.push(("COVID19", "新型コロナウイルスワクチン", 2, d.add(21), false));
        }
    }
    for fy in 2024..=date::LAST_FY {
        let d = Date::from_ymd(fy, 10, 1).add((rng.u().powf(1.5) * 120.0) as i32);
        if p.age(d) >= 65 && p.present(d) && rng.p(if fy == 2024 { 0.22 } else { 0.16 } * (0.5 + prop)) {
            n += 1;
            recs.push(("COVID19", "新型コロナウイルスワクチン", n, d, true));
        }
    }
    // influenza: routine for 65+
    for fy in date::FIRST_FY..=date::LAST_FY {
        let d = Date::from_ymd(fy, 10, 1).add((rng.u().powf(1.3) * 90.0) as i32);
        if p.age(d) >= 65 && p.present(d) && rng.p(0.3 + 0.5 * prop) {
            recs.push(("FLU", "インフルエンザワクチン", 1, d, true));
        }
    }
    // pneumococcal PPSV23 in the fiscal year of turning 65
    for fy in date::FIRST_FY..=date::LAST_FY {
        if p.age(Date::from_ymd(fy + 1, 3, 31)) == 65 {
            let d = Date::from_ymd(fy, 4, 1).add(rng.int(30, 360) as i32);
            if p.present(d) && rng.p(0.2 + 0.3 * prop) {
                recs.push(("PPSV23", "23価肺炎球菌ワクチン", 1, d, true));
            }
        }
    }
    // herpes zoster: routine from FY2025 at 65 (and 70, 75, ... transitional)
    let age25 = p.age(Date::from_ymd(2026, 3, 31));
    if age25 >= 65 && age25 % 5 == 0 && age25 <= 100 {
        let d = Date::from_ymd(2025, 5, 1).add(rng.int(0, 300) as i32);
        if p.present(d) && rng.p(0.35 * prop) {
            recs.push(("HZ", "帯状疱疹ワクチン", 1, d, true));
        }
    }
    // measles-rubella: 1st at age 1, 2nd in the year before school
    let mr1 = p.birth.add_years(1).add(rng.int(0, 90) as i32);
    if p.present(mr1) && rng.p(0.96) {
        recs.push(("MR1", "麻しん風しん混合ワクチン(第1期)", 1, mr1, true));
    }
    let mr2 = p.birth.add_years(5).add(rng.int(180, 360) as i32);
    if p.present(mr2) && rng.p(0.93) {
        recs.push(("MR2", "麻しん風しん混合ワクチン(第2期)", 1, mr2, true));
    }
    // HPV for girls 12-16 (active recommendation resumed in FY2022) and catch-up cohorts
    if p.female {
        let (by, _, _) = p.birth.ymd();
        let age22 = p.age(Date::from_ymd(2022, 4, 1));
        let pr = if (11..=16).contains(&age22) || by >= 2010 { 0.4 } else if (1997..=2007).contains(&by) { 0.08 } else { 0.0 };
        if pr > 0.0 && rng.p(pr * (0.5 + prop)) {
            let start = Date::from_ymd(2022, 4, 1).max(p.birth.add_years(12)).add(rng.int(0, 700) as i32);
            for (k, off) in [0, 60, 180].iter().enumerate() {
                let d = start.add(*off);
                if p.present(d) && d <= PERIOD_END {
                    recs.push(("HPV", "HPVワクチン", k as i64 + 1, d, by >= 2006));
                }
            }
        }
    }
    recs.retain(|r| p.present(r.3));
    if recs.is_empty() {
        return;
    }
    let number = format!("{:09}", ctx.keys.health.apply(p.pidx));
    let mut kj = String::new();
    let mut kn = String::new();
    let official = noise_u(ctx.seed, p.pidx, 700) < 0.5;
    let bu = noise_u(ctx.seed, p.pidx, 701);
    let bd = if bu < 0.003 { mistype(p.birth, bu / 0.003) } else { p.birth };
    for (k, (code, name, dose, d, routine)) in recs.iter().enumerate() {
        kanji_name(p, *d, official, "　", &mut kj);
        kana_name(p, *d, KanaStyle::FullNone, None, &mut kn);
        let fac = if p.age(*d) < 15 {
            let l = w.clinics(Spec::Peds);
            l[(hash(&[p.pidx, 90]) % l.len() as u64) as usize]
        } else {
            pick_internal(w, p)
        };
        out.row(f::VACCINATIONS)
            .i(ctx.keys.vacc.apply(p.pidx * 64 + k as u64) as i64)
            .s(&number)
            .s(&kj)
            .s(&kn)
            .d(bd)
            .i(sex_code(p))
            .s(code)
            .s(name)
            .i(*dose)
            .d(*d)
            .i(d.fiscal_year() as i64)
            .s(&w.facilities[fac as usize].code)
            .b(*routine)
            .end();
    }
    truth(out, "vaccination", &number, p);
    let _ = surname_variant;
}

/// The facility master (written once).
pub(crate) fn emit_facilities(w: &World, buf: &mut Vec<u8>) -> u64 {
    let mut n = 0;
    for fac in &w.facilities {
        let ward = &w.wards[fac.ward];
        let kind = match fac.kind {
            FacKind::Hospital => "病院",
            FacKind::Clinic => "診療所",
            FacKind::Dental => "歯科診療所",
            FacKind::Pharmacy => "薬局",
        };
        Row::new(buf)
            .s(&fac.code)
            .s(kind)
            .s(&fac.name)
            .s(&ward.code)
            .s(&ward.towns[(hash(&[fac.code.len() as u64, n]) % 30) as usize].postal)
            .oi(if fac.beds > 0 { Some(fac.beds as i64) } else { None })
            .b(fac.ehr.is_some())
            .os(fac.ehr.map(|h| HOSPITALS[h].0))
            .end();
        n += 1;
    }
    n
}

/// The insurer master (written once).
pub(crate) fn emit_insurers(w: &World, buf: &mut Vec<u8>) -> u64 {
    for ins in &w.insurers {
        Row::new(buf).s(&ins.number).s(ins.kind.label()).s(&ins.name).end();
    }
    w.insurers.len() as u64
}

/// The disease master (written once).
pub(crate) fn emit_diseases(buf: &mut Vec<u8>) -> u64 {
    for cd in CONDS.iter() {
        Row::new(buf).s(cd.code).s(cd.icd).s(cd.name).end();
    }
    CONDS.len() as u64
}
