//! Validation primitives of CX-0135: the BPN patterns, message ids, versions, dates and the
//! certificate type codes (ccm.md §3).
//!
//! The patterns are checked by hand rather than with a regex engine, which would add several
//! hundred kilobytes to the component; each function names the pattern it implements.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Type codes listed by CX-0135 §3.2.2. Other well-formed codes are accepted: the list grows.
pub const KNOWN_TYPE_CODES: [&str; 13] = [
    "iatf16949",
    "iso14001",
    "iso9001",
    "iso45001",
    "ohsas18001",
    "isoiec27001",
    "iso50001",
    "isoiec17025",
    "iso20000",
    "iso22301",
    "aeo",
    "ctpat",
    "vda64",
];

/// Longest type code accepted: the listed codes are at most 11 characters.
pub const MAX_TYPE_CODE_CHARS: usize = 64;

/// The `urn:uuid:` prefix a message id may carry.
pub const URN_UUID: &str = "urn:uuid:";

fn bpn_with_prefix(s: &str, prefix: &str) -> bool {
    s.len() == 16 && s.starts_with(prefix) && s[4..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `^BPNL[a-zA-Z0-9]{12}$`: a legal entity.
pub fn is_bpnl(s: &str) -> bool {
    bpn_with_prefix(s, "BPNL")
}

/// `^BPNS[a-zA-Z0-9]{12}$`: a site.
pub fn is_bpns(s: &str) -> bool {
    bpn_with_prefix(s, "BPNS")
}

/// `^BPNA[a-zA-Z0-9]{12}$`: an address.
pub fn is_bpna(s: &str) -> bool {
    bpn_with_prefix(s, "BPNA")
}

/// `^(?:BPNS|BPNA)[a-zA-Z0-9]{12}$`: a location (site or address).
pub fn is_location_bpn(s: &str) -> bool {
    is_bpns(s) || is_bpna(s)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `^(?:urn:uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$` (the
/// OpenAPI pattern of `messageId` and `relatedMessageId`).
pub fn is_message_id(s: &str) -> bool {
    let uuid = s.strip_prefix(URN_UUID).unwrap_or(s);
    let parts: Vec<&str> = uuid.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, len)| is_lower_hex(p, len))
}

/// A message id without its `urn:uuid:` prefix: the form used as a state key, so that both
/// spellings of one id are the same message.
pub fn message_key(id: &str) -> String {
    id.strip_prefix(URN_UUID).unwrap_or(id).to_ascii_lowercase()
}

/// A new message id, `urn:uuid:` + a random UUID.
pub fn new_message_id() -> String {
    format!("{URN_UUID}{}", uuid::Uuid::new_v4())
}

/// `major.minor.patch` with an optional pre-release or build suffix (the OpenAPI `version`
/// pattern, minus its quirks).
pub fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or(s);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
        && s.len() <= 64
}

/// An ISO 8601 timestamp with a time zone (`sentDateTime` is "time zone aware"), as RFC 3339.
pub fn parse_zoned_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The SAMM `Timestamp` (document `creationDate`): date and time, zone optional.
pub fn is_timestamp(s: &str) -> bool {
    parse_zoned_timestamp(s).is_some()
        || PrimitiveDateTime::parse(
            s,
            format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
            ),
        )
        .is_ok()
}

/// An `xsd:date` (`YYYY-MM-DD`), as `validFrom` / `validUntil` use.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

/// Now, as an RFC 3339 UTC timestamp.
pub fn now_timestamp() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Today's UTC date.
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// Normalises a certificate type code to the CX-0135 spelling (lowercase letters and digits):
/// `ISO9001`, `iso 9001` and `ISO/IEC 27001` become `iso9001` and `isoiec27001`. The KIT
/// examples and the reference app write upper case, so case is normalised, never refused.
///
/// Errors when anything but letters, digits, spaces, `-`, `_` or `/` remains.
pub fn normalize_type_code(raw: &str) -> Result<String, String> {
    let code: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '/'))
        .flat_map(char::to_lowercase)
        .collect();
    if code.is_empty() {
        return Err("certificate type is empty".to_owned());
    }
    if code.len() > MAX_TYPE_CODE_CHARS {
        return Err(format!(
            "certificate type is longer than {MAX_TYPE_CODE_CHARS} characters"
        ));
    }
    if !code
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "certificate type `{raw}` must consist of letters and digits only (e.g. `iso9001`)"
        ));
    }
    Ok(code)
}

/// Whether a normalised code is one CX-0135 lists.
pub fn is_known_type_code(code: &str) -> bool {
    KNOWN_TYPE_CODES.contains(&code)
}

/// An `http`/`https` URL with a host (a DSP address).
pub fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !s.chars().any(char::is_whitespace)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpn_patterns() {
        assert!(is_bpnl("BPNL0000000001AB"));
        assert!(is_bpnl("BPNL00000003AYRE"));
        assert!(!is_bpnl("BPNL0000000001A"), "too short");
        assert!(!is_bpnl("BPNL0000000001ABC"), "too long");
        assert!(!is_bpnl("bpnl0000000001AB"), "prefix is case-sensitive");
        assert!(!is_bpnl("BPNS0000000001AB"));
        assert!(!is_bpnl("BPNL000000-001AB"));
        assert!(!is_bpnl("BPNL0000000001Ä"), "non-ASCII");
        assert!(is_bpns("BPNS000000000001"));
        assert!(is_bpna("BPNA000000000001"));
        assert!(is_location_bpn("BPNA000000000001") && is_location_bpn("BPNS00000003AYRE"));
        assert!(!is_location_bpn("BPNL000000000001"));
    }

    #[test]
    fn message_ids() {
        assert!(is_message_id(
            "urn:uuid:e4da568b-8cf1-4f5f-a96a-cf26265b2c72"
        ));
        assert!(is_message_id("e4da568b-8cf1-4f5f-a96a-cf26265b2c72"));
        assert!(
            !is_message_id("E4DA568B-8CF1-4F5F-A96A-CF26265B2C72"),
            "pattern is lower-case"
        );
        assert!(!is_message_id("urn:uuid:e4da568b8cf14f5fa96acf26265b2c72"));
        assert!(!is_message_id(
            "urn:uuid:e4da568b-8cf1-4f5f-a96a-cf26265b2c7"
        ));
        assert!(!is_message_id("uuid:e4da568b-8cf1-4f5f-a96a-cf26265b2c72"));
        assert!(!is_message_id(""));
        assert_eq!(
            message_key("urn:uuid:e4da568b-8cf1-4f5f-a96a-cf26265b2c72"),
            message_key("e4da568b-8cf1-4f5f-a96a-cf26265b2c72")
        );
        assert!(is_message_id(&new_message_id()));
    }

    #[test]
    fn versions_and_times() {
        assert!(is_semver("3.1.0") && is_semver("1.0.0-rc.1"));
        assert!(!is_semver("3.1") && !is_semver("v3.1.0") && !is_semver("03.1.0"));
        assert!(parse_zoned_timestamp("2024-10-07T10:15:00Z").is_some());
        assert!(parse_zoned_timestamp("2024-08-23T13:19:00.280+02:00").is_some());
        assert!(
            parse_zoned_timestamp("2024-10-07T10:15:00").is_none(),
            "no zone"
        );
        assert!(parse_zoned_timestamp("07.10.2024").is_none());
        assert!(is_timestamp("2024-10-07T10:15:00") && is_timestamp("2024-10-07T10:15:00.5"));
        assert!(!is_timestamp("2024-10-07"));
        assert!(parse_date("9999-12-31").is_some());
        assert!(parse_date("2024-02-30").is_none());
        assert!(parse_zoned_timestamp(&now_timestamp()).is_some());
    }

    #[test]
    fn type_codes_are_normalised() {
        assert_eq!(normalize_type_code("ISO9001").unwrap(), "iso9001");
        assert_eq!(normalize_type_code(" IATF 16949 ").unwrap(), "iatf16949");
        assert_eq!(normalize_type_code("ISO/IEC 27001").unwrap(), "isoiec27001");
        assert!(
            normalize_type_code("vda-6.4")
                .unwrap_err()
                .contains("letters")
        );
        assert!(normalize_type_code("  ").is_err());
        assert!(normalize_type_code("iso9001:2015").is_err());
        assert!(is_known_type_code("aeo") && !is_known_type_code("iso1"));
    }

    #[test]
    fn urls() {
        assert!(is_http_url("https://domain.tld/path/to/edc/api/v1/dsp"));
        assert!(is_http_url("http://127.0.0.1:8082/api/dsp/pc/2025-1"));
        assert!(!is_http_url("ftp://x") && !is_http_url("https://") && !is_http_url("https://a b"));
    }
}
