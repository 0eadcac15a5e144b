//! Clipboard text between the browser (UTF-8, `\n` line ends) and RDP's `CF_UNICODETEXT`
//! (UTF-16LE, `\r\n` line ends, NUL-terminated), with the endpoint's size cap.

/// Why a clipboard text was not passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClipboardError {
    /// The text is larger than the endpoint allows (sizes in bytes; UTF-8 for text from the
    /// browser, the raw format data for text from the remote desktop).
    #[error("clipboard text of {len} bytes is over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

/// Fails when `len` bytes are over `max`.
pub fn check_size(len: usize, max: usize) -> Result<(), ClipboardError> {
    if len > max {
        Err(ClipboardError::TooLarge { len, max })
    } else {
        Ok(())
    }
}

/// Browser text as `CF_UNICODETEXT` data: every `\n` not already after a `\r` becomes `\r\n`,
/// UTF-16LE, with a terminating NUL.
pub fn to_cf_unicodetext(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 2 + 2);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.extend_from_slice(&u16::from(b'\r').to_le_bytes());
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            out.extend_from_slice(&unit.to_le_bytes());
        }
        previous = c;
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// [`to_cf_unicodetext`] for browser text of at most `max` bytes.
pub fn to_cf_unicodetext_capped(text: &str, max: usize) -> Result<Vec<u8>, ClipboardError> {
    check_size(text.len(), max)?;
    Ok(to_cf_unicodetext(text))
}

/// `CF_UNICODETEXT` data as browser text: read up to the first NUL (or the end; an odd last
/// byte is ignored), `\r\n` becomes `\n`, unpaired surrogates become U+FFFD.
pub fn from_cf_unicodetext(data: &[u8]) -> String {
    let units = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0);
    let text: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text
    }
}

/// [`from_cf_unicodetext`] for a text of at most `max` UTF-8 bytes. Data longer than any such
/// text can be (`4 * max + 2`: a `\n` is four bytes as CRLF, plus the NUL) is refused before
/// it is converted.
pub fn from_cf_unicodetext_capped(data: &[u8], max: usize) -> Result<String, ClipboardError> {
    check_size(data.len(), max.saturating_mul(4).saturating_add(2))?;
    let text = from_cf_unicodetext(data);
    check_size(text.len(), max)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn browser_text_becomes_crlf_utf16le_with_a_nul() {
        assert_eq!(to_cf_unicodetext(""), [0, 0]);
        assert_eq!(
            to_cf_unicodetext("a\nb"),
            [b'a', 0, b'\r', 0, b'\n', 0, b'b', 0, 0, 0]
        );
        // Existing CRLF pairs are kept, lone CRs too.
        let mut expected = utf16("x\r\ny\rz\r\n😀");
        expected.extend_from_slice(&[0, 0]);
        assert_eq!(to_cf_unicodetext("x\r\ny\rz\n😀"), expected);
    }

    #[test]
    fn remote_text_stops_at_nul_and_loses_cr() {
        let mut data = utf16("one\r\ntwo\r\n€");
        data.extend_from_slice(&[0, 0]);
        data.extend_from_slice(&utf16("ignored"));
        assert_eq!(from_cf_unicodetext(&data), "one\ntwo\n€");
        // No terminator, an odd trailing byte.
        let mut data = utf16("abc");
        data.push(b'x');
        assert_eq!(from_cf_unicodetext(&data), "abc");
        assert_eq!(from_cf_unicodetext(&[]), "");
    }

    #[test]
    fn unpaired_surrogates_are_replaced() {
        let data = [0x3D, 0xD8, b'a', 0, 0x00, 0xDE, 0, 0];
        assert_eq!(from_cf_unicodetext(&data), "\u{FFFD}a\u{FFFD}");
    }

    #[test]
    fn round_trip_normalises_line_ends() {
        for text in ["", "plain", "a\nb\n", "tab\tand ünïcödé 😀\n\nend"] {
            assert_eq!(from_cf_unicodetext(&to_cf_unicodetext(text)), text);
        }
    }

    #[test]
    fn caps_are_enforced_both_ways() {
        assert_eq!(to_cf_unicodetext_capped("abcd", 4).map(|d| d.len()), Ok(10));
        assert_eq!(
            to_cf_unicodetext_capped("abcde", 4),
            Err(ClipboardError::TooLarge { len: 5, max: 4 })
        );
        let data = to_cf_unicodetext("abcd"); // 10 bytes
        assert_eq!(from_cf_unicodetext_capped(&data, 4).as_deref(), Ok("abcd"));
        assert_eq!(
            from_cf_unicodetext_capped(&data, 3),
            Err(ClipboardError::TooLarge { len: 4, max: 3 })
        );
        // Data too long for any text within the cap is refused unread.
        assert_eq!(
            from_cf_unicodetext_capped(&[b'a'; 20], 2),
            Err(ClipboardError::TooLarge { len: 20, max: 10 })
        );
        // Small data that expands past the cap as UTF-8 (3 bytes per unit) is refused too.
        let data = utf16("€€€€");
        assert_eq!(
            from_cf_unicodetext_capped(&data, 8),
            Err(ClipboardError::TooLarge { len: 12, max: 8 })
        );
        assert_eq!(
            ClipboardError::TooLarge { len: 5, max: 4 }.to_string(),
            "clipboard text of 5 bytes is over the limit of 4 bytes"
        );
    }
}
