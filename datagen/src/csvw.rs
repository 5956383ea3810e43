//! A minimal hand-written CSV row writer (RFC 4180 quoting only when needed; empty = NULL).

use crate::date::Date;

/// Writes one CSV row into a byte buffer. Call [`Row::end`] to terminate the line.
pub(crate) struct Row<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Row<'a> {
    /// Start a row.
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Row<'a> {
        Row { buf, first: true }
    }

    #[inline]
    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    /// A text field, quoted when it contains a comma, quote or line break.
    #[inline]
    pub(crate) fn s(&mut self, v: &str) -> &mut Self {
        self.sep();
        if v.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
            self.buf.push(b'"');
            for b in v.bytes() {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(v.as_bytes());
        }
        self
    }

    /// An optional text field.
    #[inline]
    pub(crate) fn os(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.s(v),
            None => self.null(),
        }
    }

    /// An empty (NULL) field.
    #[inline]
    pub(crate) fn null(&mut self) -> &mut Self {
        self.sep();
        self
    }

    /// An integer field.
    #[inline]
    pub(crate) fn i(&mut self, v: i64) -> &mut Self {
        self.sep();
        write_int(self.buf, v);
        self
    }

    /// An integer zero-padded to `width` digits (as text, e.g. codes).
    #[inline]
    pub(crate) fn z(&mut self, v: u64, width: usize) -> &mut Self {
        self.sep();
        write_zero_padded(self.buf, v, width);
        self
    }

    /// An optional integer.
    #[inline]
    pub(crate) fn oi(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.i(v),
            None => self.null(),
        }
    }

    /// A decimal with `dec` digits after the point (0..=3).
    #[inline]
    pub(crate) fn f(&mut self, v: f64, dec: u32) -> &mut Self {
        self.sep();
        write_fixed(self.buf, v, dec);
        self
    }

    /// An optional decimal.
    #[inline]
    pub(crate) fn of(&mut self, v: Option<f64>, dec: u32) -> &mut Self {
        match v {
            Some(v) => self.f(v, dec),
            None => self.null(),
        }
    }

    /// An ISO date.
    #[inline]
    pub(crate) fn d(&mut self, v: Date) -> &mut Self {
        self.sep();
        v.write_iso(self.buf);
        self
    }

    /// An optional ISO date.
    #[inline]
    pub(crate) fn od(&mut self, v: Option<Date>) -> &mut Self {
        match v {
            Some(v) => self.d(v),
            None => self.null(),
        }
    }

    /// A date as claims era code (e.g. `3500101`).
    #[inline]
    pub(crate) fn era_code(&mut self, v: Date) -> &mut Self {
        self.sep();
        v.write_era_code(self.buf);
        self
    }

    /// A date as written era text (e.g. `昭和50年1月1日`).
    #[inline]
    pub(crate) fn era_text(&mut self, v: Date) -> &mut Self {
        self.sep();
        v.write_era_text(self.buf);
        self
    }

    /// A boolean (`true` / `false`).
    #[inline]
    pub(crate) fn b(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    /// Terminate the row.
    #[inline]
    pub(crate) fn end(&mut self) {
        self.buf.push(b'\n');
    }
}

/// Append a signed integer.
pub(crate) fn write_int(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Append an unsigned integer left-padded with zeros.
pub(crate) fn write_zero_padded(buf: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [b'0'; 24];
    let mut i = tmp.len();
    while v > 0 || tmp.len() - i < width {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if i == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Append a fixed-point decimal.
pub(crate) fn write_fixed(buf: &mut Vec<u8>, v: f64, dec: u32) {
    let scale = 10i64.pow(dec);
    let scaled = (v * scale as f64).round() as i64;
    if scaled < 0 {
        buf.push(b'-');
    }
    let a = scaled.unsigned_abs();
    write_int(buf, (a / scale as u64) as i64);
    if dec > 0 {
        buf.push(b'.');
        write_zero_padded(buf, a % scale as u64, dec as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let mut b = Vec::new();
        Row::new(&mut b).s("a,b").i(-42).null().f(1.23456, 2).f(-0.05, 1).z(7, 3).b(true).end();
        assert_eq!(String::from_utf8(b).unwrap(), "\"a,b\",-42,,1.23,-0.1,007,true\n");
        let mut b = Vec::new();
        write_fixed(&mut b, 0.004, 2);
        assert_eq!(b, b"0.00");
    }
}
