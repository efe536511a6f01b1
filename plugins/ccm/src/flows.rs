//! The Data Plane Signaling hooks: which flows CCM accepts and what each one serves.
//!
//! Provider: an http-pull flow of the CCMAPI asset (notifications arrive on it) or of a
//! published certificate asset (the certificate is served on it). Consumer: the pull flows
//! this plugin starts itself. The flow → dataset mapping is kept in `flow/` so the data
//! entry knows what a request is for.

use serde_json::Value;
use weft_sdk::Result;
use weft_sdk::flows::{DataFlow, Decision, FlowRole, TransferMode};

use crate::store::{self, FlowKind, FlowRecord};
use crate::{check, provider, vocab};

/// Claim names under which a counterparty's BPN may appear (compared case-insensitively on
/// the local name).
const BPN_CLAIMS: [&str; 3] = ["businesspartnernumber", "bpn", "bpnl"];

/// The counterparty's BPNL from its verified claims, when they carry one (top level or one
/// level down).
pub fn claims_bpn(claims: &Value) -> Option<String> {
    fn direct(obj: &serde_json::Map<String, Value>) -> Option<String> {
        obj.iter()
            .find(|(k, v)| {
                BPN_CLAIMS.contains(&vocab::local_name(k).to_ascii_lowercase().as_str())
                    && v.as_str().is_some_and(check::is_bpnl)
            })
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    }
    let obj = claims.as_object()?;
    direct(obj).or_else(|| obj.values().filter_map(Value::as_object).find_map(direct))
}

fn is_pull(flow: &DataFlow) -> bool {
    flow.mode == TransferMode::Pull && vocab::PULL_PROFILES.contains(&flow.profile.as_str())
}

fn record(flow: &DataFlow, serves: FlowKind, started: bool) -> Result<()> {
    store::put(
        &FlowRecord::key(&flow.id),
        &FlowRecord {
            id: flow.id.clone(),
            dataset_id: flow.dataset_id.clone(),
            serves,
            counter_party_id: flow.counter_party_id.clone(),
            counterparty_bpn: claims_bpn(&flow.claims_json()),
            agreement_id: flow.agreement_id.clone(),
            started,
            at: check::now_timestamp(),
        },
    )
}

/// Provider `start`: accept http-pull flows of the CCMAPI asset and of published
/// certificates; the host mints the token and the address.
pub fn on_start(flow: &DataFlow) -> Result<Decision> {
    if flow.role != FlowRole::Provider || !is_pull(flow) {
        return Ok(Decision::Reject(format!(
            "ccm serves http-pull flows only (got profile `{}`)",
            flow.profile
        )));
    }
    let serves = if flow.dataset_id == vocab::CCMAPI_ASSET_ID {
        FlowKind::NotificationApi
    } else if let Some(cert) = provider::published_certificate(&flow.dataset_id)? {
        FlowKind::Certificate {
            certificate_id: cert.id,
        }
    } else {
        return Ok(Decision::Reject(format!(
            "dataset {} is not a published CCM asset of this participant",
            flow.dataset_id
        )));
    };
    record(flow, serves, true)?;
    Ok(Decision::Accept(None))
}

/// Consumer `prepare`: accept the http-pull flows this plugin requests.
pub fn on_prepare(flow: &DataFlow) -> Result<Decision> {
    if flow.role != FlowRole::Consumer || !is_pull(flow) {
        return Ok(Decision::Reject(format!(
            "ccm consumes http-pull flows only (got profile `{}`)",
            flow.profile
        )));
    }
    record(flow, FlowKind::Consumer, false)?;
    Ok(Decision::Accept(None))
}

/// Consumer `started`: the provider's address is held by the host; note the flow started.
pub fn on_started(flow: &DataFlow) -> Result<()> {
    record(flow, FlowKind::Consumer, true)
}

/// `terminate` / `completed`: the flow serves nothing any more.
pub fn on_end(flow: &DataFlow) -> Result<()> {
    store::delete(&FlowRecord::key(&flow.id)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bpn_claims() {
        assert_eq!(
            claims_bpn(
                &json!({"participantId": "did:web:x", "BusinessPartnerNumber": "BPNL0000000001AB"})
            ),
            Some("BPNL0000000001AB".into())
        );
        assert_eq!(
            claims_bpn(
                &json!({"vc": {"https://w3id.org/catenax/credentials/bpn": "BPNL0000000001AB"}})
            ),
            Some("BPNL0000000001AB".into())
        );
        assert_eq!(claims_bpn(&json!({"bpn": "not-a-bpn"})), None);
        assert_eq!(claims_bpn(&json!(null)), None);
    }
}
