//! ODRL policy evaluation against a participant's verified attributes (the stand-in's view of
//! its credentials, BPN and DID), and the policy equality EDC checks when an offer comes in.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::jsonld;

/// What a policy is evaluated against: the counter-party's DID, BPN and attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    pub did: String,
    pub bpn: Option<String>,
    pub values: BTreeMap<String, Value>,
}

impl Attributes {
    /// The attributes as DPS `claims` (the counter-party's verified claims).
    pub fn claims(&self) -> Value {
        let mut claims: Map<String, Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        claims.insert("participantId".into(), json!(self.did));
        if let Some(bpn) = &self.bpn {
            claims.insert("BusinessPartnerNumber".into(), json!(bpn));
        }
        Value::Object(claims)
    }

    /// Resolve a left operand: exact key, then the term's local name (after the last `/`, `#`
    /// or `:`), case-insensitively, also with or without a `Credential` suffix; BPN aliases map
    /// to the BPN; `participantId`/`did` to the DID.
    pub fn resolve(&self, left: &str) -> Option<Value> {
        if let Some(v) = self.values.get(left) {
            return Some(v.clone());
        }
        let local = left
            .rsplit(['/', '#', ':'])
            .next()
            .unwrap_or(left)
            .to_ascii_lowercase();
        let bare = local
            .strip_suffix("credential")
            .unwrap_or(&local)
            .to_owned();
        for (key, value) in &self.values {
            let k = key
                .rsplit(['/', '#', ':'])
                .next()
                .unwrap_or(key)
                .to_ascii_lowercase();
            let k_bare = k.strip_suffix("credential").unwrap_or(&k);
            if k == local || k_bare == bare {
                return Some(value.clone());
            }
        }
        match bare.as_str() {
            "businesspartnernumber" | "bpn" | "bpnl" => self.bpn.clone().map(Value::String),
            "participantid" | "did" | "identity" => Some(Value::String(self.did.clone())),
            _ => None,
        }
    }
}

/// An ODRL field by short name, `odrl:` prefix or full IRI.
fn odrl_get<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name)
        .or_else(|| obj.get(&format!("odrl:{name}")))
        .or_else(|| obj.get(&format!("{}{name}", jsonld::ODRL_NS)))
}

fn term(value: &Value) -> Option<String> {
    jsonld::text(value).map(|s| jsonld::odrl_short(&s).to_owned())
}

fn rules(policy: &Map<String, Value>, name: &str) -> Vec<Value> {
    jsonld::as_list(odrl_get(policy, name))
}

/// Evaluate `policy` against `attrs`: every permission's constraints must hold, and no
/// prohibition may apply. `Err` carries the reason (it becomes `errorDetail`).
pub fn evaluate(policy: &Value, attrs: &Attributes) -> Result<(), String> {
    let Some(policy) = policy.as_object() else {
        return Err("policy is not an object".into());
    };
    for permission in rules(policy, "permission") {
        let Some(permission) = permission.as_object() else {
            continue;
        };
        for constraint in jsonld::as_list(odrl_get(permission, "constraint")) {
            check(&constraint, attrs).map_err(|why| format!("Permission constraint {why}"))?;
        }
    }
    for prohibition in rules(policy, "prohibition") {
        let Some(prohibition) = prohibition.as_object() else {
            continue;
        };
        let constraints = jsonld::as_list(odrl_get(prohibition, "constraint"));
        if constraints.iter().all(|c| check(c, attrs).is_ok()) {
            return Err("a prohibition applies to the counter-party".into());
        }
    }
    Ok(())
}

fn describe(constraint: &Value) -> String {
    let Some(obj) = constraint.as_object() else {
        return constraint.to_string();
    };
    let left = odrl_get(obj, "leftOperand")
        .and_then(term)
        .unwrap_or_default();
    let op = odrl_get(obj, "operator").and_then(term).unwrap_or_default();
    let right = odrl_get(obj, "rightOperand").map(|r| jsonld::text(r).unwrap_or(r.to_string()));
    format!(
        "'{left} {op} {}' is not satisfied",
        right.unwrap_or_default()
    )
}

fn check(constraint: &Value, attrs: &Attributes) -> Result<(), String> {
    let Some(obj) = constraint.as_object() else {
        return Err(format!("{constraint} is not an object"));
    };
    if let Some(items) = odrl_get(obj, "and").or_else(|| odrl_get(obj, "andSequence")) {
        for item in jsonld::as_list(Some(items)) {
            check(&item, attrs)?;
        }
        return Ok(());
    }
    if let Some(items) = odrl_get(obj, "or") {
        let items = jsonld::as_list(Some(items));
        return if items.iter().any(|i| check(i, attrs).is_ok()) {
            Ok(())
        } else {
            Err(format!(
                "'or' of {} constraints is not satisfied",
                items.len()
            ))
        };
    }
    if let Some(items) = odrl_get(obj, "xone") {
        let items = jsonld::as_list(Some(items));
        return if items.iter().filter(|i| check(i, attrs).is_ok()).count() == 1 {
            Ok(())
        } else {
            Err("'xone' constraint is not satisfied".into())
        };
    }
    let left = odrl_get(obj, "leftOperand").and_then(term);
    let op = odrl_get(obj, "operator").and_then(term);
    let (Some(left), Some(op)) = (left, op) else {
        return Err(format!("{} is incomplete", describe(constraint)));
    };
    let right = odrl_get(obj, "rightOperand")
        .cloned()
        .unwrap_or(Value::Null);
    let Some(actual) = attrs.resolve(&left) else {
        return Err(describe(constraint));
    };
    if compare(&actual, &op, &right) {
        Ok(())
    } else {
        Err(describe(constraint))
    }
}

fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(jsonld::text).collect(),
        Value::String(s) if s.contains(',') => s.split(',').map(|p| p.trim().to_owned()).collect(),
        other => jsonld::text(other).into_iter().collect(),
    }
}

fn compare(actual: &Value, op: &str, right: &Value) -> bool {
    let have = texts(actual);
    let want = texts(right);
    let numeric = |f: fn(f64, f64) -> bool| match (
        have.first().and_then(|a| a.parse::<f64>().ok()),
        want.first().and_then(|w| w.parse::<f64>().ok()),
    ) {
        (Some(a), Some(w)) => f(a, w),
        _ => false,
    };
    match op {
        "eq" => have.iter().any(|h| want.first() == Some(h)),
        "neq" => !have.iter().any(|h| want.first() == Some(h)),
        "in" | "isAnyOf" | "isPartOf" => have.iter().any(|h| want.contains(h)),
        "hasPart" | "isAllOf" => want.iter().all(|w| have.contains(w)),
        "isNoneOf" => !have.iter().any(|h| want.contains(h)),
        "gt" => numeric(|a, b| a > b),
        "gteq" => numeric(|a, b| a >= b),
        "lt" => numeric(|a, b| a < b),
        "lteq" => numeric(|a, b| a <= b),
        _ => false,
    }
}

/// Structural problems of a policy (the `/validate` endpoint): rules must be objects with an
/// `action`, constraints must be logical or carry `leftOperand` and `operator`.
pub fn well_formed(policy: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(obj) = policy.as_object() else {
        return vec!["policy is not an object".into()];
    };
    for kind in ["permission", "prohibition", "obligation"] {
        for (i, rule) in rules(obj, kind).iter().enumerate() {
            let Some(rule) = rule.as_object() else {
                errors.push(format!("{kind}[{i}] is not an object"));
                continue;
            };
            if odrl_get(rule, "action").is_none() {
                errors.push(format!("{kind}[{i}] has no action"));
            }
            for (j, c) in jsonld::as_list(odrl_get(rule, "constraint"))
                .iter()
                .enumerate()
            {
                constraint_shape(c, &format!("{kind}[{i}].constraint[{j}]"), &mut errors);
            }
        }
    }
    errors
}

fn constraint_shape(c: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = c.as_object() else {
        errors.push(format!("{path} is not an object"));
        return;
    };
    for logical in ["and", "or", "xone", "andSequence"] {
        if let Some(items) = odrl_get(obj, logical) {
            for (k, item) in jsonld::as_list(Some(items)).iter().enumerate() {
                constraint_shape(item, &format!("{path}.{logical}[{k}]"), errors);
            }
            return;
        }
    }
    if odrl_get(obj, "leftOperand").is_none() || odrl_get(obj, "operator").is_none() {
        errors.push(format!("{path} needs leftOperand and operator"));
    }
}

/// Keys dropped when comparing policies: identity and assignment, which differ between a
/// definition's policy and the offer built from it.
const IGNORED_KEYS: [&str; 5] = ["@id", "@type", "target", "assigner", "assignee"];

fn normalize(value: &Value) -> Value {
    match value {
        Value::Array(items) if items.len() == 1 => normalize(&items[0]),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(obj) => {
            if obj.len() == 1
                && let Some(id) = obj.get("@id").and_then(Value::as_str)
            {
                return Value::String(jsonld::odrl_short(id).to_owned());
            }
            Value::Object(
                obj.iter()
                    .filter(|(k, _)| !IGNORED_KEYS.contains(&jsonld::odrl_short(k)))
                    .map(|(k, v)| (jsonld::odrl_short(k).to_owned(), normalize(v)))
                    .collect(),
            )
        }
        Value::String(s) => Value::String(jsonld::odrl_short(s).to_owned()),
        other => other.clone(),
    }
}

/// The rules of a policy in a comparable form.
pub fn rules_of(policy: &Value) -> Value {
    let empty = Map::new();
    let obj = policy.as_object().unwrap_or(&empty);
    let norm = |name: &str| {
        let list = rules(obj, name);
        Value::Array(list.iter().map(normalize).collect())
    };
    json!({"permission": norm("permission"), "prohibition": norm("prohibition"), "obligation": norm("obligation")})
}

/// Do two policies carry the same rules (ignoring ids, types, target and parties)?
pub fn same_rules(a: &Value, b: &Value) -> bool {
    rules_of(a) == rules_of(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Attributes {
        Attributes {
            did: "did:web:consumer".into(),
            bpn: Some("BPNL000000000001".into()),
            values: BTreeMap::from([("MembershipCredential".into(), json!("active"))]),
        }
    }

    fn policy(constraint: Value) -> Value {
        json!({"@type": "Set", "permission": [{"action": "use", "constraint": [constraint]}]})
    }

    #[test]
    fn membership_constraint() {
        let p = policy(
            json!({"leftOperand": "MembershipCredential", "operator": "eq", "rightOperand": "active"}),
        );
        assert!(evaluate(&p, &member()).is_ok());
        let err = evaluate(
            &p,
            &Attributes {
                did: "did:web:x".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("MembershipCredential eq active"), "{err}");
    }

    #[test]
    fn iri_operands_bpn_and_logical_constraints() {
        let p = policy(
            json!({"odrl:leftOperand": {"@id": "https://w3id.org/catenax/policy/BusinessPartnerNumber"},
            "odrl:operator": {"@id": "odrl:isAnyOf"}, "odrl:rightOperand": ["BPNL000000000001", "BPNL2"]}),
        );
        assert!(evaluate(&p, &member()).is_ok());
        let p = policy(json!({"or": [
            {"leftOperand": "Membership", "operator": "eq", "rightOperand": "inactive"},
            {"leftOperand": "https://w3id.org/catenax/policy/Membership", "operator": "eq", "rightOperand": "active"}]}));
        assert!(evaluate(&p, &member()).is_ok());
        let p = policy(json!({"and": [
            {"leftOperand": "Membership", "operator": "eq", "rightOperand": "active"},
            {"leftOperand": "BusinessPartnerNumber", "operator": "eq", "rightOperand": "BPNL9"}]}));
        assert!(evaluate(&p, &member()).is_err());
    }

    #[test]
    fn empty_policy_allows_and_prohibition_denies() {
        assert!(evaluate(&json!({"@type": "Set", "permission": []}), &member()).is_ok());
        let p = json!({"@type": "Set", "prohibition": [{"action": "use", "constraint":
            [{"leftOperand": "MembershipCredential", "operator": "eq", "rightOperand": "active"}]}]});
        assert!(evaluate(&p, &member()).is_err());
    }

    #[test]
    fn equality_ignores_ids_targets_and_prefixes() {
        let a = json!({"@type": "Set", "permission": [{"action": "use"}]});
        let b = json!({"@id": "offer", "@type": "Offer", "target": "asset", "assigner": "did:web:p",
            "odrl:permission": {"odrl:action": {"@id": "odrl:use"}}, "prohibition": []});
        assert!(same_rules(&a, &b));
        let c = json!({"@type": "Offer", "permission": [{"action": "use", "constraint": [{"leftOperand": "x", "operator": "eq", "rightOperand": "y"}]}]});
        assert!(!same_rules(&a, &c));
    }
}
