//! The Certificate Consumer (ccm.md §7, §9.1–§9.2): pulling certificates (by `documentId`
//! or by filter), receiving `push` and `available`, and sending `status` feedback and
//! `request` messages.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weft_sdk::events::{Event, EventKind};
use weft_sdk::http::ClientRequest;
use weft_sdk::management::ProcessKind;
use weft_sdk::{Error, Result};

use crate::config::{PartnerConfig, Settings};
use crate::edc::{self, Connector, Dataset, Partner};
use crate::message::{
    AvailableContent, CertificateStatus, ErrorMessage, Header, Kind, LocationErrors, ValidHeader,
};
use crate::model::BusinessPartnerCertificate;
use crate::notify::{self, PartnerAnswer};
use crate::policy::criterion;
use crate::store::{
    self, FlowRecord, Notice, OutboundRequest, PartnerRecord, PdfInfo, ReceivedRecord,
    SentFeedback, Source,
};
use crate::{check, pdf, vocab};

/// Most certificates one filtered pull fetches: each costs a negotiation and a transfer
/// inside one call's wall-clock budget.
pub const MAX_PULL_MATCHES: usize = 5;
/// Bytes of JSON around the base64 PDF in a served certificate.
pub const CERTIFICATE_JSON_OVERHEAD: usize = 256 * 1024;
/// Prefix of the `watch` correlation of an automatic pull.
pub const NOTICE_CORRELATION: &str = "ccm-notice:";

/// The largest certificate JSON accepted (pull answer or push body) for a PDF cap.
pub fn certificate_json_limit(max_pdf_bytes: usize) -> usize {
    max_pdf_bytes / 3 * 4 + 4 + CERTIFICATE_JSON_OVERHEAD
}

/// What storing a received certificate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stored {
    /// A new record.
    Created,
    /// The record existed and its content changed.
    Updated,
    /// The same certificate again: nothing changed.
    Unchanged,
}

/// Validates a received certificate, decodes and checks its PDF, and upserts it on
/// (providerBpn, documentID): a repeat creates no copy.
pub fn store_received(
    s: &Settings,
    provider_bpn: &str,
    asset_id: Option<&str>,
    mut cert: BusinessPartnerCertificate,
    source: Source,
    source_message_id: Option<&str>,
) -> Result<(ReceivedRecord, Stored)> {
    let errors = cert.validate(true);
    if !errors.is_empty() {
        return Err(Error::Invalid(format!(
            "the certificate is invalid: {}",
            errors.join("; ")
        )));
    }
    let content = cert.document.content_base64.take().unwrap_or_default();
    let pdf = pdf::decode(&content, s.max_pdf_bytes)?;
    drop(content);
    let document_id = cert.document.document_id.clone();
    let key = ReceivedRecord::key(provider_bpn, &document_id);
    let existing: Option<ReceivedRecord> = store::get(&key)?;
    let now = check::now_timestamp();
    if let Some(asset) = asset_id {
        store::put(
            &ReceivedRecord::asset_key(provider_bpn, asset),
            &document_id,
        )?;
    }
    if let Some(mut old) = existing.clone()
        && old.pdf.sha256 == pdf.sha256
        && old.certificate == cert
    {
        if asset_id.is_some() && old.asset_id.as_deref() != asset_id {
            old.asset_id = asset_id.map(str::to_owned);
            store::put(&key, &old)?;
        }
        return Ok((old, Stored::Unchanged));
    }
    let prefix = ReceivedRecord::pdf_prefix(provider_bpn, &document_id);
    let old_chunks = existing.as_ref().map_or(0, |e| e.pdf.chunks);
    let chunks = store::put_chunks(&prefix, &pdf.bytes, old_chunks)?;
    let record = ReceivedRecord {
        provider_bpn: provider_bpn.to_owned(),
        document_id,
        asset_id: asset_id
            .map(str::to_owned)
            .or_else(|| existing.as_ref().and_then(|e| e.asset_id.clone())),
        certificate: cert,
        pdf: PdfInfo {
            sha256: pdf.sha256,
            size: pdf.bytes.len(),
            chunks,
        },
        source,
        source_message_id: source_message_id
            .map(str::to_owned)
            .or_else(|| existing.as_ref().and_then(|e| e.source_message_id.clone())),
        // New content needs new feedback.
        feedback: None,
        received_at: existing
            .as_ref()
            .map_or_else(|| now.clone(), |e| e.received_at.clone()),
        updated_at: now,
    };
    store::put(&key, &record)?;
    let outcome = if existing.is_some() {
        Stored::Updated
    } else {
        Stored::Created
    };
    Ok((record, outcome))
}

/// A received certificate by provider and `documentId` (the asset id or the documentID).
pub fn find_received(provider_bpn: &str, document_id: &str) -> Result<Option<ReceivedRecord>> {
    if let Some(r) = store::get(&ReceivedRecord::key(provider_bpn, document_id))? {
        return Ok(Some(r));
    }
    match store::get::<String>(&ReceivedRecord::asset_key(provider_bpn, document_id))? {
        Some(doc) => store::get(&ReceivedRecord::key(provider_bpn, &doc)),
        None => Ok(None),
    }
}

/// The PDF of a received certificate.
pub fn received_document(r: &ReceivedRecord) -> Result<Vec<u8>> {
    store::get_chunks(
        &ReceivedRecord::pdf_prefix(&r.provider_bpn, &r.document_id),
        r.pdf.chunks,
        r.pdf.size,
    )
}

/// Fetches the certificate of `asset_id` under `agreement_id` and stores it.
fn fetch(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    agreement_id: &str,
    asset_id: &str,
) -> Result<ReceivedRecord> {
    edc::with_transfer(c, s, partner, agreement_id, |flow| {
        let mut response = c.send(flow, ClientRequest::get("/"))?;
        if response.status != 200 {
            return Err(Error::Unavailable(format!(
                "{} answered {} to the pull of {asset_id}",
                partner.bpn, response.status
            )));
        }
        let bytes = response
            .body
            .read_bytes(certificate_json_limit(s.max_pdf_bytes))?;
        let cert: BusinessPartnerCertificate = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Unavailable(format!(
                "{} served no BusinessPartnerCertificate for {asset_id}: {e}",
                partner.bpn
            ))
        })?;
        let (record, _) = store_received(s, &partner.bpn, Some(asset_id), cert, Source::Pull, None)
            .map_err(|e| match e {
                Error::Invalid(m) | Error::LimitExceeded(m) => Error::Unavailable(format!(
                    "{} served an unusable certificate for {asset_id}: {m}",
                    partner.bpn
                )),
                other => other,
            })?;
        Ok(record)
    })
}

/// Negotiates `dataset` (checking its offer is the CCM one), caches the agreement, fetches.
fn pull_dataset(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    dataset: &Dataset,
    assigner: Option<&str>,
) -> Result<ReceivedRecord> {
    let agreement = edc::negotiate(c, s, partner, dataset, assigner)?;
    edc::cache_agreement(&partner.bpn, &dataset.id, &dataset.id, &agreement)?;
    fetch(c, s, partner, &agreement, &dataset.id)
}

/// What to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullTarget {
    /// One certificate asset by id (`documentId` of request, available and status).
    Document(String),
    /// Certificates by type, covering all of `sites`.
    Filter {
        certificate_type: String,
        sites: Vec<String>,
    },
}

/// Pulls certificates from `partner` (ccm.md §9.1): catalog (filtered on the asset id, or on
/// subject + certificateType, checked again here on expanded IRIs), offer policy check,
/// negotiation (or a cached agreement), transfer, GET, validation, storage, termination.
pub fn pull(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    target: &PullTarget,
) -> Result<Vec<ReceivedRecord>> {
    match target {
        PullTarget::Document(asset_id) => {
            if let Some(cached) = edc::cached_agreement(&partner.bpn, asset_id)? {
                match fetch(c, s, partner, &cached.agreement_id, asset_id) {
                    Err(Error::Conflict(reason)) => {
                        weft_sdk::info!("cached agreement no longer works"; asset = asset_id, reason = reason);
                        edc::forget_agreement(&partner.bpn, asset_id)?;
                    }
                    other => return other.map(|r| vec![r]),
                }
            }
            let (datasets, participant) =
                edc::catalog(c, s, partner, vec![criterion(vocab::EDC_ID, asset_id)])?;
            let dataset = datasets.iter().find(|d| &d.id == asset_id).ok_or_else(|| {
                Error::NotFound(format!(
                    "{} offers no asset {asset_id} to this participant",
                    partner.bpn
                ))
            })?;
            if !dataset.is_certificate() {
                return Err(Error::Invalid(format!(
                    "asset {asset_id} of {} is not a CCM certificate (subject cx-taxo:CompanyCertificate)",
                    partner.bpn
                )));
            }
            Ok(vec![pull_dataset(
                c,
                s,
                partner,
                dataset,
                participant.as_deref(),
            )?])
        }
        PullTarget::Filter {
            certificate_type,
            sites,
        } => {
            let filter = vec![
                criterion(vocab::DCT_SUBJECT, vocab::TAXO_COMPANY_CERTIFICATE),
                criterion(
                    vocab::DCT_CERTIFICATE_TYPE,
                    &format!("{}{certificate_type}", vocab::CX_TAXO_NS),
                ),
            ];
            let (datasets, participant) = edc::catalog(c, s, partner, filter)?;
            let matching: Vec<&Dataset> = datasets
                .iter()
                .filter(|d| {
                    d.is_certificate()
                        && d.certificate_type().as_deref() == Some(certificate_type.as_str())
                        && {
                            let have = d.sites();
                            sites.iter().all(|site| have.contains(site))
                        }
                })
                .take(MAX_PULL_MATCHES)
                .collect();
            if matching.is_empty() {
                return Err(Error::NotFound(format!(
                    "{} offers no {certificate_type} certificate{} to this participant",
                    partner.bpn,
                    if sites.is_empty() {
                        String::new()
                    } else {
                        format!(" covering {}", sites.join(", "))
                    }
                )));
            }
            matching
                .into_iter()
                .map(|d| pull_dataset(c, s, partner, d, participant.as_deref()))
                .collect()
        }
    }
}

/// Remembers where a partner takes feedback: the `senderFeedbackUrl` of its message and the
/// identity its connector authenticated for the flow.
fn learn_partner(bpn: &str, header: &ValidHeader, flow: &FlowRecord) -> Result<()> {
    let Some(url) = &header.sender_feedback_url else {
        return Ok(());
    };
    if flow.counter_party_id.trim().is_empty() {
        return Ok(());
    }
    store::put(
        &PartnerRecord::key(bpn),
        &PartnerRecord {
            dsp_address: url.clone(),
            did: flow.counter_party_id.clone(),
            learned_at: check::now_timestamp(),
        },
    )
}

/// Receives a `push`: validates the certificate, decodes and checks the PDF, upserts it.
pub fn receive_push(
    s: &Settings,
    header: &ValidHeader,
    cert: BusinessPartnerCertificate,
    flow: &FlowRecord,
) -> Result<(ReceivedRecord, Stored)> {
    let stored = store_received(
        s,
        &header.sender_bpn,
        None,
        cert,
        Source::Push,
        Some(&header.message_id),
    )?;
    learn_partner(&header.sender_bpn, header, flow)?;
    Ok(stored)
}

/// Receives an `available` notice: records it and, unless `autoPull` is off, starts pulling
/// the announced asset. The negotiation runs on; the pull finishes in [`on_event`] when the
/// host reports the negotiation's end, so the provider's call is not held open.
pub fn receive_available(
    c: &dyn Connector,
    s: &Settings,
    header: &ValidHeader,
    mut content: AvailableContent,
    flow: &FlowRecord,
) -> Result<Notice> {
    let errors = content.validate();
    if !errors.is_empty() {
        return Err(Error::Invalid(errors.join("; ")));
    }
    learn_partner(&header.sender_bpn, header, flow)?;
    let now = check::now_timestamp();
    let message_key = check::message_key(&header.message_id);
    let mut notice = Notice {
        message_id: header.message_id.clone(),
        provider_bpn: header.sender_bpn.clone(),
        document_id: content.document_id.clone().unwrap_or_default(),
        certificate_type: content.certificate_type.clone(),
        location_bpns: content.location_bpns.clone(),
        status: "received".to_owned(),
        negotiation_id: None,
        detail: None,
        received_at: now.clone(),
        updated_at: now,
    };
    if !s.auto_pull {
        notice.status = "manual".to_owned();
    } else {
        match start_notice_pull(c, s, &notice, &message_key) {
            Ok(negotiation) => {
                notice.status = "negotiating".to_owned();
                notice.negotiation_id = Some(negotiation);
            }
            Err(e) => {
                weft_sdk::warn!("automatic pull after an available notice failed"; document = notice.document_id, error = e);
                notice.status = "failed".to_owned();
                notice.detail = Some(e.to_string());
            }
        }
    }
    store::put(&Notice::key(&message_key), &notice)?;
    Ok(notice)
}

fn start_notice_pull(
    c: &dyn Connector,
    s: &Settings,
    notice: &Notice,
    message_key: &str,
) -> Result<String> {
    let partner = edc::partner(s, &notice.provider_bpn, None)?;
    let (datasets, participant) = edc::catalog(
        c,
        s,
        &partner,
        vec![criterion(vocab::EDC_ID, &notice.document_id)],
    )?;
    let dataset = datasets
        .iter()
        .find(|d| d.id == notice.document_id && d.is_certificate())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{} offers no certificate asset {}",
                partner.bpn, notice.document_id
            ))
        })?;
    let negotiation = edc::start_negotiation(c, s, &partner, dataset, participant.as_deref())?;
    c.watch(
        ProcessKind::ContractNegotiation,
        &negotiation,
        &format!("{NOTICE_CORRELATION}{message_key}"),
    )?;
    Ok(negotiation)
}

/// Finishes an automatic pull when the host reports its negotiation ended. Redeliveries of a
/// finished notice change nothing; a dependency that is down makes the host retry.
pub fn on_event(c: &dyn Connector, event: &Event) -> Result<()> {
    let Some(key) = event
        .correlation
        .as_deref()
        .and_then(|c| c.strip_prefix(NOTICE_CORRELATION))
    else {
        return Ok(());
    };
    let state = match &event.kind {
        EventKind::ProcessStateChanged(s) | EventKind::ContractNegotiation(s) => s.clone(),
        _ => return Ok(()),
    };
    let notice_key = Notice::key(key);
    let Some(mut notice) = store::get::<Notice>(&notice_key)? else {
        return Ok(());
    };
    if notice.status != "negotiating" || !matches!(state.as_str(), "FINALIZED" | "TERMINATED") {
        return Ok(());
    }
    let negotiation = notice
        .negotiation_id
        .clone()
        .unwrap_or_else(|| event.subject.clone());
    let s = Settings::load()?;
    let result = edc::finish_negotiation(c, &negotiation, &state).and_then(|agreement| {
        let partner = edc::partner(&s, &notice.provider_bpn, None)?;
        edc::cache_agreement(
            &partner.bpn,
            &notice.document_id,
            &notice.document_id,
            &agreement,
        )?;
        fetch(c, &s, &partner, &agreement, &notice.document_id)
    });
    match result {
        Err(Error::Unavailable(reason)) => {
            return Err(Error::Unavailable(reason));
        }
        Err(e) => {
            notice.status = "failed".to_owned();
            notice.detail = Some(e.to_string());
        }
        Ok(record) => {
            notice.status = "pulled".to_owned();
            notice.detail = Some(format!("stored as {}", record.document_id));
        }
    }
    notice.updated_at = check::now_timestamp();
    store::put(&notice_key, &notice)
}

/// `POST /feedback` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackInput {
    pub provider_bpn: String,
    pub document_id: String,
    pub status: String,
    #[serde(default)]
    pub location_bpns: Option<Vec<String>>,
    #[serde(default)]
    pub certificate_errors: Vec<ErrorMessage>,
    #[serde(default)]
    pub location_errors: Vec<LocationErrors>,
    #[serde(default)]
    pub related_message_id: Option<String>,
    #[serde(default)]
    pub dsp_address: Option<String>,
    #[serde(default)]
    pub did: Option<String>,
}

/// What `POST /feedback` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackSent {
    pub message_id: String,
    pub document_id: String,
    pub certificate_status: &'static str,
    pub partner: PartnerAnswer,
}

/// The partner override of an API body, when it gives one.
pub fn explicit_partner(
    dsp_address: &Option<String>,
    did: &Option<String>,
) -> Result<Option<PartnerConfig>> {
    match (dsp_address, did) {
        (Some(a), Some(d)) => Ok(Some(PartnerConfig {
            dsp_address: a.clone(),
            did: d.clone(),
        })),
        (None, None) => Ok(None),
        _ => Err(Error::Invalid(
            "give both dspAddress and did, or neither".to_owned(),
        )),
    }
}

/// Sends `status` feedback on a received certificate (ccm.md §2): the `documentId` is the
/// provider's asset id when known; feedback on a push carries the push's messageId as
/// `relatedMessageId`.
pub fn send_feedback(
    c: &dyn Connector,
    s: &Settings,
    input: FeedbackInput,
) -> Result<FeedbackSent> {
    let status = CertificateStatus::parse(&input.status).ok_or_else(|| {
        Error::Invalid(format!(
            "status `{}` must be RECEIVED, ACCEPTED or REJECTED",
            input.status
        ))
    })?;
    let partner = edc::partner(
        s,
        &input.provider_bpn,
        explicit_partner(&input.dsp_address, &input.did)?,
    )?;
    let received = find_received(&partner.bpn, &input.document_id)?;
    let document_id = received
        .as_ref()
        .map(|r| r.asset_id.clone().unwrap_or_else(|| r.document_id.clone()))
        .unwrap_or_else(|| input.document_id.clone());
    let related = input.related_message_id.clone().or_else(|| {
        received
            .as_ref()
            .filter(|r| r.source == Source::Push)
            .and_then(|r| r.source_message_id.clone())
    });
    if let Some(r) = &related
        && !check::is_message_id(r)
    {
        return Err(Error::Invalid(format!(
            "relatedMessageId `{r}` is not a UUID"
        )));
    }
    let locations = input.location_bpns.clone().unwrap_or_else(|| {
        received
            .as_ref()
            .map(|r| r.certificate.site_bpns())
            .unwrap_or_default()
    });
    let mut errors: Vec<String> = locations
        .iter()
        .filter(|l| !check::is_location_bpn(l))
        .map(|l| format!("locationBpns: `{l}` is not a BPNS or BPNA"))
        .collect();
    errors.extend(
        input
            .location_errors
            .iter()
            .filter(|l| !check::is_location_bpn(&l.bpn))
            .map(|l| format!("locationErrors: `{}` is not a BPNS or BPNA", l.bpn)),
    );
    if !errors.is_empty() {
        return Err(Error::Invalid(errors.join("; ")));
    }
    let header = Header::new(
        Kind::Status,
        &s.bpnl,
        &partner.bpn,
        related.as_deref(),
        Some(s.feedback_url()?),
    );
    let message_id = header.message_id.clone().unwrap_or_default();
    let mut content = json!({
        "documentId": document_id,
        "certificateStatus": status.as_str(),
        "locationBpns": locations,
    });
    if !input.certificate_errors.is_empty() {
        content["certificateErrors"] = json!(input.certificate_errors);
    }
    if !input.location_errors.is_empty() {
        content["locationErrors"] = json!(input.location_errors);
    }
    let answer = notify::send_message(
        c,
        s,
        &partner,
        Kind::Status,
        &json!({"header": header, "content": content}),
    )?;
    if answer.accepted()
        && let Some(mut r) = received
    {
        r.feedback = Some(SentFeedback {
            status: status.as_str().to_owned(),
            message_id: message_id.clone(),
            sent_at: check::now_timestamp(),
            provider_status: answer.status,
            certificate_errors: input.certificate_errors,
            location_errors: input.location_errors,
        });
        store::put(&ReceivedRecord::key(&r.provider_bpn, &r.document_id), &r)?;
    }
    Ok(FeedbackSent {
        message_id,
        document_id,
        certificate_status: status.as_str(),
        partner: answer,
    })
}

/// `POST /requests` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestInput {
    pub provider_bpn: String,
    /// The certified legal entity; defaults to the provider.
    #[serde(default)]
    pub certified_bpn: Option<String>,
    pub certificate_type: String,
    #[serde(default)]
    pub location_bpns: Vec<String>,
    /// Pull the certificate at once when the answer is COMPLETED.
    #[serde(default)]
    pub pull: bool,
    #[serde(default)]
    pub dsp_address: Option<String>,
    #[serde(default)]
    pub did: Option<String>,
}

/// What `POST /requests` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestSent {
    pub request: OutboundRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulled: Option<ReceivedRecord>,
}

/// Sends a `request` (ccm.md §2) and records the answer: 202 → IN_PROGRESS, 200 → the
/// `requestStatus` (COMPLETED with `documentId`, or REJECTED with the errors).
pub fn send_request(
    c: &dyn Connector,
    s: &Settings,
    input: RequestInput,
) -> Result<(RequestSent, PartnerAnswer)> {
    let partner = edc::partner(
        s,
        &input.provider_bpn,
        explicit_partner(&input.dsp_address, &input.did)?,
    )?;
    let mut content = crate::message::RequestContent {
        certified_bpn: Some(
            input
                .certified_bpn
                .clone()
                .unwrap_or_else(|| partner.bpn.clone()),
        ),
        certificate_type: Some(input.certificate_type.clone()),
        location_bpns: input.location_bpns.clone(),
    };
    let errors = content.validate();
    if !errors.is_empty() {
        return Err(Error::Invalid(errors.join("; ")));
    }
    let header = Header::new(Kind::Request, &s.bpnl, &partner.bpn, None, None);
    let message_id = header.message_id.clone().unwrap_or_default();
    let answer = notify::send_message(
        c,
        s,
        &partner,
        Kind::Request,
        &json!({"header": header, "content": content}),
    )?;
    let answered = answer.body.as_ref().and_then(|b| b.get("content"));
    let status = match (
        answer.status,
        answered
            .and_then(|c| c.get("requestStatus"))
            .and_then(Value::as_str),
    ) {
        (202, _) => "IN_PROGRESS".to_owned(),
        (200, Some(s)) => s.to_owned(),
        _ => "UNKNOWN".to_owned(),
    };
    let document_id = answered
        .and_then(|c| c.get("documentId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let request = OutboundRequest {
        message_id: message_id.clone(),
        provider_bpn: partner.bpn.clone(),
        certified_bpn: content.certified_bpn.clone().unwrap_or_default(),
        certificate_type: content.certificate_type.clone().unwrap_or_default(),
        location_bpns: content.location_bpns.clone(),
        provider_status: answer.status,
        status,
        document_id: document_id.clone(),
        answer: answered.cloned(),
        sent_at: check::now_timestamp(),
    };
    store::put(
        &OutboundRequest::key(&check::message_key(&message_id)),
        &request,
    )?;
    let pulled = match (&document_id, input.pull && request.status == "COMPLETED") {
        (Some(doc), true) => pull(c, s, &partner, &PullTarget::Document(doc.clone()))?
            .into_iter()
            .next(),
        _ => None,
    };
    Ok((RequestSent { request, pulled }, answer))
}
