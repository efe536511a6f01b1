//! Tenant state (ccm.md §9.3), kept through the `state` import. One key prefix per store:
//!
//! | Prefix | Key → value |
//! |---|---|
//! | `cert/` | certId → [`CertRecord`] (the certificate without content, PDF hash, asset id) |
//! | `pdf/` | certId/n → PDF bytes, in [`PDF_CHUNK_BYTES`] chunks |
//! | `offer/` | assetId → [`OfferRecord`] (policy ids, contract definition) |
//! | `share/` | certId/consumerBpn → [`ShareRecord`] |
//! | `inreq/` | messageId → [`InboundRequest`] |
//! | `recv/` | providerBpn/documentID → [`ReceivedRecord`] |
//! | `rpdf/` | providerBpn/documentID/n → received PDF bytes |
//! | `recvasset/` | providerBpn/assetId → documentID (feedback names the asset id) |
//! | `outreq/` | messageId → [`OutboundRequest`] |
//! | `outmsg/` | messageId → [`SentMessage`] (push/available sent; correlates feedback) |
//! | `agree/` | counterpartyBpn/assetId → [`AgreementRecord`] (agreement cache) |
//! | `seen/` | messageId → [`SeenMessage`] (de-duplication, relatedMessageId correlation) |
//! | `flow/` | flowId → [`FlowRecord`] (which dataset a data flow serves) |
//! | `partner/` | BPNL → [`PartnerRecord`] learned from pushes (feedback address) |
//! | `notice/` | messageId → [`Notice`] (available notices and their pulls) |
//! | `bootstrap` | the last bootstrap report |
//!
//! Key parts coming from partners are escaped (`%` and `/`) so a prefix listing cannot be
//! confused by them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use weft_sdk::{Error, Result, state};

use crate::message::{ErrorMessage, LocationErrors};
use crate::model::BusinessPartnerCertificate;
use crate::shares::ShareState;

/// Bytes per stored PDF chunk: below the host's 1 MiB value cap with room to spare.
pub const PDF_CHUNK_BYTES: usize = 512 * 1024;
/// Most history entries kept per share: the recent past explains the state.
pub const MAX_SHARE_HISTORY: usize = 50;
/// Most entries a listing route returns: bounds one answer's size.
pub const MAX_LIST: usize = 1000;

/// Escapes `%` and `/` in a key part.
pub fn part(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// Reads a JSON record.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    state::get_json(key)
}

/// Writes a JSON record.
pub fn put<T: Serialize>(key: &str, value: &T) -> Result<()> {
    state::set_json(key, value)
}

/// Deletes a key; whether it existed.
pub fn delete(key: &str) -> Result<bool> {
    state::delete(key)
}

/// All records under `prefix`, in key order, at most [`MAX_LIST`].
pub fn list<T: DeserializeOwned>(prefix: &str) -> Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    for entry in state::list(prefix) {
        let (key, bytes) = entry?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Internal(format!("state value `{key}` is not the expected JSON: {e}"))
        })?;
        out.push((key, value));
        if out.len() >= MAX_LIST {
            break;
        }
    }
    Ok(out)
}

/// Writes `bytes` as chunks `{prefix}{n:04}`, removing stale chunks of an older, longer
/// value. Returns the number of chunks.
pub fn put_chunks(prefix: &str, bytes: &[u8], old_chunks: usize) -> Result<usize> {
    let chunks: Vec<&[u8]> = bytes.chunks(PDF_CHUNK_BYTES).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        state::set(&format!("{prefix}{i:04}"), chunk)?;
    }
    for i in chunks.len()..old_chunks {
        state::delete(&format!("{prefix}{i:04}"))?;
    }
    Ok(chunks.len())
}

/// Reads chunks `{prefix}0000..` back; [`Error::Internal`] when one is missing.
pub fn get_chunks(prefix: &str, chunks: usize, size: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size);
    for i in 0..chunks {
        let key = format!("{prefix}{i:04}");
        let chunk = state::get(&key)?
            .ok_or_else(|| Error::Internal(format!("document chunk `{key}` is missing")))?;
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Deletes chunks `{prefix}0000..`.
pub fn delete_chunks(prefix: &str, chunks: usize) -> Result<()> {
    for i in 0..chunks {
        state::delete(&format!("{prefix}{i:04}"))?;
    }
    Ok(())
}

/// Where a PDF is and what it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PdfInfo {
    pub sha256: String,
    pub size: usize,
    pub chunks: usize,
}

/// A provider's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertRecord {
    pub id: String,
    pub certificate: BusinessPartnerCertificate,
    pub pdf: PdfInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_definition_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl CertRecord {
    /// `cert/{id}`.
    pub fn key(id: &str) -> String {
        format!("cert/{}", part(id))
    }

    /// `pdf/{id}/`.
    pub fn pdf_prefix(id: &str) -> String {
        format!("pdf/{}/", part(id))
    }
}

/// A published certificate asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferRecord {
    pub asset_id: String,
    pub certificate_id: String,
    pub access_policy_id: String,
    pub contract_policy_id: String,
    pub contract_definition_id: String,
    pub published_at: String,
}

impl OfferRecord {
    /// `offer/{assetId}`.
    pub fn key(asset_id: &str) -> String {
        format!("offer/{}", part(asset_id))
    }
}

/// One step of a share's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareEvent {
    pub at: String,
    /// `RECEIVED`/`ACCEPTED`/`REJECTED`, or what offered it (`pull`, `push`, ...).
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ShareState>,
    pub to: ShareState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A certificate shared with one consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareRecord {
    pub certificate_id: String,
    pub consumer_bpn: String,
    pub state: ShareState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location_bpns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_errors: Vec<ErrorMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location_errors: Vec<LocationErrors>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_id: Option<String>,
    pub history: Vec<ShareEvent>,
    pub updated_at: String,
}

impl ShareRecord {
    /// `share/{certId}/{consumerBpn}`.
    pub fn key(cert_id: &str, consumer_bpn: &str) -> String {
        format!("share/{}/{}", part(cert_id), part(consumer_bpn))
    }

    /// Appends a history step, keeping the last [`MAX_SHARE_HISTORY`].
    pub fn record(&mut self, event: ShareEvent) {
        self.updated_at = event.at.clone();
        self.history.push(event);
        if self.history.len() > MAX_SHARE_HISTORY {
            let excess = self.history.len() - MAX_SHARE_HISTORY;
            self.history.drain(..excess);
        }
    }
}

/// A `request` message received (provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundRequest {
    pub message_id: String,
    pub consumer_bpn: String,
    pub certified_bpn: String,
    pub certificate_type: String,
    #[serde(default)]
    pub location_bpns: Vec<String>,
    /// `REJECTED`, `IN_PROGRESS` or `COMPLETED`: the last answer.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    pub received_at: String,
    pub answered_at: String,
}

impl InboundRequest {
    /// `inreq/{messageId}`.
    pub fn key(message_key: &str) -> String {
        format!("inreq/{}", part(message_key))
    }
}

/// How a received certificate arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Pull,
    Push,
}

/// Feedback the consumer sent on a received certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentFeedback {
    pub status: String,
    pub message_id: String,
    pub sent_at: String,
    pub provider_status: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_errors: Vec<ErrorMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location_errors: Vec<LocationErrors>,
}

/// A certificate received from a provider (consumer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedRecord {
    pub provider_bpn: String,
    /// The certificate's `document.documentID`.
    pub document_id: String,
    /// The provider's asset id, when pulled or announced (the `documentId` of feedback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    pub certificate: BusinessPartnerCertificate,
    pub pdf: PdfInfo,
    pub source: Source,
    /// The push's `messageId` (feedback's `relatedMessageId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_id: Option<String>,
    /// The last feedback sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<SentFeedback>,
    pub received_at: String,
    pub updated_at: String,
}

impl ReceivedRecord {
    /// `recv/{providerBpn}/{documentID}`.
    pub fn key(provider_bpn: &str, document_id: &str) -> String {
        format!("recv/{}/{}", part(provider_bpn), part(document_id))
    }

    /// `rpdf/{providerBpn}/{documentID}/`.
    pub fn pdf_prefix(provider_bpn: &str, document_id: &str) -> String {
        format!("rpdf/{}/{}/", part(provider_bpn), part(document_id))
    }

    /// `recvasset/{providerBpn}/{assetId}` → documentID.
    pub fn asset_key(provider_bpn: &str, asset_id: &str) -> String {
        format!("recvasset/{}/{}", part(provider_bpn), part(asset_id))
    }
}

/// A `request` message sent (consumer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundRequest {
    pub message_id: String,
    pub provider_bpn: String,
    pub certified_bpn: String,
    pub certificate_type: String,
    #[serde(default)]
    pub location_bpns: Vec<String>,
    /// The provider's HTTP status.
    pub provider_status: u16,
    /// `IN_PROGRESS`, `COMPLETED`, `REJECTED` or `UNKNOWN`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<serde_json::Value>,
    pub sent_at: String,
}

impl OutboundRequest {
    /// `outreq/{messageId}`.
    pub fn key(message_key: &str) -> String {
        format!("outreq/{}", part(message_key))
    }
}

/// A push or available notice sent (provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    pub message_id: String,
    pub kind: crate::message::Kind,
    pub receiver_bpn: String,
    pub certificate_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    pub partner_status: u16,
    pub sent_at: String,
}

impl SentMessage {
    /// `outmsg/{messageId}`.
    pub fn key(message_key: &str) -> String {
        format!("outmsg/{}", part(message_key))
    }
}

/// A cached contract agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementRecord {
    pub agreement_id: String,
    pub asset_id: String,
    pub negotiated_at: String,
}

impl AgreementRecord {
    /// `agree/{counterpartyBpn}/{assetId}`.
    pub fn key(bpn: &str, asset_id: &str) -> String {
        format!("agree/{}/{}", part(bpn), part(asset_id))
    }
}

/// A message already processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeenMessage {
    pub kind: crate::message::Kind,
    pub sender_bpn: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_message_id: Option<String>,
}

impl SeenMessage {
    /// `seen/{messageId}`.
    pub fn key(message_key: &str) -> String {
        format!("seen/{}", part(message_key))
    }
}

/// What a data flow serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum FlowKind {
    /// The provider side of the notification API asset.
    NotificationApi,
    /// The provider side of a certificate asset.
    Certificate {
        #[serde(rename = "certificateId")]
        certificate_id: String,
    },
    /// A consumer pull flow of this plugin.
    Consumer,
}

/// A data flow this plugin accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowRecord {
    pub id: String,
    pub dataset_id: String,
    pub serves: FlowKind,
    pub counter_party_id: String,
    /// The counterparty's BPN from the verified claims, when they carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_bpn: Option<String>,
    pub agreement_id: String,
    #[serde(default)]
    pub started: bool,
    pub at: String,
}

impl FlowRecord {
    /// `flow/{id}`.
    pub fn key(id: &str) -> String {
        format!("flow/{}", part(id))
    }
}

/// A partner's address learned from its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerRecord {
    pub dsp_address: String,
    pub did: String,
    pub learned_at: String,
}

impl PartnerRecord {
    /// `partner/{bpn}`.
    pub fn key(bpn: &str) -> String {
        format!("partner/{}", part(bpn))
    }
}

/// An `available` notice and the pull it triggered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub message_id: String,
    pub provider_bpn: String,
    pub document_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_type: Option<String>,
    #[serde(default)]
    pub location_bpns: Vec<String>,
    /// `received`, `negotiating`, `pulled`, `failed` or `manual`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub received_at: String,
    pub updated_at: String,
}

impl Notice {
    /// `notice/{messageId}`.
    pub fn key(message_key: &str) -> String {
        format!("notice/{}", part(message_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing;

    #[test]
    fn keys_escape_partner_text() {
        assert_eq!(part("a/b%c"), "a%2Fb%25c");
        assert_eq!(
            ReceivedRecord::key("BPNL0000000001AB", "x/y"),
            "recv/BPNL0000000001AB/x%2Fy"
        );
        assert_eq!(
            ShareRecord::key("c1", "BPNL0000000001AB"),
            "share/c1/BPNL0000000001AB"
        );
    }

    #[test]
    fn chunks_round_trip_and_shrink() {
        testing::reset();
        let big: Vec<u8> = (0..PDF_CHUNK_BYTES * 2 + 10)
            .map(|i| (i % 251) as u8)
            .collect();
        assert_eq!(put_chunks("pdf/c/", &big, 0).unwrap(), 3);
        assert_eq!(get_chunks("pdf/c/", 3, big.len()).unwrap(), big);
        assert_eq!(put_chunks("pdf/c/", b"small", 3).unwrap(), 1);
        assert_eq!(get_chunks("pdf/c/", 1, 5).unwrap(), b"small");
        assert!(!testing::state().contains_key("pdf/c/0001"));
        assert_eq!(get_chunks("pdf/c/", 2, 5).unwrap_err().kind(), "internal");
        delete_chunks("pdf/c/", 1).unwrap();
        assert!(testing::state().is_empty());
    }

    #[test]
    fn share_history_is_capped() {
        let mut s = ShareRecord {
            certificate_id: "c".into(),
            consumer_bpn: "BPNL0000000001AB".into(),
            state: ShareState::Offered,
            document_id: None,
            location_bpns: vec![],
            certificate_errors: vec![],
            location_errors: vec![],
            last_message_id: None,
            history: vec![],
            updated_at: String::new(),
        };
        for i in 0..(MAX_SHARE_HISTORY + 5) {
            s.record(ShareEvent {
                at: i.to_string(),
                cause: "pull".into(),
                from: None,
                to: ShareState::Offered,
                message_id: None,
            });
        }
        assert_eq!(s.history.len(), MAX_SHARE_HISTORY);
        assert_eq!(s.history[0].at, "5");
        assert_eq!(s.updated_at, (MAX_SHARE_HISTORY + 4).to_string());
    }
}
