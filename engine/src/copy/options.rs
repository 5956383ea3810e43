//! COPY options, PostgreSQL's names plus Kura's (`REJECTS_TABLE`).

use crate::{Error, Result};

/// File formats COPY reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyFormat {
    /// Comma-separated values.
    Csv,
    /// PostgreSQL's text format: tab-separated, `\N` for NULL, no quoting.
    Text,
    /// Apache Parquet.
    Parquet,
    /// Claims files (レセプト電算), loaded into a schema's normalised tables.
    Receipt,
}

/// What a claims load does with malformed records (`ON_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Load nothing.
    Abort,
    /// Leave out the receipts (or files) they belong to, list them, load the rest.
    Skip,
}

/// Character encodings of CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileEncoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// Shift_JIS as Windows writes it (CP932 / Windows-31J).
    ShiftJis,
}

/// Parsed COPY options.
#[derive(Debug, Clone)]
pub(crate) struct CopyOptions {
    pub format: CopyFormat,
    pub header: bool,
    /// `HEADER MATCH`: the header's names must equal the loaded columns, in order.
    pub header_match: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    pub null: String,
    pub encoding: FileEncoding,
    /// Table that receives rows that could not be loaded, instead of failing the load.
    pub rejects_table: Option<String>,
    /// FORMAT receipt: what malformed records do.
    pub on_error: OnError,
}

fn single_byte(name: &str, value: &str) -> Result<u8> {
    let bytes = value.as_bytes();
    if bytes.len() != 1 {
        return Err(Error::Invalid(format!("COPY {name} must be a single one-byte character")));
    }
    Ok(bytes[0])
}

fn boolean(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        _ => Err(Error::Invalid(format!("COPY {name} requires a Boolean value"))),
    }
}

impl CopyOptions {
    pub(crate) fn parse(options: &[(String, String)], to: bool) -> Result<Self> {
        let format = match options.iter().rev().find(|(k, _)| k == "format").map(|(_, v)| v.to_ascii_lowercase()) {
            None => CopyFormat::Text,
            Some(f) if f == "csv" => CopyFormat::Csv,
            Some(f) if f == "text" => CopyFormat::Text,
            Some(f) if f == "parquet" => CopyFormat::Parquet,
            Some(f) if f == "receipt" && !to => CopyFormat::Receipt,
            Some(f) if f == "receipt" => return Err(Error::Invalid("COPY FORMAT receipt only loads (COPY ... FROM)".into())),
            Some(f) => return Err(Error::Invalid(format!("COPY format \"{f}\" not recognized (csv, text, parquet, receipt)"))),
        };
        let mut o = CopyOptions {
            format,
            header: false,
            header_match: false,
            delimiter: if format == CopyFormat::Text { b'\t' } else { b',' },
            quote: b'"',
            escape: None,
            null: if format == CopyFormat::Text { "\\N".into() } else { String::new() },
            // Claims files are Shift_JIS unless said otherwise.
            encoding: if format == CopyFormat::Receipt { FileEncoding::ShiftJis } else { FileEncoding::Utf8 },
            rejects_table: None,
            on_error: OnError::Abort,
        };
        for (key, value) in options {
            match key.as_str() {
                "format" => {}
                "header" if value.eq_ignore_ascii_case("match") => {
                    o.header = true;
                    o.header_match = true;
                }
                "header" => o.header = boolean(key, value)?,
                "delimiter" => o.delimiter = single_byte(key, value)?,
                "quote" => o.quote = single_byte(key, value)?,
                "escape" => o.escape = Some(single_byte(key, value)?),
                "null" => o.null = value.clone(),
                "encoding" => {
                    o.encoding = match value.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
                        "utf8" | "unicode" => FileEncoding::Utf8,
                        "shiftjis" | "sjis" | "cp932" | "windows31j" | "mskanji" => FileEncoding::ShiftJis,
                        _ => {
                            return Err(Error::Invalid(format!(
                                "COPY encoding \"{value}\" not supported (utf8, shift_jis/cp932)"
                            )));
                        }
                    }
                }
                "rejects_table" if !to => o.rejects_table = Some(value.clone()),
                "on_error" if o.format == CopyFormat::Receipt => {
                    o.on_error = match value.to_ascii_lowercase().as_str() {
                        "abort" | "stop" => OnError::Abort,
                        "skip" | "ignore" => OnError::Skip,
                        _ => return Err(Error::Invalid("COPY ON_ERROR must be 'abort' or 'skip'".into())),
                    }
                }
                other => return Err(Error::Invalid(format!("COPY option \"{other}\" not recognized"))),
            }
        }
        if o.format == CopyFormat::Receipt
            && let Some((k, _)) = options.iter().find(|(k, _)| !matches!(k.as_str(), "format" | "encoding" | "on_error"))
        {
            return Err(Error::Invalid(format!("COPY with FORMAT receipt takes ON_ERROR and ENCODING only, not \"{k}\"")));
        }
        if o.format == CopyFormat::Parquet && options.iter().any(|(k, _)| k != "format") {
            return Err(Error::Invalid("COPY with FORMAT parquet takes no other options".into()));
        }
        if o.delimiter == o.quote && o.format == CopyFormat::Csv {
            return Err(Error::Invalid("COPY delimiter and quote must be different".into()));
        }
        Ok(o)
    }
}
