//! PostgreSQL's 64-bit hash functions, computed in Rust on the values Kura stored, so that both
//! sides of an import can checksum a table with the same function and PostgreSQL's side runs at
//! C speed (its built-in `*_extended` hash support functions) instead of building text per row.
//!
//! - [`hash_bytes`] is `hash_bytes_extended` of PostgreSQL's `src/common/hashfn.c` (Bob
//!   Jenkins' lookup3 with a 64-bit seed, little-endian word reads), which `hashtextextended`
//!   (deterministic collations), `hashvarlenaextended` and the float hashes use;
//!   [`hash_u32`] is `hash_bytes_uint32_extended`.
//! - The per-type functions follow `hashint8extended`, `hashfloat8extended`,
//!   `hash_numeric_extended` and `hash_array_extended` (element hashes combined as
//!   `h = h * 31 + e`, starting at 1, NULL elements 0).
//!
//! The tests compare each function with a running PostgreSQL server (`tests/it/pg_import.rs`);
//! the unit tests here pin values PostgreSQL 15 computed.

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn finish(mut a: u32, mut b: u32, mut c: u32) -> u64 {
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(24));
    ((b as u64) << 32) | c as u64
}

#[inline]
fn start(len: u32, seed: u64) -> (u32, u32, u32) {
    let init = 0x9e37_79b9u32.wrapping_add(len).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    (a, b, c)
}

#[inline]
fn word(k: &[u8]) -> u32 {
    u32::from_le_bytes([k[0], k[1], k[2], k[3]])
}

/// `hash_bytes_extended(k, len, seed)`.
pub fn hash_bytes(k: &[u8], seed: u64) -> u64 {
    let (mut a, mut b, mut c) = start(k.len() as u32, seed);
    let mut rest = k;
    while rest.len() >= 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    // The last 11 bytes: a and b take four each, c three above its lowest byte (the length's).
    for (i, &byte) in rest.iter().enumerate() {
        let v = byte as u32;
        match i {
            0..=3 => a = a.wrapping_add(v << (8 * i)),
            4..=7 => b = b.wrapping_add(v << (8 * (i - 4))),
            _ => c = c.wrapping_add(v << (8 * (i - 7))),
        }
    }
    finish(a, b, c)
}

/// `hash_bytes_uint32_extended(k, seed)`: `hashint4extended`, and `hashint2extended` /
/// `hashcharextended` (booleans) of their value widened to 32 bits.
pub fn hash_u32(k: u32, seed: u64) -> u64 {
    let (a, b, c) = start(4, seed);
    finish(a.wrapping_add(k), b, c)
}

/// `hashint8extended`: also the hash of timestamps (microseconds since 2000-01-01).
pub fn hash_i64(v: i64, seed: u64) -> u64 {
    let hi = (v >> 32) as u32;
    let lo = v as u32 ^ if v >= 0 { hi } else { !hi };
    hash_u32(lo, seed)
}

/// `hashfloat8extended` (and `hashfloat4extended` of the value widened): zeros hash to the seed,
/// every NaN as PostgreSQL's one NaN.
pub fn hash_f64(v: f64, seed: u64) -> u64 {
    if v == 0.0 {
        return seed;
    }
    let v = if v.is_nan() { f64::NAN } else { v };
    hash_bytes(&v.to_le_bytes(), seed)
}

/// `hash_numeric_extended` of the decimal `unscaled * 10^-scale`: the hash of its base-10000
/// digits without leading and trailing zeros, xor its weight. Like PostgreSQL's, it ignores the
/// sign (the checksum query hashes negative numbers with another seed, see
/// [`crate::types::SourceTable::checksum_sql`]).
pub fn hash_numeric(unscaled: i128, scale: i8, seed: u64) -> u64 {
    let mut u = unscaled.unsigned_abs();
    if u == 0 {
        return seed.wrapping_sub(1);
    }
    // Split into base-10000 digits aligned on the decimal point, least significant first.
    let scale = scale.max(0) as u32;
    let pad = (4 - scale % 4) % 4;
    let fraction_digits = ((scale + pad) / 4) as i32;
    let mut digits: Vec<u16> = Vec::with_capacity(12);
    if pad > 0 {
        let low = 10u128.pow(4 - pad);
        digits.push(((u % low) * 10u128.pow(pad)) as u16);
        u /= low;
    }
    while u > 0 {
        digits.push((u % 10_000) as u16);
        u /= 10_000;
    }
    // The most significant digit's weight; then drop zero digits at both ends.
    let mut weight = digits.len() as i32 - 1 - fraction_digits;
    while digits.last() == Some(&0) {
        digits.pop();
        weight -= 1;
    }
    let lowest = digits.iter().position(|d| *d != 0).unwrap_or(0);
    let bytes: Vec<u8> = digits[lowest..].iter().rev().flat_map(|d| d.to_le_bytes()).collect();
    hash_bytes(&bytes, seed) ^ (weight as i64 as u64)
}

/// `hash_array_extended`'s combination of element hashes (`None` for a NULL element).
pub fn combine_array(elements: impl IntoIterator<Item = Option<u64>>) -> u64 {
    elements.into_iter().fold(1u64, |h, e| h.wrapping_mul(31).wrapping_add(e.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from PostgreSQL 15.
    #[test]
    fn agrees_with_postgresql() {
        assert_eq!(hash_u32(1, 0) as i64, -3670598878359251130); // hashint4extended(1, 0)
        assert_eq!(combine_array([]), 1); // hash_array_extended('{}'::int[], 0)
        assert_eq!(combine_array([Some(hash_u32(1, 0))]) as i64, -3670598878359251099);
        assert_eq!(combine_array([Some(hash_u32(1, 0)), None]) as i64, -3108100786879474373);
        assert_eq!(hash_f64(0.0, 7), 7);
        assert_eq!(hash_f64(-0.0, 7), 7);
        assert_eq!(hash_f64(f64::NAN, 0) as i64, 4719788943832604568);
        assert_eq!(hash_f64(-f64::NAN, 0) as i64, 4719788943832604568);
        assert_eq!(hash_numeric(0, 2, 5), 4);
        assert_eq!(hash_numeric(150, 2, 0) as i64, -8828336294488843818); // 1.50
        assert_eq!(hash_numeric(15, 1, 0) as i64, -8828336294488843818); // 1.5
        assert_eq!(hash_numeric(-15, 1, 0) as i64, -8828336294488843818);
    }

    #[test]
    fn numeric_digits_align_on_the_point() {
        // 12345.6789 and 12345.67890 are one value; 1234.56789 is another.
        assert_eq!(hash_numeric(123456789, 4, 3), hash_numeric(1234567890, 5, 3));
        assert_ne!(hash_numeric(123456789, 4, 3), hash_numeric(123456789, 5, 3));
        // 10000 and 1 differ only by weight.
        assert_ne!(hash_numeric(10000, 0, 0), hash_numeric(1, 0, 0));
        assert_eq!(hash_numeric(10000, 0, 0) ^ 1, hash_numeric(1, 0, 0));
    }
}
