//! Minimal compacted JSON-LD handling for Management API bodies: the management context, short
//! `@type`s, and field lookup that accepts short names, `edc:` prefixes and full IRIs.

use serde_json::{Map, Value, json};

use crate::error::ErrorDetail;

/// The management API context (edcv.md §1.1).
pub const MANAGEMENT_CONTEXT: &str = "https://w3id.org/edc/connector/management/v2";
/// The v4alpha virtual-connector context some bodies (CelExpression) add.
pub const VC_MANAGEMENT_CONTEXT: &str = "https://w3id.org/edc/virtual-connector/management/v2";
/// EDC's vocabulary; `properties` and `privateProperties` map to it.
pub const EDC_NS: &str = "https://w3id.org/edc/v0.0.1/ns/";
/// ODRL vocabulary.
pub const ODRL_NS: &str = "http://www.w3.org/ns/odrl/2/";
/// DSP 2025-1 context, used for catalogs.
pub const DSP_CONTEXT: &str = "https://w3id.org/dspace/2025/1/context.jsonld";

/// The `@context` every response carries.
pub fn context() -> Value {
    json!([MANAGEMENT_CONTEXT])
}

/// Strip the EDC namespace (full IRI or `edc:` prefix) from a term.
pub fn short(term: &str) -> &str {
    term.strip_prefix(EDC_NS)
        .or_else(|| term.strip_prefix("edc:"))
        .unwrap_or(term)
}

/// Strip the ODRL namespace (full IRI or `odrl:` prefix) from a term.
pub fn odrl_short(term: &str) -> &str {
    term.strip_prefix(ODRL_NS)
        .or_else(|| term.strip_prefix("odrl:"))
        .unwrap_or(term)
}

/// Look a field up by its short name, its `edc:` form or its full IRI.
pub fn get<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name)
        .or_else(|| obj.get(&format!("{EDC_NS}{name}")))
        .or_else(|| obj.get(&format!("edc:{name}")))
}

/// A scalar as text: strings as-is, numbers and booleans printed, `{"@value": x}` and `{"@id": x}`
/// unwrapped, one-element arrays unwrapped.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("@value").or_else(|| o.get("@id")).and_then(text),
        Value::Array(a) if a.len() == 1 => text(&a[0]),
        _ => None,
    }
}

/// A field as a non-blank string.
pub fn get_str(obj: &Map<String, Value>, name: &str) -> Option<String> {
    get(obj, name)
        .and_then(text)
        .filter(|s| !s.trim().is_empty())
}

/// Does `@context` name the management context (or EDC's vocabulary)?
fn context_ok(context: &Value) -> bool {
    match context {
        Value::String(s) => s == MANAGEMENT_CONTEXT || s == VC_MANAGEMENT_CONTEXT,
        Value::Array(items) => items.iter().any(context_ok),
        Value::Object(o) => o.get("@vocab").and_then(Value::as_str) == Some(EDC_NS),
        _ => false,
    }
}

/// Does `@type` equal `expected` (short, `edc:` or full IRI)?
pub fn type_is(obj: &Map<String, Value>, expected: &str) -> bool {
    match obj.get("@type") {
        Some(Value::String(t)) => short(t) == expected,
        Some(Value::Array(items)) => items
            .iter()
            .any(|t| t.as_str().map(short) == Some(expected)),
        _ => false,
    }
}

/// Parse a request body as a JSON object.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Vec<ErrorDetail>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![ErrorDetail::new(
            "request body is missing",
            "InvalidRequest",
        )]);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(vec![ErrorDetail::new(
            "request body must be a JSON object",
            "InvalidRequest",
        )]),
        Err(e) => Err(vec![ErrorDetail::new(
            format!("malformed JSON: {e}"),
            "InvalidRequest",
        )]),
    }
}

/// Check `@context` and `@type` of a management body; returns every problem found.
pub fn check_envelope(obj: &Map<String, Value>, expected_type: &str) -> Vec<ErrorDetail> {
    let mut errors = Vec::new();
    match obj.get("@context") {
        None => errors.push(ErrorDetail::missing("@context")),
        Some(c) if !context_ok(c) => errors.push(
            ErrorDetail::new(
                format!("@context must include '{MANAGEMENT_CONTEXT}'"),
                "ValidationFailure",
            )
            .with_path("@context")
            .with_value(c.clone()),
        ),
        Some(_) => {}
    }
    match obj.get("@type") {
        None => errors.push(ErrorDetail::missing("@type")),
        Some(t) if !type_is(obj, expected_type) => errors.push(
            ErrorDetail::new(
                format!("@type must be '{expected_type}'"),
                "ValidationFailure",
            )
            .with_path("@type")
            .with_value(t.clone()),
        ),
        Some(_) => {}
    }
    errors
}

/// Require a non-blank string field.
pub fn require_str(obj: &Map<String, Value>, name: &str, errors: &mut Vec<ErrorDetail>) -> String {
    match get(obj, name) {
        None => {
            errors.push(ErrorDetail::missing(name));
            String::new()
        }
        Some(v) => match text(v).filter(|s| !s.trim().is_empty()) {
            Some(s) => s,
            None => {
                errors.push(
                    ErrorDetail::new(
                        format!("'{name}' must be a non-blank string"),
                        "ValidationFailure",
                    )
                    .with_path(name)
                    .with_value(v.clone()),
                );
                String::new()
            }
        },
    }
}

/// Require an object field (or check an optional one).
pub fn object_field(
    obj: &Map<String, Value>,
    name: &str,
    required: bool,
    errors: &mut Vec<ErrorDetail>,
) -> Option<Map<String, Value>> {
    match get(obj, name) {
        None if required => {
            errors.push(ErrorDetail::missing(name));
            None
        }
        None => None,
        Some(Value::Object(o)) => Some(o.clone()),
        Some(other) => {
            errors.push(
                ErrorDetail::new(format!("'{name}' must be an object"), "ValidationFailure")
                    .with_path(name)
                    .with_value(other.clone()),
            );
            None
        }
    }
}

/// The optional `@id` of a body; a non-string id is an error.
pub fn optional_id(obj: &Map<String, Value>, errors: &mut Vec<ErrorDetail>) -> Option<String> {
    match obj.get("@id") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(other) => {
            errors.push(
                ErrorDetail::new("'@id' must be a non-blank string", "ValidationFailure")
                    .with_path("@id")
                    .with_value(other.clone()),
            );
            None
        }
    }
}

/// Re-key top-level fields from full EDC IRIs to their short names (compaction), leaving
/// JSON-LD keywords and foreign IRIs alone.
pub fn compact_keys(obj: Map<String, Value>) -> Map<String, Value> {
    obj.into_iter()
        .map(|(k, v)| (short(&k).to_owned(), v))
        .collect()
}

/// A value as a list: arrays as-is, anything else as a one-element list, null/absent as empty.
pub fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    }
}
