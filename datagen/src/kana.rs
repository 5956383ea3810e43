//! Katakana transformations that mimic how real systems spell names: half-width kana
//! (半角カナ) in legacy systems, missing small kana, and typing errors.

/// Full-width katakana (unvoiced and small forms) and their half-width equivalents, in parallel.
const FULL: &str = "ァアィイゥウェエォオカキクケコサシスセソタチッツテトナニヌネノハヒフヘホマミムメモャヤュユョヨラリルレロワヲンー";
const HALF: &str = "ｧｱｨｲｩｳｪｴｫｵｶｷｸｹｺｻｼｽｾｿﾀﾁｯﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓｬﾔｭﾕｮﾖﾗﾘﾙﾚﾛﾜｦﾝｰ";

/// Dakuten (voiced) katakana and their unvoiced base.
const VOICED: &str = "ガギグゲゴザジズゼゾダヂヅデドバビブベボ";
const VOICED_BASE: &str = "カキクケコサシスセソタチツテトハヒフヘホ";
/// Handakuten (semi-voiced) katakana and their base.
const SEMI: &str = "パピプペポ";
const SEMI_BASE: &str = "ハヒフヘホ";

fn lookup(table: &str, c: char) -> Option<usize> {
    table.chars().position(|x| x == c)
}

fn half_of(c: char) -> Option<char> {
    lookup(FULL, c).and_then(|i| HALF.chars().nth(i))
}

fn half_slow(c: char, out: &mut String) {
    if let Some(h) = half_of(c) {
        out.push(h);
    } else if let Some(i) = lookup(VOICED, c) {
        let base = VOICED_BASE.chars().nth(i).unwrap_or(c);
        out.push(half_of(base).unwrap_or(base));
        out.push('ﾞ');
    } else if let Some(i) = lookup(SEMI, c) {
        let base = SEMI_BASE.chars().nth(i).unwrap_or(c);
        out.push(half_of(base).unwrap_or(base));
        out.push('ﾟ');
    } else if c == 'ヴ' {
        out.push_str("ｳﾞ");
    } else {
        out.push(c);
    }
}

/// Half-width forms of U+30A1..=U+30FC, computed once.
fn half_table() -> &'static [String] {
    static T: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0x30A1u32..=0x30FC)
            .map(|cp| {
                let mut s = String::new();
                half_slow(char::from_u32(cp).unwrap_or('?'), &mut s);
                s
            })
            .collect()
    })
}

/// Convert full-width katakana (and the ideographic space) to half-width kana.
/// Characters without a half-width form are kept.
pub(crate) fn to_half_width(s: &str, out: &mut String) {
    let t = half_table();
    for c in s.chars() {
        let cp = c as u32;
        if c == '　' {
            out.push(' ');
        } else if (0x30A1..=0x30FC).contains(&cp) {
            out.push_str(&t[(cp - 0x30A1) as usize]);
        } else {
            out.push(c);
        }
    }
}

/// Replace small kana by their large forms (ッ -> ツ, ャ -> ヤ ...), as systems without small
/// kana do.
pub(crate) fn large_kana(s: &str, out: &mut String) {
    for c in s.chars() {
        out.push(match c {
            'ァ' => 'ア',
            'ィ' => 'イ',
            'ゥ' => 'ウ',
            'ェ' => 'エ',
            'ォ' => 'オ',
            'ッ' => 'ツ',
            'ャ' => 'ヤ',
            'ュ' => 'ユ',
            'ョ' => 'ヨ',
            other => other,
        });
    }
}

/// Kana often confused when typing a name heard over the counter.
const CONFUSABLE: &[(char, char)] = &[
    ('ウ', 'ー'),
    ('オ', 'ウ'),
    ('ジ', 'ヂ'),
    ('ズ', 'ヅ'),
    ('シ', 'ツ'),
    ('ソ', 'ン'),
    ('ホ', 'ボ'),
    ('カ', 'ガ'),
    ('タ', 'ダ'),
    ('キ', 'ギ'),
    ('コ', 'ゴ'),
    ('サ', 'ザ'),
    ('ハ', 'バ'),
    ('ト', 'ド'),
    ('ヒ', 'ビ'),
    ('ケ', 'ゲ'),
    ('ユ', 'ュ'),
    ('ヨ', 'ョ'),
];

/// Introduce one typing error: substitute a confusable kana, or drop one kana.
/// `u1`, `u2` are uniform draws. Spaces are never touched.
pub(crate) fn typo(s: &str, u1: f64, u2: f64) -> String {
    let chars: Vec<char> = s.chars().collect();
    let positions: Vec<usize> = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != ' ' && **c != '　')
        .map(|(i, _)| i)
        .collect();
    if positions.len() < 3 {
        return s.to_string();
    }
    let pos = positions[((u2 * positions.len() as f64) as usize).min(positions.len() - 1)];
    let mut out = String::with_capacity(s.len());
    let substitute = u1 < 0.7;
    for (i, &c) in chars.iter().enumerate() {
        if i != pos {
            out.push(c);
            continue;
        }
        if substitute {
            let rep = CONFUSABLE
                .iter()
                .find_map(|&(a, b)| if a == c { Some(b) } else if b == c { Some(a) } else { None });
            match rep {
                Some(r) => out.push(r),
                None => {
                    // no confusable partner: swap with a neighbouring kana in the table
                    let rep = FULL
                        .chars()
                        .position(|x| x == c)
                        .and_then(|p| FULL.chars().nth(if p + 2 < FULL.chars().count() { p + 2 } else { p - 2 }))
                        .unwrap_or(c);
                    out.push(rep);
                }
            }
        }
        // else: dropped
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_width() {
        let mut s = String::new();
        to_half_width("ヤマダ　タロウ", &mut s);
        assert_eq!(s, "ﾔﾏﾀﾞ ﾀﾛｳ");
        s.clear();
        to_half_width("ハットリ　ペコ", &mut s);
        assert_eq!(s, "ﾊｯﾄﾘ ﾍﾟｺ");
        s.clear();
        large_kana("ハットリ　キョウコ", &mut s);
        assert_eq!(s, "ハツトリ　キヨウコ");
    }

    #[test]
    fn typos_change_one_kana() {
        let t = typo("サトウ　タロウ", 0.1, 0.0);
        assert_ne!(t, "サトウ　タロウ");
        assert_eq!(t.chars().count(), 7);
        let t = typo("サトウ　タロウ", 0.9, 0.5);
        assert_eq!(t.chars().count(), 6);
    }
}
