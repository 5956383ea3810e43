//! The synthetic municipality: wards, towns, postal codes, medical facilities and insurers.

use crate::rng::{RandExt, stream};
use crate::names::SURNAMES;

/// Prefecture code used for codes (福岡県 Fukuoka's code 40; the city itself is fictional).
pub(crate) const PREF: u32 = 40;
/// Five-digit municipality code before its check digit.
pub(crate) const CITY5: u32 = 40190;
/// Municipality name (fictional designated city).
pub(crate) const CITY_NAME: &str = "若葉市";

/// Check digit of a 5-digit local government code (全国地方公共団体コード).
pub(crate) fn lg_check(code5: u32) -> u32 {
    let d: Vec<u32> = format!("{code5:05}").bytes().map(|b| (b - b'0') as u32).collect();
    let sum = d[0] * 6 + d[1] * 5 + d[2] * 4 + d[3] * 3 + d[4] * 2;
    (11 - sum % 11) % 10
}

/// Check digit of a 7-digit insurer number body (weights 2,1,2,1... summed digitwise, mod 10).
pub(crate) fn insurer_check(body: &str) -> u32 {
    let mut sum = 0;
    for (i, b) in body.bytes().enumerate() {
        let v = (b - b'0') as u32 * if i % 2 == 0 { 2 } else { 1 };
        sum += v / 10 + v % 10;
    }
    (10 - sum % 10) % 10
}

/// A town (町) within a ward with its postal code.
pub(crate) struct Town {
    pub name: String,
    pub postal: String,
}

/// A ward (区) of the designated city.
pub(crate) struct Ward {
    pub code: String,
    pub name: &'static str,
    pub towns: Vec<Town>,
}

/// Kind of medical facility.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FacKind {
    Hospital,
    Clinic,
    Dental,
    Pharmacy,
}

/// Clinic specialty (診療科).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Spec {
    Internal,
    Ortho,
    Eye,
    Ent,
    Derm,
    Peds,
    Psych,
    None,
}

/// A medical facility.
#[allow(dead_code)]
pub(crate) struct Facility {
    pub code: String,
    pub kind: FacKind,
    pub spec: Spec,
    pub name: String,
    pub ward: usize,
    pub beds: u32,
    /// Index into [`HOSPITALS`] if this hospital delivers EHR extracts.
    pub ehr: Option<usize>,
}

/// Participating hospitals: (hospital code, name, beds, kana style).
pub(crate) const HOSPITALS: [(&str, &str, u32); 3] = [
    ("H01", "若葉市立総合病院", 520),
    ("H02", "若葉県立がんセンター", 310),
    ("H03", "医療法人社団緑風会 若葉中央病院", 199),
];

/// Type of insurer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum InsKind {
    Nhi,
    Koki,
    Kyokai,
    Kumiai,
    Kyosai,
}

impl InsKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            InsKind::Nhi => "国保",
            InsKind::Koki => "後期高齢",
            InsKind::Kyokai => "協会けんぽ",
            InsKind::Kumiai => "健保組合",
            InsKind::Kyosai => "共済",
        }
    }
}

/// How a source spells katakana names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum KanaStyle {
    /// Full-width, full-width space between surname and given name.
    FullWide,
    /// Full-width, ASCII space.
    FullAscii,
    /// Full-width, no separator.
    FullNone,
    /// Half-width, ASCII space.
    Half,
    /// Half-width without small kana (old systems), ASCII space.
    HalfLarge,
}

/// An insurer.
pub(crate) struct Insurer {
    pub number: String,
    pub name: String,
    pub kind: InsKind,
    pub kana: KanaStyle,
}

/// Everything fixed about the municipality for a run.
#[allow(dead_code)]
pub(crate) struct World {
    pub city_code: String,
    pub wards: Vec<Ward>,
    pub facilities: Vec<Facility>,
    /// Facility indexes by kind / specialty.
    pub clinics_by_spec: Vec<Vec<u32>>,
    pub dental: Vec<u32>,
    pub pharmacies: Vec<u32>,
    /// Participating hospitals (facility indexes, order of [`HOSPITALS`]).
    pub ehr_hospitals: Vec<u32>,
    /// Other hospitals.
    pub other_hospitals: Vec<u32>,
    pub insurers: Vec<Insurer>,
    /// Insurer index ranges.
    pub nhi: u8,
    pub koki: u8,
    pub kyokai: u8,
    pub kumiai: Vec<u8>,
    pub kyosai: Vec<u8>,
}

const WARD_NAMES: [&str; 7] = ["中央区", "東区", "西区", "南区", "北区", "港区", "山手区"];
const TOWN_NAMES: [&str; 30] = [
    "本町", "栄町", "旭町", "緑町", "幸町", "若松町", "曙町", "大手町", "錦町", "新町", "東町", "西町",
    "南町", "北町", "松原", "桜台", "青葉台", "泉", "千代", "日吉", "春日", "白金", "清水", "高見",
    "大浜", "浜町", "港町", "山手", "中原", "丸山",
];

impl World {
    /// Build the municipality for `persons` persons.
    pub(crate) fn new(persons: u64, seed: u64) -> World {
        let mut rng = stream(seed, 0x574F_524C_44, 0);
        let city_code = format!("{CITY5}{}", lg_check(CITY5));
        let mut wards = Vec::new();
        for (w, name) in WARD_NAMES.iter().enumerate() {
            let code5 = CITY5 + 1 + w as u32;
            let mut towns = Vec::new();
            for (t, tn) in TOWN_NAMES.iter().enumerate() {
                // each ward uses its own first three postal digits
                towns.push(Town {
                    name: (*tn).to_string(),
                    postal: format!("{}{:04}", 802 + w, 11 + t * 20),
                });
            }
            wards.push(Ward { code: format!("{code5}{}", lg_check(code5)), name, towns });
        }

        let mut facilities = Vec::new();
        let mut serial = [[0u32; 7]; 5];
        let code = |table: u32, ward: usize, serial: &mut [[u32; 7]; 5]| {
            serial[table as usize][ward] += 1;
            let s = serial[table as usize][ward];
            let body = format!("{PREF:02}{table}{:02}{:04}", 10 + ward, s);
            let check = insurer_check(&body[3..]);
            format!("{body}{check}")
        };
        let mut ehr_hospitals = Vec::new();
        for (i, (_, name, beds)) in HOSPITALS.iter().enumerate() {
            let ward = i % 7;
            ehr_hospitals.push(facilities.len() as u32);
            facilities.push(Facility {
                code: code(1, ward, &mut serial),
                kind: FacKind::Hospital,
                spec: Spec::None,
                name: (*name).to_string(),
                ward,
                beds: *beds,
                ehr: Some(i),
            });
        }
        let n_other_h = (persons / 40_000).max(2);
        let mut other_hospitals = Vec::new();
        for i in 0..n_other_h {
            let ward = rng.int(0, 6) as usize;
            let s = &SURNAMES[rng.int(0, SURNAMES.len() as i64 - 1) as usize];
            other_hospitals.push(facilities.len() as u32);
            facilities.push(Facility {
                code: code(1, ward, &mut serial),
                kind: FacKind::Hospital,
                spec: Spec::None,
                name: format!("医療法人{}会 {}病院", s.kanji, if i % 3 == 0 { "若葉記念" } else { s.kanji }),
                ward,
                beds: rng.int(60, 300) as u32,
                ehr: None,
            });
        }
        let specs = [
            (Spec::Internal, "内科クリニック", 0.46),
            (Spec::Ortho, "整形外科", 0.14),
            (Spec::Eye, "眼科", 0.08),
            (Spec::Ent, "耳鼻咽喉科", 0.07),
            (Spec::Derm, "皮膚科", 0.07),
            (Spec::Peds, "小児科", 0.08),
            (Spec::Psych, "メンタルクリニック", 0.05),
        ];
        let n_clinics = (persons / 1300).max(14);
        let mut clinics_by_spec = vec![Vec::new(); 7];
        for i in 0..n_clinics {
            // guarantee at least two of each specialty
            let si = if i < 14 { (i % 7) as usize } else { rng.weighted(&specs.map(|s| s.2)) };
            let ward = rng.int(0, 6) as usize;
            let s = &SURNAMES[crate::names::pick_surname(rng.u()) as usize];
            clinics_by_spec[si].push(facilities.len() as u32);
            facilities.push(Facility {
                code: code(1, ward, &mut serial),
                kind: FacKind::Clinic,
                spec: specs[si].0,
                name: format!("{}{}", s.kanji, specs[si].1),
                ward,
                beds: 0,
                ehr: None,
            });
        }
        let n_dental = (persons / 1800).max(4);
        let mut dental = Vec::new();
        for _ in 0..n_dental {
            let ward = rng.int(0, 6) as usize;
            let s = &SURNAMES[crate::names::pick_surname(rng.u()) as usize];
            dental.push(facilities.len() as u32);
            facilities.push(Facility {
                code: code(3, ward, &mut serial),
                kind: FacKind::Dental,
                spec: Spec::None,
                name: format!("{}歯科医院", s.kanji),
                ward,
                beds: 0,
                ehr: None,
            });
        }
        let n_pharm = (persons / 1800).max(4);
        let mut pharmacies = Vec::new();
        let chains = ["わかば薬局", "さくら調剤薬局", "あおば薬局", "みなと薬局", "ひまわり薬局"];
        for i in 0..n_pharm {
            let ward = rng.int(0, 6) as usize;
            pharmacies.push(facilities.len() as u32);
            facilities.push(Facility {
                code: code(4, ward, &mut serial),
                kind: FacKind::Pharmacy,
                spec: Spec::None,
                name: format!("{} {}{}店", chains[i as usize % chains.len()], WARD_NAMES[ward].trim_end_matches('区'), i / 5 + 1),
                ward,
                beds: 0,
                ehr: None,
            });
        }

        let mut insurers = Vec::new();
        let mut add = |body7: String, kind, kana, name: String| {
            let check = insurer_check(&body7);
            let number = if kind == InsKind::Nhi {
                // municipal 国保 insurer numbers have 6 digits
                format!("{}{}", &body7[2..], check)
            } else {
                format!("{body7}{check}")
            };
            insurers.push(Insurer { number, name, kind, kana });
            (insurers.len() - 1) as u8
        };
        let nhi = add(format!("00{PREF}190"), InsKind::Nhi, KanaStyle::Half, format!("{CITY_NAME}国民健康保険"));
        let koki = add(format!("39{PREF}001"), InsKind::Koki, KanaStyle::HalfLarge, "福岡県後期高齢者医療広域連合".to_string());
        let kyokai = add(format!("01{PREF}001"), InsKind::Kyokai, KanaStyle::FullWide, "全国健康保険協会 福岡支部".to_string());
        let styles = [KanaStyle::FullWide, KanaStyle::FullAscii, KanaStyle::FullNone, KanaStyle::Half];
        let companies = ["若葉製鉄", "九州電機", "西日本運輸", "若葉銀行", "港湾物流", "北九化学", "若葉ガス", "中央食品", "筑紫建設", "玄海商事", "若葉交通", "西海製薬"];
        let kumiai = (0..12).map(|i| add(format!("06{PREF}{:03}", 101 + i * 7), InsKind::Kumiai, styles[i % 4], format!("{}健康保険組合", companies[i]))).collect();
        let kyosai = vec![
            add(format!("31{PREF}001"), InsKind::Kyosai, KanaStyle::FullWide, "国家公務員共済組合".to_string()),
            add(format!("32{PREF}101"), InsKind::Kyosai, KanaStyle::FullAscii, "地方職員共済組合".to_string()),
            add(format!("34{PREF}013"), InsKind::Kyosai, KanaStyle::FullWide, "公立学校共済組合".to_string()),
        ];
        World {
            city_code,
            wards,
            facilities,
            clinics_by_spec,
            dental,
            pharmacies,
            ehr_hospitals,
            other_hospitals,
            insurers,
            nhi,
            koki,
            kyokai,
            kumiai,
            kyosai,
        }
    }

    /// Clinics of a specialty.
    pub(crate) fn clinics(&self, spec: Spec) -> &[u32] {
        let i = match spec {
            Spec::Internal | Spec::None => 0,
            Spec::Ortho => 1,
            Spec::Eye => 2,
            Spec::Ent => 3,
            Spec::Derm => 4,
            Spec::Peds => 5,
            Spec::Psych => 6,
        };
        &self.clinics_by_spec[i]
    }
}
