//! Sending a CCM message to a partner (ccm.md §9.1, "send message"): find the partner's
//! notification API by subject + version, check its offer is the CCM one, negotiate (or
//! reuse a cached agreement), start a transfer, POST `/companycertificate/<kind>` through
//! the host (which attaches the transfer's token), then terminate the transfer.

use serde::Serialize;
use serde_json::Value;
use weft_sdk::http::ClientRequest;
use weft_sdk::{Error, Result};

use crate::config::Settings;
use crate::edc::{self, Connector, NOTIFICATION_API_KEY, Partner};
use crate::message::Kind;
use crate::policy::criterion;
use crate::vocab;

/// Largest answer read from a partner's notification API: answers are small JSON documents.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// What the partner answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerAnswer {
    /// The HTTP status of the partner's notification API.
    pub status: u16,
    /// Its body (JSON, or a JSON string when it was not JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl PartnerAnswer {
    /// Whether the partner accepted the message (2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The agreement for a partner's notification API: cached, or found and negotiated.
/// Returns `(agreement id, whether it came from the cache)`.
fn notification_agreement(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
) -> Result<(String, bool)> {
    if let Some(a) = edc::cached_agreement(&partner.bpn, NOTIFICATION_API_KEY)? {
        return Ok((a.agreement_id, true));
    }
    let filter = vec![
        criterion(vocab::DCT_SUBJECT, vocab::TAXO_NOTIFICATION_API),
        criterion(vocab::CX_VERSION, vocab::ASSET_VERSION),
    ];
    let (datasets, participant) = edc::catalog(c, s, partner, filter)?;
    let dataset = datasets
        .iter()
        .find(|d| d.is_notification_api())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{} offers no CCM notification API (subject CompanyCertificateManagementNotificationApi, version 3.0) to this participant",
                partner.bpn
            ))
        })?;
    let agreement = edc::negotiate(c, s, partner, dataset, participant.as_deref())?;
    edc::cache_agreement(&partner.bpn, NOTIFICATION_API_KEY, &dataset.id, &agreement)?;
    Ok((agreement, false))
}

/// Sends `envelope` as a `kind` message to `partner` and returns its answer. A cached
/// agreement that no longer works is dropped and negotiated once more.
pub fn send_message(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    kind: Kind,
    envelope: &Value,
) -> Result<PartnerAnswer> {
    let body = serde_json::to_vec(envelope)
        .map_err(|e| Error::Internal(format!("serializing a {} message: {e}", kind.name())))?;
    let mut retried = false;
    loop {
        let (agreement, cached) = notification_agreement(c, s, partner)?;
        let result = edc::with_transfer(c, s, partner, &agreement, |flow| {
            let request = ClientRequest::post(kind.path(), body.clone())
                .with_header("content-type", "application/json");
            let mut response = c.send(flow, request)?;
            let answer = edc::read_answer(&mut response, MAX_ANSWER_BYTES)?;
            Ok(PartnerAnswer {
                status: response.status,
                body: answer,
            })
        });
        match result {
            Err(Error::Conflict(reason)) if cached && !retried => {
                weft_sdk::info!("cached agreement no longer works; negotiating again"; partner = partner.bpn, reason = reason);
                edc::forget_agreement(&partner.bpn, NOTIFICATION_API_KEY)?;
                retried = true;
            }
            other => return other,
        }
    }
}
