//! Cookies. The first input byte picks the reader: 0, the proxy's `Cookie` headers (one per
//! line) for every provider's session and the login state; 1, the proxy's sealed-cookie
//! parsing behind the authentication tag (the rest sealed as plaintext first); 2, the core's
//! `Cookie` headers for `redoubt_session` and `redoubt_csrf` (plain and `__Host-`); 3, the
//! core's session round trip (a session built from the rest, sealed, opened).
//!
//! Invariants: no panic; values read are non-empty cookie octets (the core's at most 4096), and
//! the core's reader and the proxy's agree;
//! nothing but a genuine sealed cookie opens, and a genuine one opens as sealed; the CSRF check
//! passes only for equal values of at least 32 bytes. See
//! `redoubt_outpost::fuzz_api::cookies` for the proxy's side.
#![no_main]

use http::{HeaderMap, HeaderValue, header::COOKIE};
use libfuzzer_sys::fuzz_target;
use redoubt_core::auth::seal::Sealer;
use redoubt_core::web::session::{self as core_session, Session};
use redoubt_core::web::{cookies, csrf};
use redoubt_outpost::fuzz_api::cookies::ProxyCookieTarget;
use redoubt_outpost::proxy::headers::find_cookie;
use std::sync::LazyLock;

/// When the inputs arrive, Unix seconds (the genuine core session is live).
const NOW: i64 = 2_000_000_000;

/// The core's side: a sealer and a genuine session cookie.
struct CoreCookies {
    sealer: Sealer,
    genuine: String,
    session: Session,
}

static PROXY: LazyLock<ProxyCookieTarget> = LazyLock::new(ProxyCookieTarget::default);
static CORE: LazyLock<CoreCookies> = LazyLock::new(|| {
    let sealer = Sealer::new(&[3; 32]);
    let session = Session {
        sid: "c2lkMTIzNDU2Nzg5MDEyMw".into(),
        user_id: 7,
        auth_time_ms: 1_700_000_000_000,
        expires_at: 4_000_000_000,
    };
    let genuine = session.seal(&sealer).expect("the core seals");
    let mut headers = HeaderMap::new();
    let value = format!(
        "{}={genuine}",
        cookies::wire_name(core_session::COOKIE, true)
    );
    headers.insert(
        COOKIE,
        HeaderValue::from_str(&value).expect("a header value"),
    );
    let read = cookies::get(&headers, core_session::COOKIE, true).expect("the cookie reads");
    assert_eq!(
        Session::open(&sealer, &read, NOW),
        Ok(session.clone()),
        "genuine opens"
    );
    CoreCookies {
        sealer,
        genuine,
        session,
    }
});

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    match mode % 4 {
        0 => PROXY.run_header(rest),
        1 => PROXY.run_sealed(rest),
        2 => core_header(rest),
        _ => core_round_trip(rest),
    }
});

fn core_header(bytes: &[u8]) {
    let core = &*CORE;
    let mut headers = HeaderMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    for secure in [false, true] {
        let session = cookies::get(&headers, core_session::COOKIE, secure);
        let token = cookies::get(&headers, csrf::COOKIE, secure);
        for (name, read) in [(core_session::COOKIE, &session), (csrf::COOKIE, &token)] {
            // The proxy reads cookies by the same rules, without the core's length cap.
            match find_cookie(&headers, &cookies::wire_name(name, secure)) {
                None => assert_eq!(*read, None, "the proxy's reader finds no {name}"),
                Some(proxy) if proxy.len() <= 4096 => {
                    assert_eq!(read.as_deref(), Some(proxy), "both readers agree on {name}")
                }
                Some(_) => {}
            }
        }
        for value in session.iter().chain(&token) {
            assert!(
                !value.is_empty()
                    && value.len() <= 4096
                    && value.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)),
                "a cookie value of 1 to 4096 cookie octets: {value:?}"
            );
        }
        if let Some(value) = &session
            && let Ok(opened) = Session::open(&core.sealer, value, NOW)
        {
            assert_eq!(*value, core.genuine, "only the genuine cookie opens");
            assert_eq!(opened, core.session, "the genuine cookie opens as sealed");
        }
        let field = std::str::from_utf8(bytes).ok();
        if csrf::matches(token.as_deref(), field) {
            assert!(
                token.as_deref() == field && field.is_some_and(|f| f.len() >= 32),
                "CSRF passes only for equal tokens of 32 bytes or more"
            );
        }
    }
}

fn core_round_trip(bytes: &[u8]) {
    let core = &*CORE;
    let number = |at: usize| -> i64 {
        let mut word = [0u8; 8];
        for (i, b) in bytes.iter().skip(at).take(8).enumerate() {
            word[i] = *b;
        }
        i64::from_le_bytes(word)
    };
    let session = Session {
        sid: String::from_utf8_lossy(bytes.get(24..).unwrap_or_default()).into_owned(),
        user_id: number(0),
        auth_time_ms: number(8),
        expires_at: number(16),
    };
    let Ok(sealed) = session.seal(&core.sealer) else {
        return;
    };
    let opened = Session::open(&core.sealer, &sealed, NOW);
    let well_formed = !session.sid.is_empty() && !session.sid.contains('|');
    if well_formed && session.expires_at > NOW {
        assert_eq!(opened, Ok(session), "a sealed session opens as itself");
    } else {
        assert!(opened.is_err(), "{session:?} opens as {opened:?}");
    }
}
