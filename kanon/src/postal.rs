//! The prefecture of a Japanese postal code's 3-digit zone (郵便区番号).
//!
//! Source and approximation: Japan Post allocates the first three digits of the 7-digit postal
//! code by delivery zone, and the zones follow prefecture borders almost everywhere. The ranges
//! below were compiled by hand from that allocation (the zones of Japan Post's code list,
//! KEN_ALL.CSV, grouped by prefecture) and spot-checked against a KEN_ALL-derived data set; they
//! were not generated from KEN_ALL, so regenerate them from it if an exact table is needed.
//! Each 3-digit zone is attributed to the prefecture holding (nearly) all of its codes. A
//! handful of zones cross a border at the 4-digit level, and this table attributes them to the
//! majority prefecture, for example:
//! - 498: 愛知県 (弥富市 etc.), though 498-08xx is 三重県桑名郡木曽岬町;
//! - 618: 京都府 (大山崎町 etc.), though 618-00xx is 大阪府三島郡島本町;
//! - 871: 大分県 (中津市 etc.), though 871-08xx/871-09xx are 福岡県築上郡吉富町・上毛町.
//!
//! This is deliberate, not only a shortcut: the hierarchy must make the prefecture a function of
//! the 3-digit zone (the level below it), or full-domain generalisation would not be monotone.
//! The prefecture level is therefore "the prefecture of the zone", which for those few border
//! towns differs from the address's prefecture. Unallocated zones inside a range (e.g. 008) are
//! attributed to the range's prefecture; zone 000 does not exist and is rejected.

/// Inclusive 3-digit zone ranges and their prefecture, in ascending order, covering 001..=999.
const ZONES: &[(u16, u16, &str)] = &[
    (1, 9, "北海道"),
    (10, 19, "秋田県"),
    (20, 29, "岩手県"),
    (30, 39, "青森県"),
    (40, 99, "北海道"),
    (100, 209, "東京都"),
    (210, 259, "神奈川県"),
    (260, 299, "千葉県"),
    (300, 319, "茨城県"),
    (320, 329, "栃木県"),
    (330, 369, "埼玉県"),
    (370, 379, "群馬県"),
    (380, 399, "長野県"),
    (400, 409, "山梨県"),
    (410, 439, "静岡県"),
    (440, 499, "愛知県"),
    (500, 509, "岐阜県"),
    (510, 519, "三重県"),
    (520, 529, "滋賀県"),
    (530, 599, "大阪府"),
    (600, 629, "京都府"),
    (630, 639, "奈良県"),
    (640, 649, "和歌山県"),
    (650, 679, "兵庫県"),
    (680, 689, "鳥取県"),
    (690, 699, "島根県"),
    (700, 719, "岡山県"),
    (720, 739, "広島県"),
    (740, 759, "山口県"),
    (760, 769, "香川県"),
    (770, 779, "徳島県"),
    (780, 789, "高知県"),
    (790, 799, "愛媛県"),
    (800, 839, "福岡県"),
    (840, 849, "佐賀県"),
    (850, 859, "長崎県"),
    (860, 869, "熊本県"),
    (870, 879, "大分県"),
    (880, 889, "宮崎県"),
    (890, 899, "鹿児島県"),
    (900, 909, "沖縄県"),
    (910, 919, "福井県"),
    (920, 929, "石川県"),
    (930, 939, "富山県"),
    (940, 959, "新潟県"),
    (960, 979, "福島県"),
    (980, 989, "宮城県"),
    (990, 999, "山形県"),
];

/// The prefecture of a 3-digit zone (1..=999), or `None` for zone 000 and out-of-range input.
pub(crate) fn prefecture(zone: u16) -> Option<&'static str> {
    let i = ZONES.partition_point(|&(_, hi, _)| hi < zone);
    ZONES
        .get(i)
        .filter(|&&(lo, hi, _)| (lo..=hi).contains(&zone))
        .map(|&(_, _, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_zone_once_in_order() {
        let mut next = 1;
        for &(lo, hi, _) in ZONES {
            assert_eq!(lo, next, "gap or overlap before zone {lo}");
            assert!(hi >= lo);
            next = hi + 1;
        }
        assert_eq!(next, 1000);
        let names: std::collections::BTreeSet<_> = ZONES.iter().map(|z| z.2).collect();
        assert_eq!(names.len(), 47, "every prefecture appears");
    }

    #[test]
    fn known_zones() {
        assert_eq!(prefecture(100), Some("東京都")); // 千代田区
        assert_eq!(prefecture(60), Some("北海道")); // 札幌市中央区
        assert_eq!(prefecture(10), Some("秋田県"));
        assert_eq!(prefecture(530), Some("大阪府")); // 大阪市北区
        assert_eq!(prefecture(812), Some("福岡県")); // 福岡市博多区
        assert_eq!(prefecture(900), Some("沖縄県"));
        assert_eq!(prefecture(980), Some("宮城県"));
        assert_eq!(prefecture(0), None);
        assert_eq!(prefecture(1000), None);
    }
}
