//! Input checks run before the database is touched, so bad input is `Invalid` on both backends
//! (PostgreSQL would otherwise reject NUL characters with a database error), and the literal
//! prefix-range helper used instead of `LIKE`.

use crate::error::{Result, StoreError};
use crate::records::{MAX_ID_BYTES, MAX_STATE_KEY_BYTES};

/// An id (plugin, version, tenant): non-empty, bounded, no control characters.
pub(crate) fn id(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{what} must not be empty")));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(StoreError::Invalid(format!(
            "{what} is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

/// A state key: non-empty, bounded, no NUL.
pub(crate) fn key(value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::Invalid("state key must not be empty".into()));
    }
    if value.len() > MAX_STATE_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "state key is longer than {MAX_STATE_KEY_BYTES} bytes"
        )));
    }
    text("state key", value)
}

/// Free text: anything but NUL (which PostgreSQL cannot store in TEXT).
pub(crate) fn text(what: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{what} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// JSON text: must parse.
pub(crate) fn json(what: &str, value: &str) -> Result<()> {
    text(what, value)?;
    // Checked, not built: `IgnoredAny` parses the whole text without allocating a value.
    serde_json::from_str::<serde::de::IgnoredAny>(value)
        .map(|_| ())
        .map_err(|e| StoreError::Invalid(format!("{what} is not valid JSON: {e}")))
}

/// A SHA-256 digest: exactly 64 lowercase hex digits.
pub(crate) fn digest(value: &str) -> Result<()> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "digest must be 64 lowercase hex digits (SHA-256)".into(),
        ))
    }
}

/// The smallest string greater than every string that starts with `prefix`, in byte (= code
/// point) order, or `None` when no such bound exists (empty prefix, or only `char::MAX`).
/// `key >= prefix AND key < upper` matches the prefix literally: no `LIKE` wildcards.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_increments_last_char() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("a%").as_deref(), Some("a&"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }

    #[test]
    fn upper_bound_is_tight_in_byte_order() {
        let prefix = "k\u{7FF}";
        let upper = prefix_upper_bound(prefix).unwrap();
        for key in ["k\u{7FF}", "k\u{7FF}\u{10FFFF}", "k\u{7FF}zzz"] {
            assert!(key.as_bytes() >= prefix.as_bytes() && key.as_bytes() < upper.as_bytes());
        }
        for key in ["k\u{800}", "k\u{7FE}\u{10FFFF}", "l"] {
            assert!(!(key.as_bytes() >= prefix.as_bytes() && key.as_bytes() < upper.as_bytes()));
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(id("id", "").is_err());
        assert!(id("id", "a\nb").is_err());
        assert!(id("id", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert!(id("id", "ccm").is_ok());
        assert!(key("a\0b").is_err());
        assert!(digest(&"A".repeat(64)).is_err());
        assert!(digest(&"a".repeat(64)).is_ok());
        assert!(json("j", "{").is_err());
        assert!(json("j", "{}").is_ok());
    }
}
