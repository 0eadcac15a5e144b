//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 30-second steps,
//! six digits, one step of clock drift accepted either way.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step (RFC 6238 section 4: X = 30 by default).
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps of drift tolerated before and after the current one.
const DRIFT_STEPS: i64 = 1;

/// Generates a 160-bit secret, as RFC 4226 section 4 recommends.
pub fn generate_secret() -> Result<[u8; 20], getrandom::Error> {
    let mut secret = [0u8; 20];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

/// The secret in the base32 form authenticator apps expect.
pub fn encode_secret(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI an authenticator app scans (Google Authenticator key URI format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let label = format!("{}:{}", percent_encode(issuer), percent_encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        encode_secret(secret),
        percent_encode(issuer)
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The HOTP value for `counter` (RFC 4226 section 5.3), as a zero-padded string.
pub fn hotp(secret: &[u8], counter: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new(); // HMAC accepts keys of any length; unreachable in practice.
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The step number of time `now`.
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// Checks `code` against the steps around `now` and returns the step it matched. The caller
/// must then record that step as used to refuse replays.
pub fn verify(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut matched = None;
    // Check every candidate so the time taken does not depend on which one matched.
    for step in (current - DRIFT_STEPS)..=(current + DRIFT_STEPS) {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        if bool::from(hotp(secret, counter).as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step);
        }
    }
    matched
}

/// Splits `password;123456` into the password and a six-digit code. Anything else is returned
/// whole as the password.
pub fn split_code_suffix(input: &str) -> (&str, Option<&str>) {
    match input.rsplit_once(';') {
        Some((password, code))
            if code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (password, Some(code))
        }
        _ => (input, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64), *code);
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors_truncated_to_six_digits() {
        // The RFC lists 8-digit codes; six digits are their last six.
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
        ] {
            assert_eq!(
                verify(RFC_SECRET, code, time),
                Some(step_at(time)),
                "time {time}"
            );
        }
    }

    #[test]
    fn drift_window_and_garbage() {
        let now = 1_700_000_000;
        let previous = hotp(
            RFC_SECRET,
            u64::try_from(step_at(now) - 1).expect("positive"),
        );
        assert_eq!(verify(RFC_SECRET, &previous, now), Some(step_at(now) - 1));
        let old = hotp(
            RFC_SECRET,
            u64::try_from(step_at(now) - 3).expect("positive"),
        );
        assert_eq!(verify(RFC_SECRET, &old, now), None);
        assert_eq!(verify(RFC_SECRET, "12345", now), None);
        assert_eq!(verify(RFC_SECRET, "abcdef", now), None);
    }

    #[test]
    fn suffix_split() {
        assert_eq!(split_code_suffix("pw;123456"), ("pw", Some("123456")));
        assert_eq!(split_code_suffix("p;w;123456"), ("p;w", Some("123456")));
        assert_eq!(split_code_suffix("pw;12345"), ("pw;12345", None));
        assert_eq!(split_code_suffix("pw"), ("pw", None));
    }

    #[test]
    fn uri_is_scannable() {
        let uri = otpauth_uri("Redoubt", "alice@example.com", RFC_SECRET);
        assert!(uri.starts_with(
            "otpauth://totp/Redoubt:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        ));
        assert!(uri.contains("&issuer=Redoubt&"));
    }
}
