//! Local primary keys for rows the sync inserts, in the formats apps already use (see
//! [`KeyFill`]): a table whose key has no database default — Prisma's `@default(cuid())` is filled
//! by the Prisma client, not the database — still gets keys of its own kind.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;

use super::KeyFill;

/// A new key for the row of tenant `carcosa_id`; `None` when the database assigns it.
pub(super) fn new_key(fill: KeyFill, carcosa_id: &str) -> Option<String> {
    match fill {
        KeyFill::Database => None,
        KeyFill::CarcosaId => Some(carcosa_id.to_owned()),
        KeyFill::Cuid => Some(cuid()),
        KeyFill::Ulid => Some(ulid::Ulid::new().to_string()),
        KeyFill::UuidV4 => Some(uuid(rand::thread_rng().r#gen(), None)),
        KeyFill::UuidV7 => Some(uuid(rand::thread_rng().r#gen(), Some(now_millis()))),
    }
}

fn now_millis() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// An RFC 9562 UUID from 16 random bytes: version 4, or version 7 when given the Unix time in
/// milliseconds (its first 48 bits, so keys sort by creation time).
fn uuid(mut bytes: [u8; 16], millis: Option<u64>) -> String {
    let version = match millis {
        Some(ms) => {
            bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
            0x70
        }
        None => 0x40,
    };
    bytes[6] = (bytes[6] & 0x0f) | version;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A cuid (version 1, the format of Prisma's `cuid()`): `c`, then in base 36 the time in
/// milliseconds (8), a counter (4), a fingerprint of this process (4) and randomness (8).
fn cuid() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    const BLOCK: u64 = 36 * 36 * 36 * 36;
    let fingerprint = FINGERPRINT.get_or_init(|| {
        let pid = u64::from(std::process::id()) % (36 * 36);
        let host: u64 = rand::thread_rng().gen_range(0..36 * 36);
        format!("{}{}", base36(pid, 2), base36(host, 2))
    });
    let count = u64::from(COUNTER.fetch_add(1, Ordering::Relaxed)) % BLOCK;
    let mut rng = rand::thread_rng();
    format!(
        "c{}{}{}{}{}",
        base36(now_millis(), 8),
        base36(count, 4),
        fingerprint,
        base36(rng.gen_range(0..BLOCK), 4),
        base36(rng.gen_range(0..BLOCK), 4)
    )
}

/// `n` in lowercase base 36, left-padded with zeros (or cut to its last digits) to `width`.
fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuids_look_like_prismas_and_do_not_repeat() {
        let a = cuid();
        let b = cuid();
        assert_eq!(a.len(), 25, "{a}");
        assert!(a.starts_with('c'));
        assert!(a.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(a, b);
        assert!(a[1..9] <= b[1..9], "the time part sorts");
    }

    #[test]
    fn uuids_carry_their_version_and_variant() {
        let v4 = new_key(KeyFill::UuidV4, "ten_x").unwrap();
        let v7 = new_key(KeyFill::UuidV7, "ten_x").unwrap();
        for (key, version) in [(&v4, '4'), (&v7, '7')] {
            assert_eq!(key.len(), 36);
            assert_eq!(key.as_bytes()[14] as char, version, "{key}");
            assert!(matches!(key.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{key}");
        }
        let ms = u64::from_str_radix(&v7.replace('-', "")[..12], 16).unwrap();
        assert!(now_millis().abs_diff(ms) < 60_000, "v7 holds the time");
        assert_eq!(uuid([0; 16], Some(0)), "00000000-0000-7000-8000-000000000000");
    }

    #[test]
    fn other_fills() {
        assert_eq!(new_key(KeyFill::Database, "ten_x"), None);
        assert_eq!(new_key(KeyFill::CarcosaId, "ten_x").as_deref(), Some("ten_x"));
        assert_eq!(new_key(KeyFill::Ulid, "ten_x").unwrap().len(), 26);
        assert_eq!(base36(35, 2), "0z");
        assert_eq!(base36(36 * 36, 2), "00");
    }
}
