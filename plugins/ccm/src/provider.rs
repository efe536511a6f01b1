//! The Certificate Provider (ccm.md §7, §9.1–§9.2): the idempotent bootstrap, certificate
//! CRUD, publish and unpublish, serving a pull, answering `request` messages, tracking shares
//! from `status` feedback, and sending `push` and `available` messages.

use serde::Serialize;
use serde_json::{Value, json};
use time::Date;
use weft_sdk::{Error, Result};

use crate::config::Settings;
use crate::edc::{self, Connector, Outcome, Partner};
use crate::message::{
    ErrorMessage, Header, Kind, LocationErrors, RequestContent, RequestOutcome, ValidHeader,
    ValidStatus,
};
use crate::model::{BusinessPartnerCertificate, PDF_CONTENT_TYPE};
use crate::notify::{self, PartnerAnswer};
use crate::shares::{self, ShareState, Transition};
use crate::store::{
    self, CertRecord, InboundRequest, OfferRecord, PdfInfo, SentMessage, ShareEvent, ShareRecord,
};
use crate::{check, pdf, policy, vocab};

/// One resource the bootstrap made sure of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ensured {
    pub kind: &'static str,
    pub id: String,
    pub outcome: Outcome,
}

/// What the bootstrap did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapReport {
    pub bpnl: String,
    pub at: String,
    pub resources: Vec<Ensured>,
}

/// Does the existing resource already carry what `wanted` asks for?
fn matches(kind: &str, existing: &Value, wanted: &Value) -> bool {
    match kind {
        "policydefinitions" => edc::field(existing, "policy") == wanted.get("policy"),
        "assets" => {
            let Some(props) = edc::field(existing, "properties").and_then(Value::as_object) else {
                return false;
            };
            wanted["properties"]
                .as_object()
                .is_some_and(|w| w.iter().all(|(k, v)| props.get(k) == Some(v)))
        }
        _ => ["accessPolicyId", "contractPolicyId"].iter().all(|f| {
            edc::field_str(existing, f) == wanted.get(*f).and_then(Value::as_str).map(str::to_owned)
        }),
    }
}

/// Creates `body` under `kind`; when it exists with other content, replaces it.
fn ensure(c: &dyn Connector, kind: &'static str, body: &Value) -> Result<Ensured> {
    let id = body["@id"].as_str().unwrap_or_default().to_owned();
    let mut outcome = edc::create(c, kind, body)?;
    if outcome == Outcome::Exists {
        let existing = edc::get_json(c, &format!("{kind}/{id}"))?;
        if !matches(kind, &existing, body) {
            let path = if kind == "policydefinitions" {
                format!("{kind}/{id}")
            } else {
                kind.to_owned()
            };
            edc::put(c, &path, body)?;
            outcome = Outcome::Updated;
        }
    }
    Ok(Ensured { kind, id, outcome })
}

/// Tenant enable (§9.1): the two policies, the CCMAPI asset (§4.1) and its contract
/// definition. Idempotent: a second run reports every resource as `exists`.
pub fn bootstrap(c: &dyn Connector, s: &Settings) -> Result<BootstrapReport> {
    let resources = vec![
        ensure(
            c,
            "policydefinitions",
            &policy::policy_definition(
                vocab::ACCESS_POLICY_ID,
                policy::access_policy(&s.access_bpns),
            ),
        )?,
        ensure(
            c,
            "policydefinitions",
            &policy::policy_definition(vocab::USAGE_POLICY_ID, policy::usage_policy()),
        )?,
        ensure(c, "assets", &policy::ccmapi_asset())?,
        ensure(
            c,
            "contractdefinitions",
            &policy::contract_definition(
                vocab::CCMAPI_CONTRACT_DEFINITION_ID,
                vocab::CCMAPI_ASSET_ID,
            ),
        )?,
    ];
    let report = BootstrapReport {
        bpnl: s.bpnl.clone(),
        at: check::now_timestamp(),
        resources,
    };
    store::put("bootstrap", &report)?;
    Ok(report)
}

fn invalid(errors: Vec<String>) -> Error {
    Error::Invalid(errors.join("; "))
}

/// Fills what a provider may leave out of an upload: its own BPNL, a document id, the
/// creation date and the content type.
fn fill_defaults(s: &Settings, c: &mut BusinessPartnerCertificate, previous: Option<&CertRecord>) {
    if c.business_partner_number.trim().is_empty() {
        c.business_partner_number = s.bpnl.clone();
    }
    let doc = &mut c.document;
    if doc.document_id.trim().is_empty() {
        doc.document_id = previous
            .map(|p| p.certificate.document.document_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    }
    if doc.creation_date.trim().is_empty() {
        doc.creation_date = check::now_timestamp();
    }
    if doc.content_type.trim().is_empty() {
        doc.content_type = PDF_CONTENT_TYPE.to_owned();
    }
}

/// Loads a certificate; [`Error::NotFound`] when unknown.
pub fn load(id: &str) -> Result<CertRecord> {
    store::get(&CertRecord::key(id))?
        .ok_or_else(|| Error::NotFound(format!("certificate {id} does not exist")))
}

/// Uploads a certificate (BusinessPartnerCertificate 3.1.0 with `document.contentBase64`).
pub fn create(s: &Settings, mut input: BusinessPartnerCertificate) -> Result<CertRecord> {
    fill_defaults(s, &mut input, None);
    let errors = input.validate(true);
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let content = input.document.content_base64.take().unwrap_or_default();
    let pdf = pdf::decode(&content, s.max_pdf_bytes)?;
    drop(content);
    let id = uuid::Uuid::new_v4().to_string();
    let chunks = store::put_chunks(&CertRecord::pdf_prefix(&id), &pdf.bytes, 0)?;
    let now = check::now_timestamp();
    let record = CertRecord {
        id: id.clone(),
        certificate: input,
        pdf: PdfInfo {
            sha256: pdf.sha256,
            size: pdf.bytes.len(),
            chunks,
        },
        asset_id: None,
        contract_definition_id: None,
        published_at: None,
        created_at: now.clone(),
        updated_at: now,
    };
    store::put(&CertRecord::key(&id), &record)?;
    Ok(record)
}

/// Replaces a certificate's data; without `contentBase64` the stored PDF stays. A published
/// certificate's asset is updated when its type or sites change.
pub fn replace(
    c: &dyn Connector,
    s: &Settings,
    id: &str,
    mut input: BusinessPartnerCertificate,
) -> Result<CertRecord> {
    let mut record = load(id)?;
    fill_defaults(s, &mut input, Some(&record));
    let errors = input.validate(false);
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    if let Some(content) = input.document.content_base64.take() {
        let pdf = pdf::decode(&content, s.max_pdf_bytes)?;
        let chunks = store::put_chunks(&CertRecord::pdf_prefix(id), &pdf.bytes, record.pdf.chunks)?;
        record.pdf = PdfInfo {
            sha256: pdf.sha256,
            size: pdf.bytes.len(),
            chunks,
        };
    }
    let asset_changed = record.certificate.certificate_type != input.certificate_type
        || record.certificate.site_bpns() != input.site_bpns();
    record.certificate = input;
    record.updated_at = check::now_timestamp();
    if let Some(asset_id) = &record.asset_id
        && asset_changed
    {
        edc::put(
            c,
            "assets",
            &policy::certificate_asset(
                asset_id,
                &record.certificate.certificate_type.certificate_type,
                &record.certificate.site_bpns(),
            ),
        )?;
    }
    store::put(&CertRecord::key(id), &record)?;
    Ok(record)
}

/// Deletes a certificate: unpublishes it, then drops its PDF and shares.
pub fn remove(c: &dyn Connector, id: &str) -> Result<()> {
    let record = load(id)?;
    if record.asset_id.is_some() {
        unpublish(c, id)?;
    }
    for (key, _) in store::list::<ShareRecord>(&format!("share/{}/", store::part(id)))? {
        store::delete(&key)?;
    }
    store::delete_chunks(&CertRecord::pdf_prefix(id), record.pdf.chunks)?;
    store::delete(&CertRecord::key(id))?;
    Ok(())
}

/// The certificate with its PDF as `document.contentBase64`: the pull payload.
pub fn full_certificate(record: &CertRecord) -> Result<BusinessPartnerCertificate> {
    let bytes = store::get_chunks(
        &CertRecord::pdf_prefix(&record.id),
        record.pdf.chunks,
        record.pdf.size,
    )?;
    let mut c = record.certificate.clone();
    c.document.content_base64 = Some(pdf::encode(&bytes));
    Ok(c)
}

/// The stored PDF bytes.
pub fn document(record: &CertRecord) -> Result<Vec<u8>> {
    store::get_chunks(
        &CertRecord::pdf_prefix(&record.id),
        record.pdf.chunks,
        record.pdf.size,
    )
}

/// Publishes a certificate (§4.2): a new asset whose `@id` (a new UUID) is the `documentId`
/// of CCM messages, and its contract definition. Publishing a published certificate changes
/// nothing. Returns the record and whether it was published now.
pub fn publish(c: &dyn Connector, id: &str) -> Result<(CertRecord, bool)> {
    let mut record = load(id)?;
    if record.asset_id.is_some() {
        return Ok((record, false));
    }
    let asset_id = uuid::Uuid::new_v4().to_string();
    let asset = policy::certificate_asset(
        &asset_id,
        &record.certificate.certificate_type.certificate_type,
        &record.certificate.site_bpns(),
    );
    if edc::create(c, "assets", &asset)? == Outcome::Exists {
        return Err(Error::Conflict(format!("asset {asset_id} exists already")));
    }
    let cd_id = format!(
        "{}{asset_id}",
        vocab::CERTIFICATE_CONTRACT_DEFINITION_PREFIX
    );
    if let Err(e) = edc::create(
        c,
        "contractdefinitions",
        &policy::contract_definition(&cd_id, &asset_id),
    ) {
        if let Err(cleanup) = edc::delete(c, &format!("assets/{asset_id}")) {
            weft_sdk::warn!("removing a half-published asset failed"; asset = asset_id, error = cleanup);
        }
        return Err(e);
    }
    let now = check::now_timestamp();
    store::put(
        &OfferRecord::key(&asset_id),
        &OfferRecord {
            asset_id: asset_id.clone(),
            certificate_id: id.to_owned(),
            access_policy_id: vocab::ACCESS_POLICY_ID.to_owned(),
            contract_policy_id: vocab::USAGE_POLICY_ID.to_owned(),
            contract_definition_id: cd_id.clone(),
            published_at: now.clone(),
        },
    )?;
    record.asset_id = Some(asset_id);
    record.contract_definition_id = Some(cd_id);
    record.published_at = Some(now.clone());
    record.updated_at = now;
    store::put(&CertRecord::key(id), &record)?;
    Ok((record, true))
}

/// What an unpublish did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unpublished {
    pub certificate_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    pub contract_definition_deleted: bool,
    /// False when the connector keeps the asset because agreements reference it; it is no
    /// longer offered and no longer served.
    pub asset_deleted: bool,
}

/// Unpublishes: deletes the contract definition, then the asset (ccm.md §9.1). Serving stops
/// at once. Unpublishing an unpublished certificate changes nothing.
pub fn unpublish(c: &dyn Connector, id: &str) -> Result<Unpublished> {
    let mut record = load(id)?;
    let Some(asset_id) = record.asset_id.clone() else {
        return Ok(Unpublished {
            certificate_id: id.to_owned(),
            asset_id: None,
            contract_definition_deleted: false,
            asset_deleted: false,
        });
    };
    let cd_deleted = match &record.contract_definition_id {
        Some(cd) => edc::delete(c, &format!("contractdefinitions/{cd}"))?,
        None => false,
    };
    let asset_deleted = match edc::delete(c, &format!("assets/{asset_id}")) {
        Ok(existed) => existed,
        Err(Error::Conflict(reason)) => {
            weft_sdk::info!("asset kept: agreements reference it"; asset = asset_id, reason = reason);
            false
        }
        Err(e) => return Err(e),
    };
    store::delete(&OfferRecord::key(&asset_id))?;
    record.asset_id = None;
    record.contract_definition_id = None;
    record.published_at = None;
    record.updated_at = check::now_timestamp();
    store::put(&CertRecord::key(id), &record)?;
    Ok(Unpublished {
        certificate_id: id.to_owned(),
        asset_id: Some(asset_id),
        contract_definition_deleted: cd_deleted,
        asset_deleted,
    })
}

/// The certificate a published asset id serves, if it is still published.
pub fn published_certificate(asset_id: &str) -> Result<Option<CertRecord>> {
    let Some(offer) = store::get::<OfferRecord>(&OfferRecord::key(asset_id))? else {
        return Ok(None);
    };
    let record = store::get::<CertRecord>(&CertRecord::key(&offer.certificate_id))?;
    Ok(record.filter(|r| r.asset_id.as_deref() == Some(asset_id)))
}

/// Marks a certificate as offered to `consumer_bpn` (a new share starts Offered; a Revoked one
/// re-opens).
pub fn offer_share(
    cert_id: &str,
    consumer_bpn: &str,
    document_id: Option<&str>,
    cause: &str,
) -> Result<()> {
    let key = ShareRecord::key(cert_id, consumer_bpn);
    let current: Option<ShareRecord> = store::get(&key)?;
    let Some(to) = shares::offer(current.as_ref().map(|s| s.state)) else {
        return Ok(());
    };
    let now = check::now_timestamp();
    let from = current.as_ref().map(|s| s.state);
    let mut share = current.unwrap_or_else(|| ShareRecord {
        certificate_id: cert_id.to_owned(),
        consumer_bpn: consumer_bpn.to_owned(),
        state: to,
        document_id: None,
        location_bpns: Vec::new(),
        certificate_errors: Vec::new(),
        location_errors: Vec::new(),
        last_message_id: None,
        history: Vec::new(),
        updated_at: now.clone(),
    });
    share.state = to;
    if let Some(d) = document_id {
        share.document_id = Some(d.to_owned());
    }
    share.record(ShareEvent {
        at: now,
        cause: cause.to_owned(),
        from,
        to,
        message_id: None,
    });
    store::put(&key, &share)
}

/// Decides a `request` (ccm.md §9.2) against the provider's certificates:
/// - REJECTED when no certificate of the type exists for `certifiedBpn`, when all of them
///   have expired, or when none covers any requested location (with per-location errors);
/// - COMPLETED with the asset id when a covering one is published (the one covering most
///   locations, then the longest valid);
/// - IN_PROGRESS (202) when a covering one exists but is not published.
///
/// Returns the outcome and the matched certificate id.
pub fn evaluate_request(
    certs: &[CertRecord],
    certified_bpn: &str,
    type_code: &str,
    locations: &[String],
    today: Date,
) -> (RequestOutcome, Option<String>) {
    let rejected =
        |errors: Vec<String>, location_errors: Vec<LocationErrors>| RequestOutcome::Rejected {
            request_errors: errors,
            location_errors,
        };
    let same: Vec<&CertRecord> = certs
        .iter()
        .filter(|c| {
            c.certificate.business_partner_number == certified_bpn
                && c.certificate.certificate_type.certificate_type == type_code
        })
        .collect();
    if same.is_empty() {
        return (
            rejected(
                vec![format!(
                    "no {type_code} certificate exists for {certified_bpn}"
                )],
                vec![],
            ),
            None,
        );
    }
    let valid: Vec<&CertRecord> = same
        .iter()
        .copied()
        .filter(|c| check::parse_date(&c.certificate.valid_until).is_some_and(|u| u >= today))
        .collect();
    if valid.is_empty() {
        let last = same
            .iter()
            .map(|c| c.certificate.valid_until.as_str())
            .max()
            .unwrap_or_default();
        return (
            rejected(
                vec![format!(
                    "the {type_code} certificate of {certified_bpn} expired on {last}"
                )],
                vec![],
            ),
            None,
        );
    }
    let coverage = |c: &CertRecord| locations.iter().filter(|l| c.certificate.covers(l)).count();
    let covering: Vec<&CertRecord> = valid
        .iter()
        .copied()
        .filter(|c| locations.is_empty() || coverage(c) > 0)
        .collect();
    if covering.is_empty() {
        let location_errors = locations
            .iter()
            .map(|l| LocationErrors {
                bpn: l.clone(),
                location_errors: vec![ErrorMessage {
                    message: format!(
                        "{l} is not covered by a {type_code} certificate of {certified_bpn}"
                    ),
                }],
            })
            .collect();
        return (
            rejected(
                vec![format!(
                    "no {type_code} certificate of {certified_bpn} covers the requested locations"
                )],
                location_errors,
            ),
            None,
        );
    }
    let best = |list: Vec<&CertRecord>| -> Option<String> {
        list.into_iter()
            .max_by(|a, b| {
                coverage(a)
                    .cmp(&coverage(b))
                    .then(a.certificate.valid_until.cmp(&b.certificate.valid_until))
            })
            .map(|c| c.id.clone())
    };
    let published: Vec<&CertRecord> = covering
        .iter()
        .copied()
        .filter(|c| c.asset_id.is_some())
        .collect();
    if let Some(id) = best(published) {
        let document_id = covering
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.asset_id.clone())
            .unwrap_or_default();
        return (RequestOutcome::Completed { document_id }, Some(id));
    }
    (RequestOutcome::InProgress, best(covering))
}

/// Answers a validated `request`, recording it (`inreq/`). A repeated message id updates its
/// record instead of adding one (the consumer polls).
pub fn answer_request(
    s: &Settings,
    header: &ValidHeader,
    mut content: RequestContent,
) -> Result<(u16, Option<Value>)> {
    let errors = content.validate();
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let certified = content.certified_bpn.clone().unwrap_or_default();
    let type_code = content.certificate_type.clone().unwrap_or_default();
    let certs: Vec<CertRecord> = store::list::<CertRecord>("cert/")?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let (outcome, cert_id) = evaluate_request(
        &certs,
        &certified,
        &type_code,
        &content.location_bpns,
        check::today(),
    );
    let now = check::now_timestamp();
    let key = InboundRequest::key(&check::message_key(&header.message_id));
    let received_at = store::get::<InboundRequest>(&key)?
        .map(|r| r.received_at)
        .unwrap_or_else(|| now.clone());
    let (document_id, errors) = match &outcome {
        RequestOutcome::Completed { document_id } => (Some(document_id.clone()), vec![]),
        RequestOutcome::Rejected { request_errors, .. } => (None, request_errors.clone()),
        RequestOutcome::InProgress => (None, vec![]),
    };
    store::put(
        &key,
        &InboundRequest {
            message_id: header.message_id.clone(),
            consumer_bpn: header.sender_bpn.clone(),
            certified_bpn: certified,
            certificate_type: type_code,
            location_bpns: content.location_bpns.clone(),
            status: outcome.status_name().to_owned(),
            certificate_id: cert_id.clone(),
            document_id: document_id.clone(),
            errors,
            received_at,
            answered_at: now,
        },
    )?;
    if let (Some(cert), Some(doc)) = (&cert_id, &document_id) {
        offer_share(cert, &header.sender_bpn, Some(doc), "request")?;
    }
    Ok(outcome.answer(&s.bpnl, header))
}

/// Finds the certificate a feedback's `documentId` names: the asset id (pull), else the
/// certificate's own `documentID` (push), else the push the `relatedMessageId` answers.
pub fn resolve_document(document_id: &str, related: Option<&str>) -> Result<Option<CertRecord>> {
    if let Some(c) = published_certificate(document_id)? {
        return Ok(Some(c));
    }
    let certs = store::list::<CertRecord>("cert/")?;
    if let Some((_, c)) = certs
        .iter()
        .find(|(_, c)| c.certificate.document.document_id == document_id || c.id == document_id)
    {
        return Ok(Some(c.clone()));
    }
    if let Some(r) = related {
        let sent: Option<SentMessage> = store::get(&SentMessage::key(&check::message_key(r)))?;
        if let Some(m) = sent {
            return store::get(&CertRecord::key(&m.certificate_id));
        }
    }
    Ok(None)
}

/// The result of applying feedback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusApplied {
    pub certificate_id: String,
    pub consumer_bpn: String,
    pub certificate_status: &'static str,
    pub share_state: ShareState,
    pub changed: bool,
}

/// Applies a consumer's `status` feedback to the share (ccm.md §9.2). Repeats change nothing;
/// an unknown document is [`Error::NotFound`], a move back [`Error::Conflict`].
pub fn apply_status(header: &ValidHeader, status: &ValidStatus) -> Result<StatusApplied> {
    let cert = resolve_document(&status.document_id, header.related_message_id.as_deref())?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "documentId {} names no certificate of this provider",
                status.document_id
            ))
        })?;
    let key = ShareRecord::key(&cert.id, &header.sender_bpn);
    let current: Option<ShareRecord> = store::get(&key)?;
    let transition = shares::apply(current.as_ref().map(|s| s.state), status.status)
        .map_err(|e| Error::Conflict(format!("feedback refused: {e}")))?;
    let applied = |state, changed| StatusApplied {
        certificate_id: cert.id.clone(),
        consumer_bpn: header.sender_bpn.clone(),
        certificate_status: status.status.as_str(),
        share_state: state,
        changed,
    };
    let (from, to) = match transition {
        Transition::Unchanged(state) => return Ok(applied(state, false)),
        Transition::Moved { from, to } => (from, to),
    };
    let now = check::now_timestamp();
    let mut share = current.unwrap_or_else(|| ShareRecord {
        certificate_id: cert.id.clone(),
        consumer_bpn: header.sender_bpn.clone(),
        state: to,
        document_id: None,
        location_bpns: Vec::new(),
        certificate_errors: Vec::new(),
        location_errors: Vec::new(),
        last_message_id: None,
        history: Vec::new(),
        updated_at: now.clone(),
    });
    share.state = to;
    share.document_id = Some(status.document_id.clone());
    share.location_bpns = status.location_bpns.clone();
    if to == ShareState::Revoked {
        share.certificate_errors = status.certificate_errors.clone();
        share.location_errors = status.location_errors.clone();
    } else {
        share.certificate_errors.clear();
        share.location_errors.clear();
    }
    share.last_message_id = Some(header.message_id.clone());
    share.record(ShareEvent {
        at: now,
        cause: status.status.as_str().to_owned(),
        from,
        to,
        message_id: Some(header.message_id.clone()),
    });
    store::put(&key, &share)?;
    Ok(applied(to, true))
}

/// Sends a certificate to a consumer (`push`, full content) or announces it (`available`,
/// published certificates only), records the message and offers the share.
pub fn send_to_consumer(
    c: &dyn Connector,
    s: &Settings,
    cert_id: &str,
    partner: &Partner,
    kind: Kind,
) -> Result<(SentMessage, PartnerAnswer)> {
    let record = load(cert_id)?;
    let feedback_url = s.feedback_url()?.to_owned();
    let header = Header::new(kind, &s.bpnl, &partner.bpn, None, Some(&feedback_url));
    let content = match kind {
        Kind::Push => serde_json::to_value(full_certificate(&record)?)
            .map_err(|e| Error::Internal(format!("serializing a certificate: {e}")))?,
        Kind::Available => {
            let asset_id = record.asset_id.clone().ok_or_else(|| {
                Error::Conflict(format!(
                    "certificate {cert_id} is not published: publish it before announcing it"
                ))
            })?;
            json!({
                "documentId": asset_id,
                "certificateType": record.certificate.certificate_type.certificate_type,
                "locationBpns": record.certificate.site_bpns(),
            })
        }
        _ => {
            return Err(Error::Internal(format!(
                "{} is not a provider message",
                kind.name()
            )));
        }
    };
    let message_id = header.message_id.clone().unwrap_or_default();
    let envelope = json!({"header": header, "content": content});
    let answer = notify::send_message(c, s, partner, kind, &envelope)?;
    let sent = SentMessage {
        message_id: message_id.clone(),
        kind,
        receiver_bpn: partner.bpn.clone(),
        certificate_id: cert_id.to_owned(),
        document_id: match kind {
            Kind::Available => record.asset_id.clone(),
            _ => Some(record.certificate.document.document_id.clone()),
        },
        partner_status: answer.status,
        sent_at: check::now_timestamp(),
    };
    store::put(&SentMessage::key(&check::message_key(&message_id)), &sent)?;
    if answer.accepted() {
        offer_share(
            cert_id,
            &partner.bpn,
            sent.document_id.as_deref(),
            kind.name(),
        )?;
    }
    Ok((sent, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(
        id: &str,
        bpn: &str,
        code: &str,
        sites: &[&str],
        until: &str,
        asset: Option<&str>,
    ) -> CertRecord {
        let mut c: BusinessPartnerCertificate =
            serde_json::from_value(crate::model::tests::sample_json()).unwrap();
        c.business_partner_number = bpn.into();
        c.certificate_type.certificate_type = code.into();
        c.enclosed_sites = sites
            .iter()
            .map(|s| crate::model::EnclosedSite {
                enclosed_site_bpn: (*s).into(),
                area_of_application: None,
            })
            .collect();
        c.valid_until = until.into();
        CertRecord {
            id: id.into(),
            certificate: c.without_content(),
            pdf: PdfInfo::default(),
            asset_id: asset.map(str::to_owned),
            contract_definition_id: None,
            published_at: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    const S: &str = "BPNL0000000001AB";
    const SITE1: &str = "BPNS000000000001";
    const SITE2: &str = "BPNA000000000002";

    fn today() -> Date {
        check::parse_date("2025-06-01").unwrap()
    }

    #[test]
    fn requests_are_rejected_when_nothing_matches() {
        let certs = vec![cert("c1", S, "iso9001", &[SITE1], "2026-01-01", Some("a1"))];
        let (o, id) = evaluate_request(&certs, S, "iatf16949", &[], today());
        assert!(
            matches!(&o, RequestOutcome::Rejected { request_errors, .. } if request_errors[0].contains("no iatf16949 certificate"))
        );
        assert_eq!(id, None);
        let (o, _) = evaluate_request(&certs, "BPNL0000000009ZZ", "iso9001", &[], today());
        assert_eq!(o.status_name(), "REJECTED");
        let (o, _) = evaluate_request(
            &certs,
            S,
            "iso9001",
            &[],
            check::parse_date("2027-01-01").unwrap(),
        );
        assert!(
            matches!(&o, RequestOutcome::Rejected { request_errors, .. } if request_errors[0].contains("expired on 2026-01-01"))
        );
        let (o, _) = evaluate_request(&certs, S, "iso9001", &["BPNS000000000099".into()], today());
        match o {
            RequestOutcome::Rejected {
                location_errors, ..
            } => {
                assert_eq!(location_errors[0].bpn, "BPNS000000000099");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_answer_202_when_unpublished_and_completed_when_published() {
        let unpublished = vec![cert("c1", S, "iatf16949", &[SITE1], "9999-12-31", None)];
        let (o, id) = evaluate_request(&unpublished, S, "iatf16949", &[SITE1.into()], today());
        assert_eq!((o, id.as_deref()), (RequestOutcome::InProgress, Some("c1")));

        let certs = vec![
            cert("c1", S, "iso9001", &[SITE1], "2030-01-01", Some("a1")),
            cert(
                "c2",
                S,
                "iso9001",
                &[SITE1, SITE2],
                "2029-01-01",
                Some("a2"),
            ),
            cert("c3", S, "iso9001", &[SITE1, SITE2], "2031-01-01", None),
        ];
        // Covering at least one location is enough; the best published one wins.
        let (o, id) = evaluate_request(
            &certs,
            S,
            "iso9001",
            &[SITE2.into(), "BPNS000000000077".into()],
            today(),
        );
        assert_eq!(
            o,
            RequestOutcome::Completed {
                document_id: "a2".into()
            }
        );
        assert_eq!(id.as_deref(), Some("c2"));
        let (o, _) = evaluate_request(&certs, S, "iso9001", &[], today());
        assert_eq!(
            o,
            RequestOutcome::Completed {
                document_id: "a1".into()
            }
        );
    }
}
