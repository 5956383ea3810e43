//! Constraints that real data gives: keys a source says are different people, operator
//! decisions, and impossible histories, each tried against data that would otherwise link.

use kura_linkage::{
    BlockingRule, Comparator, DatasetBuilder, Decisions, EntryKey, Field, History, Settings, SourcePolicy, days_from_yyyymmdd,
    link,
};

fn settings() -> Settings {
    let mut s = Settings::new(
        vec![
            Field::new("name", Comparator::Name).with_term_frequency(),
            Field::new("birth", Comparator::Date),
            Field::new("sex", Comparator::Exact),
        ],
        vec![vec!["name".into(), "birth".into(), "sex".into()]],
        vec![BlockingRule::on(&["birth", "sex"])],
    );
    s.u_sample_pairs = 10_000;
    s.birth_field = Some("birth".into());
    s
}

fn day(s: &str) -> Option<i32> {
    Some(days_from_yyyymmdd(kura_linkage::parse_date(s).unwrap()))
}

/// Persons of every key, as (source:key) groups sorted.
fn persons(b: DatasetBuilder, decisions: &Decisions) -> Vec<Vec<String>> {
    let l = link(b.finish(), &settings(), decisions, &kura_linkage::NoProgress).unwrap();
    let mut by: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for (k, p) in l.entry_persons() {
        by.entry(p).or_default().push(format!("{}:{}", k.source, k.key));
    }
    let mut out: Vec<Vec<String>> = by.into_values().map(|mut v| {
        v.sort();
        v
    }).collect();
    out.sort();
    out
}

/// Unrelated people, so that the model has non-matches to learn from.
fn background(b: &mut DatasetBuilder, source: u16) {
    for i in 0..200 {
        let name = format!("ﾀﾅｶ ｲﾁﾛｳ{}", char::from_u32(0x30A2 + (i % 40)).unwrap());
        let birth = format!("19{:02}-{:02}-{:02}", 30 + i % 60, 1 + i % 12, 1 + i % 28);
        b.push(source, &format!("bg{i}"), &[Some(&name), Some(&birth), Some(if i % 2 == 0 { "1" } else { "2" })], History::default())
            .unwrap();
    }
}

#[test]
fn two_keys_of_a_unique_source_never_merge() {
    let mut b = DatasetBuilder::new(&settings()).unwrap();
    let reg = b.source("register", SourcePolicy { unique_keys: true }).unwrap();
    let claims = b.source("claims", SourcePolicy::default()).unwrap();
    background(&mut b, reg);
    // Two registered people identical in every compared field (twins named alike do not exist,
    // but the register says they are two), and a claim that matches both.
    let v = [Some("サトウ ヒロシ"), Some("1950-01-01"), Some("1")];
    b.push(reg, "A1", &v, History::default()).unwrap();
    b.push(reg, "A2", &v, History::default()).unwrap();
    b.push(claims, "K1", &v, History::default()).unwrap();
    let p = persons(b, &Decisions::default());
    let with = |k: &str| p.iter().find(|g| g.iter().any(|x| x == k)).unwrap().clone();
    assert_ne!(with("register:A1"), with("register:A2"), "{p:?}");
    assert!(with("claims:K1").len() == 2, "the claim joins one of them: {p:?}");
}

#[test]
fn activity_after_death_and_before_birth_does_not_link() {
    let mut b = DatasetBuilder::new(&settings()).unwrap();
    let reg = b.source("register", SourcePolicy { unique_keys: true }).unwrap();
    let claims = b.source("claims", SourcePolicy::default()).unwrap();
    background(&mut b, reg);
    let v = [Some("ヤマダ タロウ"), Some("1940-05-05"), Some("1")];
    b.push(reg, "A1", &v, History { death: day("2020-03-01"), ..Default::default() }).unwrap();
    // Claims billed until two months after death link; claims three years later (with a birth
    // date one digit off) do not, neither directly nor through K1.
    b.push(claims, "K1", &v, History { first_seen: day("2019-01-01"), last_seen: day("2020-05-01"), death: None }).unwrap();
    let later = [Some("ヤマダ タロウ"), Some("1940-05-06"), Some("1")];
    b.push(claims, "K2", &later, History { first_seen: day("2023-01-01"), last_seen: day("2023-06-01"), death: None }).unwrap();
    // A record seen before the birth date is not this person.
    let young = [Some("スズキ ハナ"), Some("2015-06-01"), Some("2")];
    b.push(reg, "A2", &young, History::default()).unwrap();
    b.push(claims, "K3", &young, History { first_seen: day("2010-01-01"), last_seen: day("2010-02-01"), death: None }).unwrap();
    let p = persons(b, &Decisions::default());
    assert!(p.contains(&vec!["claims:K1".to_string(), "register:A1".to_string()]), "{p:?}");
    assert!(p.contains(&vec!["claims:K2".to_string()]), "{p:?}");
    assert!(p.contains(&vec!["claims:K3".to_string()]), "{p:?}");
}

#[test]
fn operator_decisions_override_the_model() {
    let build = || {
        let mut b = DatasetBuilder::new(&settings()).unwrap();
        let reg = b.source("register", SourcePolicy { unique_keys: true }).unwrap();
        let claims = b.source("claims", SourcePolicy::default()).unwrap();
        background(&mut b, reg);
        b.push(reg, "A1", &[Some("イトウ ケン"), Some("1960-02-02"), Some("1")], History::default()).unwrap();
        b.push(claims, "K1", &[Some("イトウ ケン"), Some("1960-02-02"), Some("1")], History::default()).unwrap();
        b.push(claims, "K9", &[Some("キムラ ユミ"), Some("1977-07-07"), Some("2")], History::default()).unwrap();
        b
    };
    let key = |s: &str, k: &str| EntryKey { source: s.into(), key: k.into() };
    let p = persons(build(), &Decisions::default());
    assert!(p.contains(&vec!["claims:K1".to_string(), "register:A1".to_string()]), "{p:?}");
    let decisions = Decisions {
        must_link: vec![(key("register", "A1"), key("claims", "K9"))],
        cannot_link: vec![(key("register", "A1"), key("claims", "K1"))],
    };
    let p = persons(build(), &decisions);
    assert!(p.contains(&vec!["claims:K9".to_string(), "register:A1".to_string()]), "{p:?}");
    assert!(p.contains(&vec!["claims:K1".to_string()]), "{p:?}");
    // Contradictory decisions are an error, not a coin toss.
    let bad = Decisions { must_link: vec![(key("register", "A1"), key("claims", "K1"))], cannot_link: vec![(key("register", "A1"), key("claims", "K1"))] };
    let err = link(build().finish(), &settings(), &bad, &kura_linkage::NoProgress).err().unwrap();
    assert!(err.to_string().contains("both must-link and cannot-link"), "{err}");
}

#[test]
fn bad_settings_and_rows_are_refused_by_name() {
    let mut s = settings();
    s.blocking = vec![BlockingRule::on(&["nope"])];
    let err = DatasetBuilder::new(&s).err().unwrap().to_string();
    assert!(err.contains("nope"), "{err}");
    let mut b = DatasetBuilder::new(&settings()).unwrap();
    let src = b.source("s", SourcePolicy::default()).unwrap();
    assert!(b.push(src, "", &[None, None, None], History::default()).unwrap_err().to_string().contains("empty key"));
    assert!(b.push(src, "k", &[None], History::default()).unwrap_err().to_string().contains("1 values for 3 fields"));
    assert!(b.source("s", SourcePolicy { unique_keys: true }).is_err());
}
