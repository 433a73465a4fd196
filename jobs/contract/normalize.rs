//! Contract §3 in Rust: the one place where values are normalised. Ingest calls
//! these once per row; the SQL in `queries/` then compares plain columns.
//! Must never log or echo the values it is given.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Trims surrounding white space (Unicode `White_Space`); an empty result is `None`.
pub fn clean_text(value: Option<&str>) -> Option<&str> {
    let t = value?.trim_matches(char::is_whitespace);
    (!t.is_empty()).then_some(t)
}

/// Normalises a phone number to `84` + 9 digits, or `None` when it cannot be.
///
/// White space, dots and dashes are removed, `+84` becomes `84`, and a leading
/// `0` followed by exactly 9 digits becomes `84` and those digits.
pub fn phone(raw: &str) -> Option<String> {
    // Without the separators, a phone that can normalise is at most 12 ASCII
    // characters (`+84` and 9 digits): kept on the stack, longer is no phone.
    let mut compact = [0u8; 12];
    let mut len = 0;
    for c in raw.chars() {
        if c.is_whitespace() || c == '.' || c == '-' {
            continue;
        }
        if !c.is_ascii() || len == compact.len() {
            return None;
        }
        compact[len] = c as u8;
        len += 1;
    }
    let compact = &compact[..len];
    // The 9 digits after the country code, in each of the three spellings.
    let nine = if let Some(rest) = compact.strip_prefix(b"+84") {
        rest
    } else if len == 10 && compact[0] == b'0' {
        &compact[1..]
    } else {
        compact.strip_prefix(b"84")?
    };
    if nine.len() != 9 || !nine.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = String::with_capacity(11);
    out.push_str("84");
    out.extend(nine.iter().map(|&b| b as char));
    Some(out)
}

/// Folds a name for comparison: NFD, drop general category M, `Đ/đ`→`D/d`,
/// full upper-case mapping, white-space runs to one space, trimmed.
pub fn name_key(name: &str) -> String {
    let stripped: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'Đ' | 'đ' => 'D',
            other => other,
        })
        .collect();
    let upper = stripped.to_uppercase();
    let mut out = String::with_capacity(upper.len());
    for word in upper.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// [`name_key`] a word at a time, each word's folded form remembered: a
/// country's names are made of few distinct words (family, middle and
/// given names), so most words are looked up instead of going through
/// Unicode decomposition again. Gives exactly `name_key`'s result: a
/// canonical decomposition, dropping marks and upper-casing never turn a
/// white-space character into another one or the reverse, so folding the
/// words one by one and joining them with one space is folding the whole.
#[derive(Default)]
pub struct NameKeys {
    /// Keyed with a random seed per process (ahash), as std's SipHash is,
    /// so that hostile names cannot aim at one bucket; several times faster.
    words: std::collections::HashMap<Box<str>, Box<str>, ahash::RandomState>,
    key: String,
}

impl NameKeys {
    /// Words remembered at most (hostile input must not grow the table
    /// without bound: past this, the table starts again).
    const MAX_WORDS: usize = 1 << 16;

    /// The folded key of `name`, as [`name_key`] gives it; borrowed until
    /// the next call.
    pub fn fold(&mut self, name: &str) -> &str {
        self.key.clear();
        for word in name.split(char::is_whitespace).filter(|w| !w.is_empty()) {
            let folded = match self.words.get(word) {
                Some(f) => f,
                None => {
                    if self.words.len() >= Self::MAX_WORDS {
                        self.words.clear();
                    }
                    let f: Box<str> = fold_word(word).into();
                    self.words.entry(word.into()).or_insert(f)
                }
            };
            if folded.is_empty() {
                continue;
            }
            if !self.key.is_empty() {
                self.key.push(' ');
            }
            self.key.push_str(folded);
        }
        &self.key
    }
}

/// Full upper-case mapping (an ID type), without going through Unicode
/// tables for ASCII text.
pub fn upper_case(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_uppercase()
    } else {
        s.to_uppercase()
    }
}

/// One word of a name folded: `name_key` of the word, ASCII upper-cased
/// directly (for ASCII, that is all `name_key` does).
fn fold_word(word: &str) -> String {
    if word.is_ascii() {
        return word.to_ascii_uppercase();
    }
    name_key(word)
}

/// Masks an ID number to its last 3 characters (`*********123`). IDs of 3
/// characters or fewer are masked entirely, so a mask never reveals a whole ID.
pub fn mask_id(id: &str) -> String {
    let n = id.chars().count();
    // Every character but the last 3 hidden; all of them for 3 or fewer.
    let hidden = if n > 3 { n - 3 } else { n };
    // The byte where the shown tail starts (the end when nothing is shown).
    let tail = id.char_indices().nth(hidden).map_or(id.len(), |(i, _)| i);
    let mut out = String::with_capacity(hidden + id.len() - tail);
    out.extend(std::iter::repeat_n('*', hidden));
    out.push_str(&id[tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_forms() {
        assert_eq!(phone("0912345678").as_deref(), Some("84912345678"));
        assert_eq!(phone("+84912345678").as_deref(), Some("84912345678"));
        assert_eq!(phone("84912345678").as_deref(), Some("84912345678"));
        assert_eq!(phone("091 234 5678").as_deref(), Some("84912345678"));
        assert_eq!(phone("091.234.5678").as_deref(), Some("84912345678"));
        assert_eq!(phone("091-234-5678").as_deref(), Some("84912345678"));
        assert_eq!(phone("+84 91-234.5678").as_deref(), Some("84912345678"));
        assert_eq!(phone("\u{a0}0912345678\t").as_deref(), Some("84912345678"));
        assert_eq!(phone("0912\u{2003}345678").as_deref(), Some("84912345678"));
    }

    #[test]
    fn phone_rejects() {
        for bad in [
            "",
            "091234567",     // 0 + 8 digits
            "09123456789",   // 0 + 10 digits
            "8491234567",    // 84 + 8 digits
            "849123456789",  // 84 + 10 digits
            "+8491234567",   // +84 + 8 digits
            "0084912345678", // international prefix is not in the contract
            "(091)2345678",  // brackets are not removed
            "091234567a",
            "+85912345678",
            "０９１２３４５６７８", // full-width digits
            "091_234_5678",
        ] {
            assert_eq!(phone(bad), None, "{bad:?} must not normalise");
        }
    }

    #[test]
    fn phone_zero_prefix_needs_exactly_nine_digits() {
        // "0" + 9 digits only: a number that already starts with 84 stays.
        assert_eq!(phone("0849123456").as_deref(), Some("84849123456"));
    }

    #[test]
    fn clean_text_trims_unicode_white_space() {
        assert_eq!(clean_text(Some("  a b ")), Some("a b"));
        assert_eq!(clean_text(Some("\u{a0}\t\u{3000}x\u{2009}")), Some("x"));
        assert_eq!(clean_text(Some(" \u{a0}\u{200a} ")), None);
        assert_eq!(clean_text(Some("")), None);
        assert_eq!(clean_text(None), None);
        // U+200B ZERO WIDTH SPACE is not White_Space: it stays.
        assert_eq!(clean_text(Some("\u{200b}")), Some("\u{200b}"));
    }

    #[test]
    fn names_fold_equal() {
        let k = name_key("NGUYEN VAN AN");
        assert_eq!(name_key("Nguyễn  Văn An"), k);
        assert_eq!(name_key(&"Nguyễn Văn An".nfd().collect::<String>()), k);
        assert_eq!(name_key("nguyễn\u{a0}văn\tan "), k);
        assert_eq!(name_key(" Nguyễn\u{3000}Văn\n\nAn"), k);
    }

    #[test]
    fn d_with_stroke_maps_to_d() {
        assert_eq!(name_key("Đỗ Đức đạt"), "DO DUC DAT");
        assert_eq!(name_key("ĐINH"), "DINH");
    }

    #[test]
    fn tone_placement_folds_equal() {
        assert_eq!(name_key("Hoà"), name_key("Hòa"));
        // duplicate tone-mark code points U+0340/U+0341
        assert_eq!(name_key("Ho\u{0340}a"), "HOA");
    }

    #[test]
    fn names_that_differ_stay_different() {
        assert_ne!(name_key("Nguyễn Văn An"), name_key("Nguyễn Văn Anh"));
        assert_ne!(name_key("Nguyễn Văn An"), name_key("Nguyễn VănAn"));
    }

    #[test]
    fn word_table_folds_as_name_key() {
        let mut keys = NameKeys::default();
        for name in [
            "Nguyễn  Văn An",
            "nguyễn\u{a0}văn\tan ",
            "Đỗ Đức đạt",
            "An \u{301} B",
            "\u{301}",
            "Ho\u{0340}a straße",
            "  ",
            "Nguyễn Văn Anh",
            "ǅ ǈ ﬁ",
        ] {
            assert_eq!(keys.fold(name), name_key(name), "{name:?}");
            assert_eq!(keys.fold(name), name_key(name), "{name:?} again");
        }
    }

    #[test]
    fn word_table_starts_again_past_its_bound() {
        let mut keys = NameKeys::default();
        for i in 0..NameKeys::MAX_WORDS + 10 {
            let name = format!("Nguyễn w{i}");
            assert_eq!(keys.fold(&name), name_key(&name));
            assert!(keys.words.len() <= NameKeys::MAX_WORDS);
        }
        assert!(keys.words.len() < 20, "{} words kept", keys.words.len());
    }

    #[test]
    fn upper_case_is_the_full_mapping() {
        assert_eq!(upper_case("cccd"), "CCCD");
        assert_eq!(upper_case("Cmnd"), "CMND");
        assert_eq!(upper_case("ß đ"), "SS Đ");
    }

    #[test]
    fn full_upper_case_mapping() {
        assert_eq!(name_key("straße"), "STRASSE");
    }

    #[test]
    fn masks() {
        assert_eq!(mask_id("001099012345"), "*********345");
        assert_eq!(mask_id("123456789"), "******789");
        assert_eq!(mask_id("123"), "***");
        assert_eq!(mask_id("12"), "**");
    }
}
