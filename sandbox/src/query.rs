//! EDC's `QuerySpec` and `Criterion`: parsing, and evaluation against compacted output objects
//! (`=`, `!=`, `in`, `like`, `ilike`, `contains`).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::ErrorDetail;
use crate::jsonld::{self, EDC_NS};

/// Page size when a query names none (EDC's `QuerySpec` default).
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page a query may ask for, so one request cannot produce an unbounded response.
pub const MAX_LIMIT: usize = 10_000;

/// Supported criterion operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    In,
    Like,
    Ilike,
    Contains,
}

impl Operator {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "=" => Operator::Eq,
            "!=" => Operator::Neq,
            "in" => Operator::In,
            "like" => Operator::Like,
            "ilike" => Operator::Ilike,
            "contains" => Operator::Contains,
            _ => return None,
        })
    }
}

/// One filter expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub operand_left: String,
    pub operator: Operator,
    pub operand_right: Value,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    pub offset: usize,
    pub limit: usize,
    pub sort_field: Option<String>,
    pub descending: bool,
    pub filter: Vec<Criterion>,
}

impl Default for QuerySpec {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: DEFAULT_LIMIT,
            sort_field: None,
            descending: false,
            filter: Vec::new(),
        }
    }
}

fn number(obj: &Map<String, Value>, name: &str, errors: &mut Vec<ErrorDetail>) -> Option<usize> {
    let value = jsonld::get(obj, name)?;
    match jsonld::text(value).and_then(|s| s.parse::<usize>().ok()) {
        Some(n) => Some(n),
        None => {
            errors.push(
                ErrorDetail::new(
                    format!("'{name}' must be a non-negative integer"),
                    "ValidationFailure",
                )
                .with_path(name)
                .with_value(value.clone()),
            );
            None
        }
    }
}

/// Parse a list of criteria (`filterExpression`, `assetsSelector`).
pub fn parse_criteria(
    value: Option<&Value>,
    path: &str,
) -> Result<Vec<Criterion>, Vec<ErrorDetail>> {
    let mut errors = Vec::new();
    let mut criteria = Vec::new();
    for (i, item) in jsonld::as_list(value).iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Value::Object(obj) = item else {
            errors.push(
                ErrorDetail::new("a criterion must be an object", "ValidationFailure")
                    .with_path(item_path)
                    .with_value(item.clone()),
            );
            continue;
        };
        let left = jsonld::get_str(obj, "operandLeft");
        let op = jsonld::get_str(obj, "operator");
        let right = jsonld::get(obj, "operandRight").cloned();
        if left.is_none() {
            errors.push(ErrorDetail::missing(&format!("{item_path}.operandLeft")));
        }
        let operator = match &op {
            None => {
                errors.push(ErrorDetail::missing(&format!("{item_path}.operator")));
                None
            }
            Some(op) => match Operator::parse(op) {
                Some(o) => Some(o),
                None => {
                    errors.push(
                        ErrorDetail::new(
                            format!("unsupported operator '{op}'"),
                            "ValidationFailure",
                        )
                        .with_path(format!("{item_path}.operator"))
                        .with_value(Value::String(op.clone())),
                    );
                    None
                }
            },
        };
        if let (Some(left), Some(operator)) = (left, operator) {
            criteria.push(Criterion {
                operand_left: left,
                operator,
                operand_right: right.unwrap_or(Value::Null),
            });
        }
    }
    if errors.is_empty() {
        Ok(criteria)
    } else {
        Err(errors)
    }
}

impl QuerySpec {
    /// Parse a `POST …/request` body; an empty body means the default query.
    pub fn parse(bytes: &[u8]) -> Result<Self, Vec<ErrorDetail>> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let obj = jsonld::parse_object(bytes)?;
        if obj.is_empty() {
            return Ok(Self::default());
        }
        let mut errors = Vec::new();
        if obj.get("@context").is_none() {
            errors.push(ErrorDetail::missing("@context"));
        }
        if obj.contains_key("@type") && !jsonld::type_is(&obj, "QuerySpec") {
            errors.push(
                ErrorDetail::new("@type must be 'QuerySpec'", "ValidationFailure")
                    .with_path("@type"),
            );
        }
        let spec = Self::from_object(&obj, &mut errors);
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }

    /// Read a QuerySpec from an already parsed object (e.g. a catalog request's `querySpec`).
    pub fn from_object(obj: &Map<String, Value>, errors: &mut Vec<ErrorDetail>) -> Self {
        let offset = number(obj, "offset", errors).unwrap_or(0);
        let limit = number(obj, "limit", errors).unwrap_or(DEFAULT_LIMIT);
        if limit > MAX_LIMIT {
            errors.push(
                ErrorDetail::new(
                    format!("'limit' must not exceed {MAX_LIMIT}"),
                    "ValidationFailure",
                )
                .with_path("limit"),
            );
        }
        let sort_field = jsonld::get_str(obj, "sortField");
        let descending = match jsonld::get_str(obj, "sortOrder") {
            None => false,
            Some(o) if o.eq_ignore_ascii_case("ASC") => false,
            Some(o) if o.eq_ignore_ascii_case("DESC") => true,
            Some(o) => {
                errors.push(
                    ErrorDetail::new("'sortOrder' must be ASC or DESC", "ValidationFailure")
                        .with_path("sortOrder")
                        .with_value(Value::String(o)),
                );
                false
            }
        };
        let filter = match parse_criteria(jsonld::get(obj, "filterExpression"), "filterExpression")
        {
            Ok(f) => f,
            Err(mut e) => {
                errors.append(&mut e);
                Vec::new()
            }
        };
        Self {
            offset,
            limit,
            sort_field,
            descending,
            filter,
        }
    }

    /// Filter, sort and page `items` (already in their default order).
    pub fn apply(&self, items: Vec<Value>) -> Vec<Value> {
        let mut selected: Vec<Value> = items
            .into_iter()
            .filter(|item| matches_all(item, &self.filter))
            .collect();
        if let Some(field) = &self.sort_field {
            selected.sort_by(|a, b| {
                let ord = compare_opt(lookup(a, field), lookup(b, field));
                if self.descending { ord.reverse() } else { ord }
            });
        }
        selected
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect()
    }
}

fn compare_opt(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.and_then(jsonld::text);
    let b = b.and_then(jsonld::text);
    match (a, b) {
        (Some(a), Some(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => a.cmp(&b),
        },
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Do all criteria hold for `item`?
pub fn matches_all(item: &Value, criteria: &[Criterion]) -> bool {
    criteria.iter().all(|c| matches(item, c))
}

fn direct<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let short = jsonld::short(key);
    obj.get(key)
        .or_else(|| obj.get(short))
        .or_else(|| obj.get(&format!("{EDC_NS}{short}")))
}

/// Resolve `operandLeft` on a compacted output object: `@id`/`id`/`edc:id`, top-level fields,
/// then `properties` and `privateProperties` (by full IRI or short name), then a dotted path.
pub fn lookup<'a>(item: &'a Value, left: &str) -> Option<&'a Value> {
    let left = left.trim().trim_matches('\'');
    let obj = item.as_object()?;
    let short = jsonld::short(left);
    if short == "id" || left == "@id" {
        return obj.get("@id");
    }
    if let Some(v) = direct(obj, left) {
        return Some(v);
    }
    for bag in ["properties", "privateProperties"] {
        if let Some(Value::Object(props)) = obj.get(bag)
            && let Some(v) = direct(props, left)
        {
            return Some(v);
        }
    }
    if left.contains("://") {
        return None;
    }
    let mut current = item;
    for segment in left.split('.') {
        current = current
            .as_object()
            .and_then(|o| direct(o, segment.trim_matches('\'')))?;
    }
    Some(current)
}

/// SQL `LIKE` with `%` and `_`.
fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Iterative wildcard matching with backtracking on the last `%`.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (jsonld::text(a), jsonld::text(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn values_of(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// Does one criterion hold for `item`?
pub fn matches(item: &Value, criterion: &Criterion) -> bool {
    let field = lookup(item, &criterion.operand_left);
    let right = &criterion.operand_right;
    match criterion.operator {
        Operator::Eq => field.is_some_and(|f| values_of(f).iter().any(|v| scalar_eq(v, right))),
        Operator::Neq => !field.is_some_and(|f| values_of(f).iter().any(|v| scalar_eq(v, right))),
        Operator::In => field.is_some_and(|f| {
            let candidates = values_of(right);
            values_of(f)
                .iter()
                .any(|v| candidates.iter().any(|c| scalar_eq(v, c)))
        }),
        Operator::Like | Operator::Ilike => {
            let Some(pattern) = jsonld::text(right) else {
                return false;
            };
            let ci = criterion.operator == Operator::Ilike;
            field.is_some_and(|f| {
                values_of(f)
                    .iter()
                    .any(|v| jsonld::text(v).is_some_and(|t| like(&t, &pattern, ci)))
            })
        }
        Operator::Contains => field.is_some_and(|f| match f {
            Value::Array(items) => items.iter().any(|v| scalar_eq(v, right)),
            Value::String(s) => jsonld::text(right).is_some_and(|r| s.contains(&r)),
            _ => false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn like_patterns() {
        assert!(like("asset-123", "asset-%", false));
        assert!(like("asset-123", "%-12_", false));
        assert!(!like("asset-123", "ASSET%", false));
        assert!(like("asset-123", "ASSET%", true));
        assert!(like("", "%", false));
        assert!(!like("abc", "a_", false));
    }

    #[test]
    fn lookup_resolves_ids_properties_and_iris() {
        let asset = json!({"@id": "a1", "properties": {"name": "x", "https://example.com/k": 3}, "state": "S"});
        assert_eq!(
            lookup(&asset, "https://w3id.org/edc/v0.0.1/ns/id"),
            Some(&json!("a1"))
        );
        assert_eq!(lookup(&asset, "@id"), Some(&json!("a1")));
        assert_eq!(
            lookup(&asset, "https://w3id.org/edc/v0.0.1/ns/name"),
            Some(&json!("x"))
        );
        assert_eq!(lookup(&asset, "https://example.com/k"), Some(&json!(3)));
        assert_eq!(lookup(&asset, "properties.name"), Some(&json!("x")));
        assert_eq!(lookup(&asset, "state"), Some(&json!("S")));
        assert_eq!(lookup(&asset, "missing"), None);
    }

    #[test]
    fn operators() {
        let item = json!({"@id": "a1", "tags": ["x", "y"]});
        let c = |l: &str, o, r| Criterion {
            operand_left: l.into(),
            operator: o,
            operand_right: r,
        };
        assert!(matches(&item, &c("id", Operator::Eq, json!("a1"))));
        assert!(!matches(&item, &c("id", Operator::Eq, json!("a2"))));
        assert!(matches(&item, &c("id", Operator::In, json!(["a2", "a1"]))));
        assert!(matches(&item, &c("id", Operator::Neq, json!("a2"))));
        assert!(matches(&item, &c("tags", Operator::Contains, json!("y"))));
        assert!(matches(&item, &c("id", Operator::Like, json!("a%"))));
    }

    #[test]
    fn parse_rejects_unknown_operator_and_missing_context() {
        let body = br#"{"@context":["https://w3id.org/edc/connector/management/v2"],"filterExpression":[{"operandLeft":"id","operator":"~","operandRight":"x"}]}"#;
        let errors = QuerySpec::parse(body).unwrap_err();
        assert_eq!(
            errors[0].path.as_deref(),
            Some("filterExpression[0].operator")
        );
        let errors = QuerySpec::parse(br#"{"limit":5}"#).unwrap_err();
        assert_eq!(errors[0].path.as_deref(), Some("@context"));
        assert_eq!(QuerySpec::parse(b"").unwrap(), QuerySpec::default());
    }
}
