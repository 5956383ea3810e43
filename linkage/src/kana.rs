//! Kana name normalisation for 名寄せ (record linkage).
//!
//! Legacy systems send half-width kana with separate voicing marks (`ﾔﾏﾀﾞ ﾀﾛｳ`), others drop
//! small kana (`ハツトリ` for `ハットリ`), write hiragana, or put spaces and middle dots between
//! family and given names. Every such spelling of a name must normalise to the same string.
//! The rules are those of `../shared/DOMAIN.md`; the SQL function `kana_normalize` (in
//! `kura-udfs`) calls [`normalize_into`].

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Hiragana to katakana (the blocks are parallel, 0x60 apart), including ゔゕゖ and ゝゞ.
fn to_katakana(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
        _ => c,
    }
}

/// Small kana to large, and the voiced kana that sound like others (ヂ ジ, ヅ ズ) to one form.
fn fold(c: char) -> char {
    match c {
        'ァ' => 'ア',
        'ィ' => 'イ',
        'ゥ' => 'ウ',
        'ェ' => 'エ',
        'ォ' => 'オ',
        'ッ' => 'ツ',
        'ャ' => 'ヤ',
        'ュ' => 'ユ',
        'ョ' => 'ヨ',
        'ヮ' => 'ワ',
        'ヵ' => 'カ',
        'ヶ' => 'ケ',
        'ヂ' => 'ジ',
        'ヅ' => 'ズ',
        'ヴ' => 'ブ',
        'ヷ' => 'バ',
        'ヸ' => 'ビ',
        'ヹ' => 'ベ',
        'ヺ' => 'ボ',
        other => other,
    }
}

/// ヴ followed by a small vowel is one syllable: ヴァ バ, ヴィ ビ, ヴゥ ブ, ヴェ ベ, ヴォ ボ.
fn vu_syllable(next: char) -> Option<char> {
    match next {
        'ァ' => Some('バ'),
        'ィ' => Some('ビ'),
        'ゥ' => Some('ブ'),
        'ェ' => Some('ベ'),
        'ォ' => Some('ボ'),
        _ => None,
    }
}

/// ヴ before a small ャュョ is the ビ row (ヴュ sounds as ビュ); the small kana stays and is folded.
fn is_small_y(c: char) -> bool {
    matches!(c, 'ャ' | 'ュ' | 'ョ')
}

fn is_katakana(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー')
}

/// Spaces and middle dots between name parts (after NFKC, ･ and U+3000 are already ・ and ' ').
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '・' | '･' | '·')
}

/// Hyphen-like characters that stand for the long vowel mark after a kana (after NFKC, ｰ is
/// already ー and － is '-').
fn is_hyphen_like(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE63}' | '\u{FF0D}' | '\u{FF70}')
}

/// Normalises NFKC-normalised characters into `out` (see [`KanaNormalize`]).
fn normalize_chars(chars: impl Iterator<Item = char>, out: &mut String) {
    let mut chars = chars.map(to_katakana).filter(|c| !is_separator(*c)).peekable();
    while let Some(c) = chars.next() {
        let c = if c == 'ヴ' {
            match chars.peek().copied() {
                Some(next) if is_small_y(next) => 'ビ',
                Some(next) => match vu_syllable(next) {
                    Some(syllable) => {
                        chars.next();
                        syllable
                    }
                    None => 'ブ',
                },
                None => 'ブ',
            }
        } else if is_hyphen_like(c) && out.chars().next_back().is_some_and(is_katakana) {
            'ー'
        } else {
            fold(c)
        };
        out.push(c);
    }
}

/// The normal form of `s` in `out`:
/// 1. NFKC: half-width kana and their voicing marks to full-width, full-width ASCII to ASCII;
/// 2. hiragana to katakana;
/// 3. spaces (any whitespace, including U+3000) and middle dots (`・ ･ ·`) dropped;
/// 4. ヴ plus a small vowel to one syllable (ヴァ バ, ヴィ ビ, ヴゥ ブ, ヴェ ベ, ヴォ ボ), ヴャ ヴュ ヴョ
///    to ビヤ ビユ ビヨ, any other ヴ to ブ (ヷ ヸ ヹ ヺ to バ ビ ベ ボ);
/// 5. small kana to large (ァィゥェォ アイウエオ, ッ ツ, ャュョ ヤユヨ, ヮ ワ, ヵ カ, ヶ ケ);
/// 6. ヂ to ジ, ヅ to ズ;
/// 7. the long vowel mark ー kept; hyphen-like characters right after a kana become ー.
///
/// Other characters (kanji, Latin letters, digits) only go through NFKC.
pub fn normalize_into(s: &str, out: &mut String) {
    out.clear();
    if is_nfkc_quick(s.chars()) == IsNormalized::Yes {
        normalize_chars(s.chars(), out);
    } else {
        normalize_chars(s.nfkc(), out);
    }
}

/// Old and variant kanji forms (旧字体, 異体字) that registers keep in names, to the common form:
/// 髙橋 and 高橋 are one name.
fn fold_kanji(c: char) -> char {
    match c {
        '髙' => '高',
        '﨑' | '嵜' => '崎',
        '邊' | '邉' => '辺',
        '齋' | '齊' => '斎',
        '櫻' => '桜',
        '澤' => '沢',
        '濱' | '濵' => '浜',
        '瀧' => '滝',
        '澁' => '渋',
        '廣' => '広',
        '國' => '国',
        '嶋' | '嶌' => '島',
        '德' => '徳',
        '惠' => '恵',
        '榮' => '栄',
        '冨' => '富',
        '槇' => '槙',
        '淵' => '渕',
        '萬' => '万',
        '龍' => '竜',
        '壽' => '寿',
        '實' => '実',
        '藏' => '蔵',
        '眞' => '真',
        other => other,
    }
}

/// The comparison form of a personal name in kana or kanji: [`normalize_into`], then old kanji
/// forms to the common ones (髙 高, 﨑 崎, 邊 辺, 齋 斎, 澤 沢, ...).
pub fn name_normalize_into(s: &str, out: &mut String) {
    normalize_into(s, out);
    if out.chars().any(|c| fold_kanji(c) != c) {
        *out = out.chars().map(fold_kanji).collect();
    }
}

/// Splits a raw name at its first separator (any space, including U+3000, or a middle dot) into
/// family and given name, both normalised. `None` when there is no separator.
pub fn split_name(raw: &str) -> Option<(String, String)> {
    let raw = raw.trim();
    let at = raw.find(|c: char| c.is_whitespace() || matches!(c, '・' | '･' | '·'))?;
    let sep_len = raw[at..].chars().next().map_or(1, char::len_utf8);
    let (mut family, mut given) = (String::new(), String::new());
    name_normalize_into(&raw[..at], &mut family);
    name_normalize_into(&raw[at + sep_len..], &mut given);
    (!family.is_empty() && !given.is_empty()).then_some((family, given))
}

/// Splits names written without a separator (ヤマダタロウ) into family and given name, using the
/// family and given names seen written with one.
#[derive(Debug, Default)]
pub struct NameSplitter {
    family: rustc_hash::FxHashMap<String, u64>,
    given: rustc_hash::FxHashMap<String, u64>,
}

impl NameSplitter {
    /// Learns from a name written with a separator (normalised parts, as [`split_name`] gives).
    pub fn learn(&mut self, family: &str, given: &str) {
        *self.family.entry(family.to_owned()).or_default() += 1;
        *self.given.entry(given.to_owned()).or_default() += 1;
    }

    /// The most likely split of a normalised name: among the cuts where both parts are known,
    /// the one whose parts are most frequent together; else the longest known family name that
    /// leaves something; else `None`.
    pub fn split(&self, name: &str) -> Option<(String, String)> {
        let cuts: Vec<usize> = name.char_indices().map(|(i, _)| i).filter(|&i| i > 0).collect();
        let best = cuts
            .iter()
            .filter_map(|&i| {
                let f = self.family.get(&name[..i])?;
                let g = self.given.get(&name[i..])?;
                Some((f * g, std::cmp::Reverse(i)))
            })
            .max()
            .map(|(_, std::cmp::Reverse(i))| i)
            .or_else(|| cuts.iter().rev().copied().find(|&i| self.family.contains_key(&name[..i])))?;
        Some((name[..best].to_owned(), name[best..].to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut out = String::new();
        normalize_into(s, &mut out);
        out
    }

    #[test]
    fn spellings_of_one_name_agree() {
        for s in ["ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ　タロウ", "やまだ たろう", "ヤマダ・タロウ", "ﾔﾏﾀﾞ･ﾀﾛｳ", "ヤマダタロウ"]
        {
            assert_eq!(norm(s), "ヤマダタロウ", "{s}");
        }
        for s in ["ハットリ　キョウコ", "ハツトリ　キヨウコ", "ﾊｯﾄﾘ ｷｮｳｺ", "はっとり きょうこ"]
        {
            assert_eq!(norm(s), "ハツトリキヨウコ", "{s}");
        }
    }

    #[test]
    fn voiced_and_vu() {
        assert_eq!(norm("ヴァイオリン"), "バイオリン");
        assert_eq!(norm("ｳﾞｧｲｵﾘﾝ"), "バイオリン");
        assert_eq!(norm("ヴィ"), "ビ");
        assert_eq!(norm("ヴ"), "ブ");
        assert_eq!(norm("ヴュー"), "ビユー");
        assert_eq!(norm("ヴヴ"), "ブブ");
        assert_eq!(norm("ちぢみ"), "チジミ");
        assert_eq!(norm("ツヅキ"), "ツズキ");
        assert_eq!(norm("ヶ崎"), "ケ崎");
    }

    #[test]
    fn long_vowel_marks() {
        assert_eq!(norm("ｻｰﾄｰ"), "サートー");
        assert_eq!(norm("サ-ト-"), "サートー");
        assert_eq!(norm("サ−ト"), "サート");
        assert_eq!(norm("サ－ト"), "サート");
        assert_eq!(norm("サ―ト"), "サート");
        assert_eq!(norm("A-1"), "A-1");
        assert_eq!(norm("-サ"), "-サ");
    }

    #[test]
    fn names_split_and_fold() {
        assert_eq!(split_name("髙橋　太郎"), Some(("高橋".into(), "太郎".into())));
        assert_eq!(split_name("ﾀｶﾊｼ ﾀﾛｳ"), Some(("タカハシ".into(), "タロウ".into())));
        assert_eq!(split_name("タカハシタロウ"), None);
        let mut s = NameSplitter::default();
        for (f, g) in [("タカハシ", "タロウ"), ("タカ", "ハシタ"), ("タカハシ", "ハナコ"), ("ヤマダ", "タロウ")] {
            s.learn(f, g);
        }
        assert_eq!(s.split("タカハシタロウ"), Some(("タカハシ".into(), "タロウ".into())));
        assert_eq!(s.split("ヤマダジロウ"), Some(("ヤマダ".into(), "ジロウ".into())));
        assert_eq!(s.split("スズキイチロウ"), None);
    }
}
