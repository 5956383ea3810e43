//! Small synthetic input files for the SQL tests, written fresh into each test's folder.
//! Names and values are invented; nothing here comes from real records.

use std::path::Path;

/// The people table's rows as UTF-8 CSV with a header.
pub const PEOPLE_CSV: &str = "id,name_kanji,name_kana,birth_date,sex,weight\n\
1,髙橋 一郎,タカハシ イチロウ,1950-04-01,1,61.5\n\
2,佐藤 花子,サトウ ハナコ,1962-11-30,2,\n\
3,\"山田, 太郎\",ヤマダ タロウ,1975-01-15,1,70.25\n\
4,鈴木 﨑子,スズキ サキコ,1988-07-07,2,52\n";

/// Writes every fixture into `dir`.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("people.csv"), PEOPLE_CSV)?;
    // UTF-8 with a byte-order mark, as spreadsheet exports write it.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(PEOPLE_CSV.as_bytes());
    std::fs::write(dir.join("people_bom.csv"), bom)?;
    // Shift_JIS (CP932), as municipal systems write it; 髙 and 﨑 are CP932 extensions.
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(PEOPLE_CSV);
    assert!(!unmappable, "fixture must be representable in Shift_JIS");
    std::fs::write(dir.join("people_sjis.csv"), &sjis)?;
    // No header, semicolons, a custom NULL marker.
    std::fs::write(
        dir.join("people_semicolon.csv"),
        "5;伊藤 次郎;イトウ ジロウ;1940-02-29;1;NA\n6;渡辺 桜;ワタナベ サクラ;2001-03-03;2;48.0\n",
    )?;
    // A bad date on line 3 (a header is line 1).
    std::fs::write(
        dir.join("people_bad_date.csv"),
        "id,name_kanji,name_kana,birth_date,sex,weight\n7,中村 健,ナカムラ ケン,1970-01-01,1,80\n8,小林 愛,コバヤシ アイ,1970-13-45,2,55\n",
    )?;
    // A missing field on line 2 and a NULL id (NOT NULL) on line 4.
    std::fs::write(
        dir.join("people_mixed.csv"),
        "id,name_kanji,name_kana,birth_date,sex,weight\n9,加藤 誠,カトウ マコト,1980-05-05,1\n10,吉田 恵,ヨシダ メグミ,1990-06-06,2,50\n,山本 翔,ヤマモト ショウ,1999-09-09,1,65\n11,松本 望,マツモト ノゾミ,1985-08-08,2,49.5\n",
    )?;
    // Bytes that are not valid Shift_JIS on line 2.
    let mut broken = b"id,name_kanji,name_kana,birth_date,sex,weight\n".to_vec();
    broken.extend_from_slice(b"12,\x82\xa0\x82,\x83A,1970-01-01,1,60\n");
    std::fs::write(dir.join("people_broken_sjis.csv"), broken)?;
    // Dates as municipal systems write them: slashes and 8 digits.
    std::fs::write(
        dir.join("people_dates.csv"),
        "14,木村 涼,キムラ リョウ,1971/2/3,1,\n15,林 茜,ハヤシ アカネ,19830415,2,\n16,清水 悟,シミズ サトル,1983-04-31,1,\n",
    )?;
    // PostgreSQL text format: tabs, \N for NULL.
    std::fs::write(dir.join("people.tsv"), "13\t井上 光\tイノウエ ヒカル\t1966-06-16\t1\t\\N\n")?;
    Ok(())
}
