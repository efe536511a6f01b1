//! Management API bodies CCM creates (policies, assets, contract definitions; ccm.md §4–§5)
//! and the check that a partner's offer carries exactly the CCM usage policy (§5, TestLab).

use serde_json::{Map, Value, json};

use crate::vocab::{self, *};

/// The `@context` of every management body without policies.
pub fn management_context() -> Value {
    json!([MANAGEMENT_CONTEXT])
}

/// The `@context` of policy definitions: the management context plus the Catena-X policy
/// vocabulary, so `Membership`, `FrameworkAgreement` and `UsagePurpose` resolve (CX-0152).
pub fn policy_context() -> Value {
    json!([
        MANAGEMENT_CONTEXT,
        CX_POLICY_ODRL_CONTEXT,
        CX_POLICY_CONTEXT
    ])
}

fn constraint(left: &str, operator: &str, right: Value) -> Value {
    json!({"leftOperand": left, "operator": operator, "rightOperand": right})
}

/// The access policy: `Membership eq active` under `access`, and when `bpns` is not empty
/// also `BusinessPartnerNumber isAnyOf bpns` (PURIS style per-partner restriction).
pub fn access_policy(bpns: &[String]) -> Value {
    let membership = constraint("Membership", "eq", json!(MEMBERSHIP_ACTIVE));
    let constraints = if bpns.is_empty() {
        membership
    } else {
        json!({"and": [membership, constraint("BusinessPartnerNumber", "isAnyOf", json!(bpns))]})
    };
    json!({
        "@type": "Set",
        "permission": [{"action": "access", "constraint": constraints}],
    })
}

/// The usage policy of every CCM offer: `FrameworkAgreement eq DataExchangeGovernance:1.0`
/// AND `UsagePurpose isAnyOf cx.ccm.base:1`.
pub fn usage_policy() -> Value {
    json!({
        "@type": "Set",
        "permission": [{
            "action": "use",
            "constraint": {"and": [
                constraint("FrameworkAgreement", "eq", json!(FRAMEWORK_AGREEMENT)),
                constraint("UsagePurpose", "isAnyOf", json!(USAGE_PURPOSE)),
            ]},
        }],
    })
}

/// A `PolicyDefinition` body.
pub fn policy_definition(id: &str, policy: Value) -> Value {
    json!({
        "@context": policy_context(),
        "@type": "PolicyDefinition",
        "@id": id,
        "policy": policy,
    })
}

/// A `ContractDefinition` offering exactly `asset_id` under the two CCM policies.
pub fn contract_definition(id: &str, asset_id: &str) -> Value {
    json!({
        "@context": management_context(),
        "@type": "ContractDefinition",
        "@id": id,
        "accessPolicyId": ACCESS_POLICY_ID,
        "contractPolicyId": USAGE_POLICY_ID,
        "assetsSelector": [{
            "operandLeft": EDC_ID,
            "operator": "=",
            "operandRight": asset_id,
        }],
    })
}

fn iri(value: &str) -> Value {
    json!({"@id": value})
}

fn dataplane_metadata() -> Value {
    json!({"profiles": ASSET_PROFILES})
}

/// The properties of the notification API asset: exactly §4.1.
pub fn ccmapi_properties() -> Value {
    json!({
        DCT_TYPE: iri(TAXO_CCMAPI),
        DCT_SUBJECT: iri(TAXO_NOTIFICATION_API),
        CX_VERSION: ASSET_VERSION,
    })
}

/// The notification API asset (§4.1), served by this plugin's data hook over http-pull.
pub fn ccmapi_asset() -> Value {
    json!({
        "@context": management_context(),
        "@type": "Asset",
        "@id": CCMAPI_ASSET_ID,
        "properties": ccmapi_properties(),
        "dataplaneMetadata": dataplane_metadata(),
    })
}

/// The properties of a certificate asset: exactly §4.2 (the `@id` is the asset's own).
pub fn certificate_properties(type_code: &str, sites: &[String]) -> Value {
    let sites: Vec<Value> = sites
        .iter()
        .map(|s| iri(&format!("{CX_TAXO_NS}{s}")))
        .collect();
    json!({
        DCT_TYPE: iri(TAXO_SUBMODEL),
        DCT_SUBJECT: iri(TAXO_COMPANY_CERTIFICATE),
        AAS_SEMANTIC_ID: iri(BPC_SEMANTIC_ID),
        DCT_CERTIFICATE_TYPE: iri(&format!("{CX_TAXO_NS}{type_code}")),
        DCT_ENCLOSED_SITES: sites,
        CX_VERSION: ASSET_VERSION,
    })
}

/// A certificate asset (§4.2): `@id` = `asset_id`, the `documentId` of CCM messages.
pub fn certificate_asset(asset_id: &str, type_code: &str, sites: &[String]) -> Value {
    json!({
        "@context": management_context(),
        "@type": "Asset",
        "@id": asset_id,
        "properties": certificate_properties(type_code, sites),
        "dataplaneMetadata": dataplane_metadata(),
    })
}

/// A catalog filter criterion on an expanded IRI.
pub fn criterion(left: &str, right: &str) -> Value {
    json!({"operandLeft": left, "operator": "=", "operandRight": right})
}

/// Looks a property up under its IRI or any compact form of it.
pub fn property<'a>(obj: &'a Map<String, Value>, iri: &str) -> Option<&'a Value> {
    vocab::compact_forms(iri)
        .iter()
        .find_map(|k| obj.get(k))
        .or_else(|| {
            obj.get("properties")
                .and_then(Value::as_object)
                .and_then(|p| vocab::compact_forms(iri).iter().find_map(|k| p.get(k)))
        })
}

/// A JSON-LD value as IRIs/texts, expanded: strings, `{"@id"}`, `{"@value"}` and lists.
pub fn values(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![vocab::expand(s)],
        Some(Value::Number(n)) => vec![n.to_string()],
        Some(Value::Object(o)) => o
            .get("@id")
            .or_else(|| o.get("@value"))
            .map(|x| values(Some(x)))
            .unwrap_or_default(),
        Some(Value::Array(items)) => items.iter().flat_map(|i| values(Some(i))).collect(),
        Some(_) => Vec::new(),
    }
}

/// Looks an ODRL field up by short name, `odrl:` form or full IRI.
fn odrl<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name)
        .or_else(|| obj.get(&format!("odrl:{name}")))
        .or_else(|| obj.get(&format!("{ODRL_NS}{name}")))
}

fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

fn term(v: Option<&Value>) -> Option<String> {
    values(v)
        .into_iter()
        .next()
        .map(|t| vocab::local_name(&t).to_owned())
}

/// One atomic constraint in comparable form: (left operand, operator, sorted right values).
type Atom = (String, String, Vec<String>);

fn flatten(c: &Value, out: &mut Vec<Atom>) -> Result<(), String> {
    let Some(obj) = c.as_object() else {
        return Err(format!("constraint {c} is not an object"));
    };
    if let Some(items) = odrl(obj, "and") {
        for item in as_list(Some(items)) {
            flatten(item, out)?;
        }
        return Ok(());
    }
    for logical in ["or", "xone", "andSequence"] {
        if odrl(obj, logical).is_some() {
            return Err(format!("a logical `{logical}` constraint"));
        }
    }
    let left = term(odrl(obj, "leftOperand")).ok_or("a constraint without leftOperand")?;
    let op = term(odrl(obj, "operator")).ok_or("a constraint without operator")?;
    let mut right: Vec<String> = match odrl(obj, "rightOperand") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("@value").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .collect(),
        Some(Value::Object(o)) => o
            .get("@value")
            .and_then(Value::as_str)
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    right.sort();
    out.push((left, op, right));
    Ok(())
}

fn atoms_of(policy: &Value) -> Result<(Vec<String>, Vec<Atom>), String> {
    let obj = policy.as_object().ok_or("the policy is not an object")?;
    for kind in ["prohibition", "obligation"] {
        if !as_list(odrl(obj, kind)).is_empty() {
            return Err(format!("it carries a {kind}"));
        }
    }
    let mut actions = Vec::new();
    let mut atoms = Vec::new();
    for permission in as_list(odrl(obj, "permission")) {
        let Some(p) = permission.as_object() else {
            return Err("a permission is not an object".to_owned());
        };
        actions.push(term(odrl(p, "action")).unwrap_or_default());
        for c in as_list(odrl(p, "constraint")) {
            flatten(c, &mut atoms)?;
        }
    }
    atoms.sort();
    Ok((actions, atoms))
}

/// Whether `offer` (an ODRL offer from a catalog) carries exactly the CCM usage policy: one
/// `use` permission with `FrameworkAgreement eq DataExchangeGovernance:1.0` and `UsagePurpose
/// isAnyOf cx.ccm.base:1`, nothing more. Compact, prefixed and expanded spellings compare
/// equal. `Err` says what differs.
pub fn offer_has_ccm_usage(offer: &Value) -> Result<(), String> {
    let (want_actions, want) = atoms_of(&usage_policy())?;
    let (actions, atoms) =
        atoms_of(offer).map_err(|e| format!("the offer's policy is not the CCM policy: {e}"))?;
    if actions != want_actions {
        return Err(format!(
            "the offer's policy is not the CCM policy: permissions {actions:?}, expected {want_actions:?}"
        ));
    }
    if atoms != want {
        let show = |a: &[Atom]| {
            a.iter()
                .map(|(l, o, r)| format!("{l} {o} {}", r.join(",")))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        return Err(format!(
            "the offer's policy is not the CCM policy: `{}`, expected `{}`",
            show(&atoms),
            show(&want)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn ccmapi_asset_has_exactly_the_properties_of_4_1() {
        let asset = ccmapi_asset();
        assert_eq!(asset["@id"], CCMAPI_ASSET_ID);
        let props = &asset["properties"];
        assert_eq!(
            keys(props),
            vec![
                "http://purl.org/dc/terms/subject",
                "http://purl.org/dc/terms/type",
                "https://w3id.org/catenax/ontology/common#version",
            ]
        );
        assert_eq!(
            props[DCT_TYPE]["@id"],
            "https://w3id.org/catenax/taxonomy#CCMAPI"
        );
        assert_eq!(
            props[DCT_SUBJECT]["@id"],
            "https://w3id.org/catenax/taxonomy#CompanyCertificateManagementNotificationApi"
        );
        assert_eq!(props[CX_VERSION], "3.0");
        assert_eq!(
            asset["dataplaneMetadata"]["profiles"][0],
            "https://w3id.org/dspace-sig/profile/http-pull"
        );
    }

    #[test]
    fn certificate_asset_has_exactly_the_properties_of_4_2() {
        let sites = vec!["BPNS000000000001".to_owned(), "BPNA000000000002".to_owned()];
        let asset = certificate_asset("d195fa2f-e6bc-4cd6-94d4-2bb76e4bb548", "iso9001", &sites);
        assert_eq!(asset["@id"], "d195fa2f-e6bc-4cd6-94d4-2bb76e4bb548");
        let props = &asset["properties"];
        assert_eq!(
            keys(props),
            vec![
                "http://purl.org/dc/terms/certificateType",
                "http://purl.org/dc/terms/enclosedSites",
                "http://purl.org/dc/terms/subject",
                "http://purl.org/dc/terms/type",
                "https://admin-shell.io/aas/3/0/HasSemantics/semanticId",
                "https://w3id.org/catenax/ontology/common#version",
            ]
        );
        assert_eq!(props[DCT_TYPE]["@id"], TAXO_SUBMODEL);
        assert_eq!(props[DCT_SUBJECT]["@id"], TAXO_COMPANY_CERTIFICATE);
        assert_eq!(props[AAS_SEMANTIC_ID]["@id"], BPC_SEMANTIC_ID);
        assert_eq!(
            props[DCT_CERTIFICATE_TYPE]["@id"],
            "https://w3id.org/catenax/taxonomy#iso9001"
        );
        assert_eq!(
            values(props.get(DCT_ENCLOSED_SITES)),
            vec![
                "https://w3id.org/catenax/taxonomy#BPNS000000000001",
                "https://w3id.org/catenax/taxonomy#BPNA000000000002"
            ]
        );
        assert_eq!(props[CX_VERSION], "3.0");
    }

    #[test]
    fn policy_shapes() {
        let usage = policy_definition(USAGE_POLICY_ID, usage_policy());
        assert_eq!(usage["@type"], "PolicyDefinition");
        assert_eq!(usage["@context"][0], MANAGEMENT_CONTEXT);
        let perm = &usage["policy"]["permission"][0];
        assert_eq!(perm["action"], "use");
        assert_eq!(
            perm["constraint"]["and"][0]["leftOperand"],
            "FrameworkAgreement"
        );
        assert_eq!(
            perm["constraint"]["and"][0]["rightOperand"],
            "DataExchangeGovernance:1.0"
        );
        assert_eq!(perm["constraint"]["and"][1]["operator"], "isAnyOf");
        assert_eq!(
            perm["constraint"]["and"][1]["rightOperand"],
            "cx.ccm.base:1"
        );

        let open = access_policy(&[]);
        assert_eq!(open["permission"][0]["action"], "access");
        assert_eq!(
            open["permission"][0]["constraint"]["leftOperand"],
            "Membership"
        );
        assert_eq!(
            open["permission"][0]["constraint"]["rightOperand"],
            "active"
        );
        let narrowed = access_policy(&["BPNL0000000002CD".to_owned()]);
        let and = &narrowed["permission"][0]["constraint"]["and"];
        assert_eq!(and[0]["leftOperand"], "Membership");
        assert_eq!(and[1]["leftOperand"], "BusinessPartnerNumber");
        assert_eq!(and[1]["rightOperand"][0], "BPNL0000000002CD");

        let cd = contract_definition("cd", "a1");
        assert_eq!(cd["accessPolicyId"], ACCESS_POLICY_ID);
        assert_eq!(cd["contractPolicyId"], USAGE_POLICY_ID);
        assert_eq!(cd["assetsSelector"][0]["operandLeft"], EDC_ID);
        assert_eq!(cd["assetsSelector"][0]["operandRight"], "a1");
    }

    #[test]
    fn offers_are_compared_ignoring_spelling() {
        assert_eq!(offer_has_ccm_usage(&usage_policy()), Ok(()));
        // An expanded, prefixed, differently ordered rendering of the same policy.
        let expanded = json!({
            "@id": "offer-1", "@type": "odrl:Offer", "odrl:target": "a1",
            "odrl:permission": {
                "odrl:action": {"@id": "odrl:use"},
                "odrl:constraint": [{"odrl:and": [
                    {"odrl:leftOperand": {"@id": "https://w3id.org/catenax/2025/9/policy/UsagePurpose"},
                     "odrl:operator": {"@id": "odrl:isAnyOf"}, "odrl:rightOperand": ["cx.ccm.base:1"]},
                    {"odrl:leftOperand": {"@id": "cx-policy:FrameworkAgreement"},
                     "odrl:operator": {"@id": "http://www.w3.org/ns/odrl/2/eq"},
                     "odrl:rightOperand": {"@value": "DataExchangeGovernance:1.0"}}
                ]}]
            },
            "odrl:prohibition": [], "odrl:obligation": []
        });
        assert_eq!(offer_has_ccm_usage(&expanded), Ok(()));
    }

    #[test]
    fn other_policies_are_refused() {
        let wrong_purpose = json!({"permission": [{"action": "use", "constraint": {"and": [
            {"leftOperand": "FrameworkAgreement", "operator": "eq", "rightOperand": "DataExchangeGovernance:1.0"},
            {"leftOperand": "UsagePurpose", "operator": "isAnyOf", "rightOperand": "cx.core.industrycore:1"}]}}]});
        assert!(
            offer_has_ccm_usage(&wrong_purpose)
                .unwrap_err()
                .contains("cx.core.industrycore:1")
        );
        let missing = json!({"permission": [{"action": "use", "constraint":
            {"leftOperand": "FrameworkAgreement", "operator": "eq", "rightOperand": "DataExchangeGovernance:1.0"}}]});
        assert!(offer_has_ccm_usage(&missing).is_err());
        let extra = json!({"permission": [{"action": "use", "constraint": {"and": [
            {"leftOperand": "FrameworkAgreement", "operator": "eq", "rightOperand": "DataExchangeGovernance:1.0"},
            {"leftOperand": "UsagePurpose", "operator": "isAnyOf", "rightOperand": "cx.ccm.base:1"},
            {"leftOperand": "ContractReference", "operator": "isAllOf", "rightOperand": "x"}]}}]});
        assert!(offer_has_ccm_usage(&extra).is_err());
        let mut prohibited = usage_policy();
        prohibited["prohibition"] = json!([{"action": "use"}]);
        assert!(
            offer_has_ccm_usage(&prohibited)
                .unwrap_err()
                .contains("prohibition")
        );
        let either = json!({"permission": [{"action": "use", "constraint": {"or": []}}]});
        assert!(offer_has_ccm_usage(&either).is_err());
        assert!(offer_has_ccm_usage(&json!({"permission": []})).is_err());
    }
}
