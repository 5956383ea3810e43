//! Comparators: how far apart two values of a field are, as a comparison level.

use crate::data::{Column, NONE};
use crate::spec::{Comparator, EXACT, MISSING};

/// Jaro-Winkler similarity (prefix scale 0.1, prefix up to 4 characters).
pub fn jaro_winkler(a: &[char], b: &[char]) -> f64 {
    let j = jaro(a, b);
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    j + prefix as f64 * 0.1 * (1.0 - j)
}

/// Jaro similarity.
pub fn jaro(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (a, b) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    // Names are short: their match flags live on the stack; long text takes the heap.
    if b.len() <= 128 {
        let (mut a_used, mut b_used) = ([false; 128], [false; 128]);
        jaro_flags(a, b, &mut a_used[..a.len()], &mut b_used[..b.len()])
    } else {
        jaro_flags(a, b, &mut vec![false; a.len()], &mut vec![false; b.len()])
    }
}

/// Jaro similarity of non-empty `a` and `b` (`a` the shorter), with zeroed match flags.
fn jaro_flags(a: &[char], b: &[char], a_used: &mut [bool], b_used: &mut [bool]) -> f64 {
    let window = (b.len() / 2).saturating_sub(1);
    let mut matches = 0usize;
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && *ca == b[j] {
                b_used[j] = true;
                a_used[i] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut j = 0usize;
    for (i, ca) in a.iter().enumerate() {
        if a_used[i] {
            while !b_used[j] {
                j += 1;
            }
            if *ca != b[j] {
                transpositions += 1;
            }
            j += 1;
        }
    }
    jaro_score(matches, transpositions, a.len(), b.len())
}

fn jaro_score(m: usize, t: usize, la: usize, lb: usize) -> f64 {
    let m = m as f64;
    (m / la as f64 + m / lb as f64 + (m - (t / 2) as f64) / m) / 3.0
}

/// Whether `a` and `b` differ by exactly one edit: a substitution, an insertion or deletion, or
/// two adjacent characters swapped.
pub fn one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    match a.len() as isize - b.len() as isize {
        0 => {
            let mut diff = a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i);
            match (diff.next(), diff.next(), diff.next()) {
                (Some(_), None, _) => true,
                (Some(i), Some(j), None) => j == i + 1 && a[i] == b[j] && a[j] == b[i],
                _ => false,
            }
        }
        1 => deletion(a, b),
        -1 => deletion(b, a),
        _ => false,
    }
}

/// Whether removing one element of `long` gives `short`.
fn deletion<T: PartialEq>(long: &[T], short: &[T]) -> bool {
    let i = long.iter().zip(short).take_while(|(x, y)| x == y).count();
    long[i + 1..] == short[i..]
}

/// Whether two different `yyyymmdd` dates are one typing error apart: one digit wrong, two
/// adjacent digits swapped, or day and month swapped.
pub fn date_typo(a: u32, b: u32) -> bool {
    let digits = |v: u32| {
        let mut d = [0u8; 8];
        let mut v = v;
        for slot in d.iter_mut().rev() {
            *slot = (v % 10) as u8;
            v /= 10;
        }
        d
    };
    let (da, db) = (digits(a), digits(b));
    if one_edit(&da, &db) {
        return true;
    }
    a / 10000 == b / 10000 && a / 100 % 100 == b % 100 && a % 100 == b / 100 % 100
}

/// The comparison level of records `a` and `b` in `col`.
#[inline]
pub(crate) fn level(col: &Column, a: u32, b: u32) -> u8 {
    let (x, y) = (col.ids[a as usize], col.ids[b as usize]);
    if x == NONE || y == NONE {
        return MISSING;
    }
    if x == y {
        return EXACT;
    }
    match col.comparator {
        Comparator::Exact => 2,
        Comparator::Name | Comparator::Text => {
            let (hi, lo) = if col.comparator == Comparator::Name { (0.92, 0.80) } else { (0.90, 0.75) };
            let s = jaro_winkler(&col.chars[x as usize], &col.chars[y as usize]);
            if s >= hi {
                2
            } else if s >= lo {
                3
            } else {
                4
            }
        }
        Comparator::Code => {
            if one_edit(&col.chars[x as usize], &col.chars[y as usize]) {
                2
            } else {
                3
            }
        }
        Comparator::Postal => {
            let (p, q) = (col.values[x as usize].as_bytes(), col.values[y as usize].as_bytes());
            if p.len() >= 3 && q.len() >= 3 && p[..3] == q[..3] {
                2
            } else {
                3
            }
        }
        Comparator::Date => {
            if date_typo(x, y) {
                2
            } else if x / 10000 == y / 10000 {
                3
            } else {
                4
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn jaro_winkler_known_values() {
        let close = |a: &str, b: &str, want: f64| {
            let got = jaro_winkler(&c(a), &c(b));
            assert!((got - want).abs() < 1e-3, "{a} {b}: {got} != {want}");
        };
        close("MARTHA", "MARHTA", 0.961);
        close("DWAYNE", "DUANE", 0.84);
        close("DIXON", "DICKSONX", 0.813);
        close("サトウ", "サトウ", 1.0);
        close("abc", "xyz", 0.0);
        close("", "", 1.0);
        // Past the two-word fast path (128 characters).
        let long_a: String = (0..200u32).map(|i| char::from_u32(0x4E00 + i).unwrap()).collect();
        let long_b: String = std::iter::once('z').chain(long_a.chars().skip(1)).collect();
        assert!(jaro_winkler(&c(&long_a), &c(&long_b)) > 0.99);
    }

    #[test]
    fn edits() {
        assert!(one_edit(&c("12345"), &c("12355")));
        assert!(one_edit(&c("12345"), &c("12435")));
        assert!(one_edit(&c("12345"), &c("1245")));
        assert!(one_edit(&c("1245"), &c("12345")));
        assert!(!one_edit(&c("12345"), &c("12345")));
        assert!(!one_edit(&c("12345"), &c("21354")));
        assert!(!one_edit(&c("12345"), &c("123")));
    }

    #[test]
    fn date_typos() {
        assert!(date_typo(19750412, 19750413));
        assert!(date_typo(19750412, 19751204));
        assert!(date_typo(19750412, 19570412));
        assert!(!date_typo(19750412, 19760513));
    }
}
