//! The data entry: requests arriving on a flow this plugin accepted. A certificate flow is
//! answered with the certificate JSON; the CCMAPI flow takes the four notifications
//! (`POST …/companycertificate/{request,push,status,available}`).
//!
//! Answers follow CX-0135 §2: business outcomes are 200 (a REJECTED request too), a request
//! whose match is unpublished is 202 without a body, malformed messages are 400, a feedback
//! that would move a share back is 409 (the reference app's choice) and an unknown document
//! 404. Partners see every 4xx/5xx as 500 through an EDC data plane.

use serde::de::DeserializeOwned;
use serde_json::json;
use weft_sdk::http::{Method, Request, Response};
use weft_sdk::{Error, Result};

use crate::config::Settings;
use crate::consumer::{self, certificate_json_limit};
use crate::edc::Connector;
use crate::message::{
    AvailableContent, Envelope, Kind, RequestContent, StatusContent, ValidHeader, validate_header,
};
use crate::model::BusinessPartnerCertificate;
use crate::store::{self, CertRecord, FlowKind, FlowRecord, SeenMessage};
use crate::{check, provider};

/// Largest request, status or available message: a header and a short content.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A 400 naming every problem of a message.
pub fn invalid_message(errors: &[String]) -> Response {
    Response::json(
        400,
        &json!({"error": "invalid", "message": errors.join("; "), "errors": errors}),
    )
}

/// Answers a data request of flow `flow_id`.
pub fn handle(c: &dyn Connector, flow_id: &str, request: Request) -> Response {
    let flow = match store::get::<FlowRecord>(&FlowRecord::key(flow_id)) {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Response::error(&Error::NotFound(format!(
                "flow {flow_id} serves nothing here"
            )));
        }
        Err(e) => return Response::error(&e),
    };
    let result = match &flow.serves {
        FlowKind::Certificate { certificate_id } => serve(&flow, certificate_id, &request),
        FlowKind::NotificationApi => match (request.method(), Kind::from_path(request.path())) {
            (Method::Post, Some(kind)) => Ok(notification(c, &flow, kind, request)),
            (Method::Post, None) => Err(Error::NotFound(format!(
                "{} is no CCM endpoint (POST /companycertificate/request, push, status or available)",
                request.path()
            ))),
            _ => Ok(method_not_allowed("POST")),
        },
        FlowKind::Consumer => Err(Error::NotFound(
            "a consumer pull flow takes no data requests".to_owned(),
        )),
    };
    result.unwrap_or_else(|e| Response::error(&e))
}

fn method_not_allowed(allow: &str) -> Response {
    Response::json(
        405,
        &json!({"error": "method-not-allowed", "message": format!("use {allow}")}),
    )
    .with_header("allow", allow)
}

/// Serves a certificate pull: the BusinessPartnerCertificate JSON with the base64 PDF, while
/// the certificate is published; records the share as offered to the puller.
fn serve(flow: &FlowRecord, certificate_id: &str, request: &Request) -> Result<Response> {
    if !matches!(request.method(), Method::Get) {
        return Ok(method_not_allowed("GET"));
    }
    let record: Option<CertRecord> = store::get(&CertRecord::key(certificate_id))?;
    let record = record
        .filter(|r| r.asset_id.as_deref() == Some(flow.dataset_id.as_str()))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "certificate asset {} is not published",
                flow.dataset_id
            ))
        })?;
    let cert = provider::full_certificate(&record)?;
    if let Some(bpn) = &flow.counterparty_bpn {
        provider::offer_share(&record.id, bpn, Some(&flow.dataset_id), "pull")?;
    }
    Ok(Response::json(200, &cert))
}

fn parse<C: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<Envelope<C>, Response> {
    let envelope: Envelope<C> = serde_json::from_slice(bytes)
        .map_err(|e| invalid_message(&[format!("malformed message: {e}")]))?;
    if envelope.content.is_none() {
        return Err(invalid_message(&["content is required".to_owned()]));
    }
    Ok(envelope)
}

/// Header checks every notification shares: the §3.1 rules, the receiver being this tenant,
/// the sender being the counterparty the connector authenticated, messageId re-use.
fn accept_header(
    flow: &FlowRecord,
    s: &Settings,
    kind: Kind,
    header: Option<&crate::message::Header>,
) -> std::result::Result<(ValidHeader, bool), Response> {
    let header = header.ok_or_else(|| invalid_message(&["header is required".to_owned()]))?;
    let valid = validate_header(header, kind, &s.bpnl).map_err(|e| invalid_message(&e))?;
    if let Some(authenticated) = &flow.counterparty_bpn
        && authenticated != &valid.sender_bpn
    {
        return Err(Response::error(&Error::AccessDenied(format!(
            "header.senderBpn {} is not the counterparty the connector authenticated ({authenticated})",
            valid.sender_bpn
        ))));
    }
    let key = SeenMessage::key(&check::message_key(&valid.message_id));
    let duplicate = match store::get::<SeenMessage>(&key).map_err(|e| Response::error(&e))? {
        None => false,
        Some(seen) if seen.kind == kind && seen.sender_bpn == valid.sender_bpn => true,
        Some(_) => {
            return Err(Response::error(&Error::Conflict(format!(
                "messageId {} was already used by another message",
                valid.message_id
            ))));
        }
    };
    Ok((valid, duplicate))
}

fn mark_seen(header: &ValidHeader, kind: Kind) -> Result<()> {
    store::put(
        &SeenMessage::key(&check::message_key(&header.message_id)),
        &SeenMessage {
            kind,
            sender_bpn: header.sender_bpn.clone(),
            at: check::now_timestamp(),
            related_message_id: header.related_message_id.clone(),
        },
    )
}

fn notification(
    c: &dyn Connector,
    flow: &FlowRecord,
    kind: Kind,
    mut request: Request,
) -> Response {
    let s = match Settings::load() {
        Ok(s) => s,
        Err(e) => return Response::error(&Error::Internal(format!("ccm is misconfigured: {e}"))),
    };
    let limit = match kind {
        Kind::Push => certificate_json_limit(s.max_pdf_bytes),
        _ => MAX_MESSAGE_BYTES,
    };
    let bytes = match request.body().read_bytes(limit) {
        Ok(b) => b,
        Err(e) => return Response::error(&e),
    };
    let answer = match kind {
        Kind::Request => on_request(flow, &s, &bytes),
        Kind::Status => on_status(flow, &s, &bytes),
        Kind::Push => on_push(flow, &s, bytes),
        Kind::Available => on_available(c, flow, &s, &bytes),
    };
    answer.unwrap_or_else(|r| r)
}

type Answer = std::result::Result<Response, Response>;

fn err(e: Error) -> Response {
    match e {
        Error::Invalid(m) => invalid_message(&[m]),
        other => Response::error(&other),
    }
}

fn on_request(flow: &FlowRecord, s: &Settings, bytes: &[u8]) -> Answer {
    let envelope = parse::<RequestContent>(bytes)?;
    let (header, _duplicate) = accept_header(flow, s, Kind::Request, envelope.header.as_ref())?;
    // A repeated request is answered again (the consumer polls); its record is updated.
    let content = envelope.content.unwrap_or_default();
    let (status, body) = provider::answer_request(s, &header, content).map_err(err)?;
    mark_seen(&header, Kind::Request).map_err(err)?;
    Ok(match body {
        Some(b) => Response::json(status, &b),
        None => Response::new(status),
    })
}

fn on_status(flow: &FlowRecord, s: &Settings, bytes: &[u8]) -> Answer {
    let envelope = parse::<StatusContent>(bytes)?;
    let (header, duplicate) = accept_header(flow, s, Kind::Status, envelope.header.as_ref())?;
    let status = envelope
        .content
        .unwrap_or_default()
        .validate()
        .map_err(|e| invalid_message(&e))?;
    if duplicate {
        return Ok(Response::json(
            200,
            &json!({"messageId": header.message_id, "duplicate": true}),
        ));
    }
    let applied = provider::apply_status(&header, &status).map_err(err)?;
    mark_seen(&header, Kind::Status).map_err(err)?;
    Ok(Response::json(200, &applied))
}

fn on_push(flow: &FlowRecord, s: &Settings, bytes: Vec<u8>) -> Answer {
    let envelope = parse::<BusinessPartnerCertificate>(&bytes)?;
    drop(bytes);
    let (header, duplicate) = accept_header(flow, s, Kind::Push, envelope.header.as_ref())?;
    if duplicate {
        return Ok(Response::json(
            200,
            &json!({"messageId": header.message_id, "duplicate": true}),
        ));
    }
    let cert = envelope.content.unwrap_or_default();
    let (record, stored) = consumer::receive_push(s, &header, cert, flow).map_err(err)?;
    mark_seen(&header, Kind::Push).map_err(err)?;
    Ok(Response::json(
        200,
        &json!({
            "messageId": header.message_id,
            "stored": stored,
            "documentID": record.document_id,
            "sha256": record.pdf.sha256,
        }),
    ))
}

fn on_available(c: &dyn Connector, flow: &FlowRecord, s: &Settings, bytes: &[u8]) -> Answer {
    let envelope = parse::<AvailableContent>(bytes)?;
    let (header, duplicate) = accept_header(flow, s, Kind::Available, envelope.header.as_ref())?;
    if duplicate {
        return Ok(Response::json(
            200,
            &json!({"messageId": header.message_id, "duplicate": true}),
        ));
    }
    let content = envelope.content.unwrap_or_default();
    let notice = consumer::receive_available(c, s, &header, content, flow).map_err(err)?;
    mark_seen(&header, Kind::Available).map_err(err)?;
    Ok(Response::json(
        200,
        &json!({"messageId": header.message_id, "pull": notice.status}),
    ))
}
