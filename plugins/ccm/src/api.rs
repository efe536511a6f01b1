//! The tenant API (`/tenants/{ctx}/apps/ccm/...`): what a supplier's or an OEM's systems call.
//!
//! | Route | Does |
//! |---|---|
//! | `GET /status` | the tenant's BPNL, the last bootstrap, counts |
//! | `POST /bootstrap` | re-runs the enable bootstrap (idempotent) |
//! | `POST /certificates` | upload a BusinessPartnerCertificate 3.1.0 with `document.contentBase64` → 201 |
//! | `GET /certificates`, `GET/PUT/DELETE /certificates/{id}` | read, replace (PDF optional), delete |
//! | `GET /certificates/{id}/document` | the stored PDF |
//! | `POST /certificates/{id}/publish`, `/unpublish` | offer it as a §4.2 asset, or stop |
//! | `POST /certificates/{id}/push`, `/available` | `{receiverBpn, dspAddress?, did?}`: send it, or announce it |
//! | `GET /shares[?certificateId=]` | shares and their state (Offered, Pending, Active, Revoked) |
//! | `GET /inbound-requests` | `request` messages received and their answers |
//! | `POST /pull` | `{providerBpn, documentId}` or `{providerBpn, certificateType, enclosedSites?}` |
//! | `GET /received`, `GET /received/{providerBpn}/{documentId}[/document]` | received certificates |
//! | `POST /feedback` | `{providerBpn, documentId, status, locationBpns?, certificateErrors?, locationErrors?}` |
//! | `POST /requests`, `GET /requests` | send a `request` (`{providerBpn, certificateType, ...}`), list them |
//! | `GET /notices` | `available` notices and their automatic pulls |
//!
//! Every partner call takes an optional `dspAddress` + `did` override of the configured
//! partner. When a partner refuses a message (non-2xx), the answer is 502 with the partner's
//! status and body.

use std::rc::Rc;

use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::http::{Params, Request, Response, Router};
use weft_sdk::{Error, Result};

use crate::config::Settings;
use crate::consumer::{self, FeedbackInput, PullTarget, RequestInput, explicit_partner};
use crate::edc::{self, Connector};
use crate::message::Kind;
use crate::model::BusinessPartnerCertificate;
use crate::notify::PartnerAnswer;
use crate::provider;
use crate::store::{
    self, CertRecord, InboundRequest, Notice, OutboundRequest, ReceivedRecord, ShareRecord,
};
use crate::{check, pdf};

/// `POST /pull` input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PullInput {
    provider_bpn: String,
    #[serde(default)]
    document_id: Option<String>,
    #[serde(default)]
    certificate_type: Option<String>,
    #[serde(default)]
    enclosed_sites: Vec<String>,
    #[serde(default)]
    dsp_address: Option<String>,
    #[serde(default)]
    did: Option<String>,
}

/// `POST /certificates/{id}/push|available` input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendInput {
    receiver_bpn: String,
    #[serde(default)]
    dsp_address: Option<String>,
    #[serde(default)]
    did: Option<String>,
}

/// Largest upload: the PDF ceiling as base64 plus the JSON around it.
fn upload_limit() -> usize {
    consumer::certificate_json_limit(pdf::MAX_PDF_BYTES_CEILING)
}

fn partner_refused(answer: &PartnerAnswer, what: &str) -> Response {
    Response::json(
        502,
        &json!({
            "error": "partner-refused",
            "message": format!("the partner answered {} to the {what}", answer.status),
            "partnerStatus": answer.status,
            "partnerAnswer": answer.body,
        }),
    )
}

fn list_values<T: serde::de::DeserializeOwned + serde::Serialize>(
    prefix: &str,
) -> Result<Response> {
    let items: Vec<T> = store::list::<T>(prefix)?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    Ok(Response::json(200, &items))
}

fn pdf_response(bytes: Vec<u8>) -> Response {
    Response::bytes(200, bytes).with_header("content-type", "application/pdf")
}

fn id(params: &Params) -> Result<String> {
    params.require("id").map(str::to_owned)
}

/// The tenant API router, doing its I/O through `c`.
pub fn router(c: Rc<dyn Connector>) -> Router {
    let c1 = c.clone();
    let c2 = c.clone();
    let c3 = c.clone();
    let c4 = c.clone();
    let c5 = c.clone();
    let c6 = c.clone();
    let c7 = c.clone();
    let c8 = c.clone();
    let c9 = c.clone();
    let c10 = c;
    Router::new()
        .get("/status", |_, _| status())
        .post("/bootstrap", move |_, _| {
            let s = Settings::load()?;
            Ok(Response::json(200, &provider::bootstrap(&*c1, &s)?))
        })
        .post("/certificates", |mut req, _| {
            let s = Settings::load()?;
            let input: BusinessPartnerCertificate = req.json_limited(upload_limit())?;
            Ok(Response::json(201, &provider::create(&s, input)?))
        })
        .get("/certificates", |_, _| list_values::<CertRecord>("cert/"))
        .get("/certificates/{id}", |_, p| {
            Ok(Response::json(200, &provider::load(&id(&p)?)?))
        })
        .put("/certificates/{id}", move |mut req, p| {
            let s = Settings::load()?;
            let input: BusinessPartnerCertificate = req.json_limited(upload_limit())?;
            Ok(Response::json(
                200,
                &provider::replace(&*c2, &s, &id(&p)?, input)?,
            ))
        })
        .delete("/certificates/{id}", move |_, p| {
            provider::remove(&*c3, &id(&p)?)?;
            Ok(Response::new(204))
        })
        .get("/certificates/{id}/document", |_, p| {
            Ok(pdf_response(provider::document(&provider::load(&id(
                &p,
            )?)?)?))
        })
        .post("/certificates/{id}/publish", move |_, p| {
            let (record, now) = provider::publish(&*c4, &id(&p)?)?;
            Ok(Response::json(if now { 201 } else { 200 }, &record))
        })
        .post("/certificates/{id}/unpublish", move |_, p| {
            Ok(Response::json(200, &provider::unpublish(&*c5, &id(&p)?)?))
        })
        .post("/certificates/{id}/push", move |req, p| {
            send_to_consumer(&*c6, req, &id(&p)?, Kind::Push)
        })
        .post("/certificates/{id}/available", move |req, p| {
            send_to_consumer(&*c7, req, &id(&p)?, Kind::Available)
        })
        .get("/shares", |req, _| {
            let prefix = match req.query("certificateId") {
                Some(cert) => format!("share/{}/", store::part(&cert)),
                None => "share/".to_owned(),
            };
            list_values::<ShareRecord>(&prefix)
        })
        .get("/inbound-requests", |_, _| {
            list_values::<InboundRequest>("inreq/")
        })
        .post("/pull", move |req, _| pull(&*c8, req))
        .get("/received", |_, _| list_values::<ReceivedRecord>("recv/"))
        .get("/received/{provider}/{document}", |_, p| {
            Ok(Response::json(200, &received(&p)?))
        })
        .get("/received/{provider}/{document}/document", |_, p| {
            Ok(pdf_response(consumer::received_document(&received(&p)?)?))
        })
        .post("/feedback", move |mut req, _| {
            let s = Settings::load()?;
            let input: FeedbackInput = req.json()?;
            let sent = consumer::send_feedback(&*c9, &s, input)?;
            if !sent.partner.accepted() {
                return Ok(partner_refused(&sent.partner, "feedback"));
            }
            Ok(Response::json(200, &sent))
        })
        .post("/requests", move |mut req, _| {
            let s = Settings::load()?;
            let input: RequestInput = req.json()?;
            let (sent, answer) = consumer::send_request(&*c10, &s, input)?;
            if !answer.accepted() {
                return Ok(partner_refused(&answer, "request"));
            }
            Ok(Response::json(200, &sent))
        })
        .get("/requests", |_, _| {
            list_values::<OutboundRequest>("outreq/")
        })
        .get("/notices", |_, _| list_values::<Notice>("notice/"))
}

fn status() -> Result<Response> {
    let s = Settings::load()?;
    let bootstrap: Option<Value> = store::get("bootstrap")?;
    let count = |prefix: &str| -> Result<usize> { Ok(store::list::<Value>(prefix)?.len()) };
    Ok(Response::json(
        200,
        &json!({
            "bpnl": s.bpnl,
            "dspAddress": s.dsp_address,
            "bootstrap": bootstrap,
            "certificates": count("cert/")?,
            "published": count("offer/")?,
            "shares": count("share/")?,
            "received": count("recv/")?,
            "inboundRequests": count("inreq/")?,
            "outboundRequests": count("outreq/")?,
        }),
    ))
}

fn received(p: &Params) -> Result<ReceivedRecord> {
    let provider = p.require("provider")?;
    let document = p.require("document")?;
    consumer::find_received(provider, document)?.ok_or_else(|| {
        Error::NotFound(format!(
            "no certificate {document} received from {provider}"
        ))
    })
}

fn send_to_consumer(
    c: &dyn Connector,
    mut req: Request,
    cert_id: &str,
    kind: Kind,
) -> Result<Response> {
    let s = Settings::load()?;
    let input: SendInput = req.json()?;
    let partner = edc::partner(
        &s,
        &input.receiver_bpn,
        explicit_partner(&input.dsp_address, &input.did)?,
    )?;
    let (sent, answer) = provider::send_to_consumer(c, &s, cert_id, &partner, kind)?;
    if !answer.accepted() {
        return Ok(partner_refused(&answer, kind.name()));
    }
    Ok(Response::json(
        200,
        &json!({"message": sent, "partner": answer}),
    ))
}

fn pull(c: &dyn Connector, mut req: Request) -> Result<Response> {
    let s = Settings::load()?;
    let input: PullInput = req.json()?;
    let partner = edc::partner(
        &s,
        &input.provider_bpn,
        explicit_partner(&input.dsp_address, &input.did)?,
    )?;
    let target = match (input.document_id, input.certificate_type) {
        (Some(doc), None) if !doc.trim().is_empty() => PullTarget::Document(doc.trim().to_owned()),
        (None, Some(t)) => {
            let certificate_type = check::normalize_type_code(&t).map_err(Error::Invalid)?;
            if let Some(bad) = input
                .enclosed_sites
                .iter()
                .find(|b| !check::is_location_bpn(b))
            {
                return Err(Error::Invalid(format!(
                    "enclosedSites: `{bad}` is not a BPNS or BPNA"
                )));
            }
            PullTarget::Filter {
                certificate_type,
                sites: input.enclosed_sites,
            }
        }
        _ => {
            return Err(Error::Invalid(
                "give either documentId, or certificateType (with optional enclosedSites)"
                    .to_owned(),
            ));
        }
    };
    let received = consumer::pull(c, &s, &partner, &target)?;
    Ok(Response::json(200, &json!({"received": received})))
}
