//! Escaping of untrusted text (file and folder names from senders, reasons
//! that quote them, third-party error messages) before it is printed in a
//! log line, a table, a ledger reason or a page. Control characters and the
//! Unicode format characters that reorder or hide text (bidi overrides,
//! zero-width marks) are shown as `\u{..}` escapes, so a name can neither
//! forge a log line nor break a table. Must never drop or alter any other
//! character: what a person reads is what the sender wrote.

use std::borrow::Cow;

/// Whether a character must be escaped before it is shown.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM/RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}')
}

/// `s` with every control or hiding character written as `\u{XX}`.
/// Idempotent (text escaped once is not escaped again on its way to a
/// table or a page). Borrowed when nothing needed escaping.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Untrusted text as it may be quoted in a one-line message: escaped as by
/// [`printable`] and cut after `max` characters, with how long it really
/// was, so a 5,000-character field cannot fill a ledger reason or a log line.
pub fn excerpt(s: &str, max: usize) -> String {
    let shown = printable(s);
    if shown.chars().count() <= max {
        return shown.into_owned();
    }
    let cut: String = shown.chars().take(max).collect();
    format!("{cut}... ({} bytes)", s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("part-0.parquet"), "part-0.parquet");
        assert_eq!(printable("Nguyễn Văn An"), "Nguyễn Văn An");
        assert_eq!(printable("a\nb"), "a\\u{a}b");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(printable("x\u{202E}y"), "x\\u{202e}y");
        assert_eq!(printable(&printable("a\nb")), "a\\u{a}b");
        assert_eq!(excerpt("abc", 3), "abc");
        assert_eq!(excerpt("abcd\n", 3), "abc... (5 bytes)");
        assert!(!printable("\r\n\t\u{7f}\u{85}")
            .chars()
            .any(char::is_control));
    }
}
