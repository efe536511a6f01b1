//! CCM notification messages (ccm.md §2–§3.1): the four kinds, the common header and its
//! validation, the contents, and the answers of the `request` endpoint.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::check;
use crate::vocab::HEADER_VERSION;

/// The four notification kinds of v2.4.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Consumer → provider: asks for a certificate.
    Request,
    /// Provider → consumer: the certificate inline.
    Push,
    /// Consumer → provider: feedback (RECEIVED, ACCEPTED, REJECTED).
    Status,
    /// Provider → consumer: a certificate can be pulled.
    Available,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 4] = [Kind::Request, Kind::Push, Kind::Status, Kind::Available];

    /// The header `context` string of the kind.
    pub fn context(self) -> &'static str {
        match self {
            Kind::Request => "CompanyCertificateManagement-CCMAPI-Request:1.0.0",
            Kind::Push => "CompanyCertificateManagement-CCMAPI-Push:1.0.0",
            Kind::Status => "CompanyCertificateManagement-CCMAPI-Status:1.0.0",
            Kind::Available => "CompanyCertificateManagement-CCMAPI-Available:1.0.0",
        }
    }

    /// The last path segment (`/companycertificate/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Push => "push",
            Kind::Status => "status",
            Kind::Available => "available",
        }
    }

    /// The path on the partner's notification API.
    pub fn path(self) -> String {
        format!("/companycertificate/{}", self.name())
    }

    /// The kind a path names: its last two segments are `companycertificate/<name>`.
    pub fn from_path(path: &str) -> Option<Kind> {
        let mut segments = path.trim_end_matches('/').rsplit('/');
        let name = segments.next()?;
        if segments.next() != Some("companycertificate") {
            return None;
        }
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the header must carry `senderFeedbackUrl` (push, available, status).
    pub fn needs_feedback_url(self) -> bool {
        !matches!(self, Kind::Request)
    }
}

/// The common header as received: every field optional, so validation can name each
/// missing one. Unknown fields (e.g. `expectedResponseBy`) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Header {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_bpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_bpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_feedback_url: Option<String>,
}

/// A header that passed [`validate_header`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidHeader {
    pub message_id: String,
    pub sender_bpn: String,
    pub receiver_bpn: String,
    pub related_message_id: Option<String>,
    pub sender_feedback_url: Option<String>,
}

impl Header {
    /// A new header for a message this plugin sends.
    pub fn new(
        kind: Kind,
        sender_bpn: &str,
        receiver_bpn: &str,
        related_message_id: Option<&str>,
        sender_feedback_url: Option<&str>,
    ) -> Header {
        Header {
            message_id: Some(check::new_message_id()),
            context: Some(kind.context().to_owned()),
            sent_date_time: Some(check::now_timestamp()),
            sender_bpn: Some(sender_bpn.to_owned()),
            receiver_bpn: Some(receiver_bpn.to_owned()),
            related_message_id: related_message_id.map(str::to_owned),
            version: Some(HEADER_VERSION.to_owned()),
            sender_feedback_url: sender_feedback_url.map(str::to_owned),
        }
    }
}

fn required<'a>(name: &str, v: &'a Option<String>, errors: &mut Vec<String>) -> Option<&'a str> {
    match v.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(format!("header.{name} is required"));
            None
        }
        Some(s) => Some(s),
    }
}

/// Validates the header of a `kind` message arriving at the tenant with BPNL `own_bpnl`
/// (ccm.md §3.1): every field's rule, `context` matching the route, `receiverBpn` being the
/// tenant. Returns every problem found.
pub fn validate_header(
    header: &Header,
    kind: Kind,
    own_bpnl: &str,
) -> Result<ValidHeader, Vec<String>> {
    let mut errors = Vec::new();
    let message_id = required("messageId", &header.message_id, &mut errors);
    if let Some(id) = message_id
        && !check::is_message_id(id)
    {
        errors.push(format!(
            "header.messageId `{id}` is not a UUID (optionally prefixed urn:uuid:)"
        ));
    }
    if let Some(context) = required("context", &header.context, &mut errors)
        && context != kind.context()
    {
        errors.push(format!(
            "header.context `{context}` does not match {}: expected `{}`",
            kind.path(),
            kind.context()
        ));
    }
    if let Some(sent) = required("sentDateTime", &header.sent_date_time, &mut errors)
        && check::parse_zoned_timestamp(sent).is_none()
    {
        errors.push(format!(
            "header.sentDateTime `{sent}` is not an ISO 8601 timestamp with a time zone"
        ));
    }
    let sender = required("senderBpn", &header.sender_bpn, &mut errors);
    if let Some(s) = sender
        && !check::is_bpnl(s)
    {
        errors.push(format!("header.senderBpn `{s}` is not a BPNL"));
    }
    let receiver = required("receiverBpn", &header.receiver_bpn, &mut errors);
    if let Some(r) = receiver {
        if !check::is_bpnl(r) {
            errors.push(format!("header.receiverBpn `{r}` is not a BPNL"));
        } else if r != own_bpnl {
            errors.push(format!(
                "header.receiverBpn `{r}` is not this participant ({own_bpnl})"
            ));
        }
    }
    if let Some(v) = required("version", &header.version, &mut errors)
        && !check::is_semver(v)
    {
        errors.push(format!(
            "header.version `{v}` is not a semantic version (e.g. 3.1.0)"
        ));
    }
    let related = header
        .related_message_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(r) = related
        && !check::is_message_id(r)
    {
        errors.push(format!("header.relatedMessageId `{r}` is not a UUID"));
    }
    let feedback = header
        .sender_feedback_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match feedback {
        None if kind.needs_feedback_url() => errors.push(format!(
            "header.senderFeedbackUrl is required for {} messages",
            kind.name()
        )),
        Some(url) if !check::is_http_url(url) => errors.push(format!(
            "header.senderFeedbackUrl `{url}` is not an http(s) URL"
        )),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidHeader {
        message_id: message_id.unwrap_or_default().to_owned(),
        sender_bpn: sender.unwrap_or_default().to_owned(),
        receiver_bpn: receiver.unwrap_or_default().to_owned(),
        related_message_id: related.map(str::to_owned),
        sender_feedback_url: feedback.map(str::to_owned),
    })
}

/// A message envelope: `{"header": ..., "content": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<C> {
    #[serde(default)]
    pub header: Option<Header>,
    #[serde(
        default = "Option::default",
        bound(deserialize = "C: Deserialize<'de>")
    )]
    pub content: Option<C>,
}

fn location_list(name: &str, list: &[String], errors: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, bpn) in list.iter().enumerate() {
        let bpn = bpn.trim();
        if !check::is_location_bpn(bpn) {
            errors.push(format!("content.{name}[{i}] `{bpn}` is not a BPNS or BPNA"));
        } else if !out.iter().any(|b| b == bpn) {
            out.push(bpn.to_owned());
        }
    }
    out
}

/// `request` content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestContent {
    pub certified_bpn: Option<String>,
    pub certificate_type: Option<String>,
    pub location_bpns: Vec<String>,
}

impl RequestContent {
    /// Validates and normalises (type code case, duplicate locations).
    pub fn validate(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        match self.certified_bpn.as_deref().map(str::trim) {
            None | Some("") => errors.push("content.certifiedBpn is required".to_owned()),
            Some(b) if !check::is_bpnl(b) => {
                errors.push(format!("content.certifiedBpn `{b}` is not a BPNL"))
            }
            Some(b) => self.certified_bpn = Some(b.to_owned()),
        }
        match self.certificate_type.as_deref() {
            None => errors.push("content.certificateType is required".to_owned()),
            Some(t) => match check::normalize_type_code(t) {
                Ok(code) => self.certificate_type = Some(code),
                Err(e) => errors.push(format!("content.certificateType: {e}")),
            },
        }
        self.location_bpns = location_list("locationBpns", &self.location_bpns, &mut errors);
        errors
    }
}

/// `{ "message": ... }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorMessage {
    pub message: String,
}

/// `{ "bpn": ..., "locationErrors": [{message}] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocationErrors {
    pub bpn: String,
    pub location_errors: Vec<ErrorMessage>,
}

/// The certificate statuses of feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CertificateStatus {
    Received,
    Accepted,
    Rejected,
}

impl CertificateStatus {
    /// Parses `RECEIVED`, `ACCEPTED` or `REJECTED` (case-insensitively).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "RECEIVED" => Some(Self::Received),
            "ACCEPTED" => Some(Self::Accepted),
            "REJECTED" => Some(Self::Rejected),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Accepted => "ACCEPTED",
            Self::Rejected => "REJECTED",
        }
    }
}

/// Most error entries kept from one feedback message: reasons are shown, not mined.
pub const MAX_REASONS: usize = 100;

/// `status` content as received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusContent {
    pub document_id: Option<String>,
    pub certificate_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_bpns: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_errors: Vec<ErrorMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub location_errors: Vec<LocationErrors>,
}

/// A validated `status` content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidStatus {
    pub document_id: String,
    pub status: CertificateStatus,
    pub location_bpns: Vec<String>,
    pub certificate_errors: Vec<ErrorMessage>,
    pub location_errors: Vec<LocationErrors>,
}

impl StatusContent {
    /// Validates. `locationBpns` is required by the OpenAPI; a missing list is accepted
    /// (as the reference app does) and read as empty.
    pub fn validate(&self) -> Result<ValidStatus, Vec<String>> {
        let mut errors = Vec::new();
        let document_id = match self.document_id.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push("content.documentId is required".to_owned());
                String::new()
            }
            Some(d) if d.len() > crate::model::MAX_DOCUMENT_ID_CHARS => {
                errors.push("content.documentId is too long".to_owned());
                String::new()
            }
            Some(d) => d.to_owned(),
        };
        let status = match self.certificate_status.as_deref() {
            None => {
                errors.push("content.certificateStatus is required".to_owned());
                None
            }
            Some(s) => {
                let parsed = CertificateStatus::parse(s);
                if parsed.is_none() {
                    errors.push(format!(
                        "content.certificateStatus `{s}` must be RECEIVED, ACCEPTED or REJECTED"
                    ));
                }
                parsed
            }
        };
        let location_bpns = location_list(
            "locationBpns",
            self.location_bpns.as_deref().unwrap_or_default(),
            &mut errors,
        );
        for (i, le) in self.location_errors.iter().enumerate() {
            if !check::is_location_bpn(le.bpn.trim()) {
                errors.push(format!(
                    "content.locationErrors[{i}].bpn `{}` is not a BPNS or BPNA",
                    le.bpn
                ));
            }
        }
        if self.certificate_errors.len() > MAX_REASONS || self.location_errors.len() > MAX_REASONS {
            errors.push(format!("more than {MAX_REASONS} errors in one message"));
        }
        match (status, errors.is_empty()) {
            (Some(status), true) => Ok(ValidStatus {
                document_id,
                status,
                location_bpns,
                certificate_errors: self.certificate_errors.clone(),
                location_errors: self.location_errors.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// `available` content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AvailableContent {
    pub document_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_type: Option<String>,
    pub location_bpns: Vec<String>,
}

impl AvailableContent {
    /// Validates and normalises.
    pub fn validate(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        match self.document_id.as_deref().map(str::trim) {
            None | Some("") => errors.push("content.documentId is required".to_owned()),
            Some(d) if d.len() > crate::model::MAX_DOCUMENT_ID_CHARS => {
                errors.push("content.documentId is too long".to_owned())
            }
            Some(d) => self.document_id = Some(d.to_owned()),
        }
        if let Some(t) = &self.certificate_type {
            match check::normalize_type_code(t) {
                Ok(code) => self.certificate_type = Some(code),
                Err(e) => errors.push(format!("content.certificateType: {e}")),
            }
        }
        self.location_bpns = location_list("locationBpns", &self.location_bpns, &mut errors);
        errors
    }
}

/// The outcome of a `request` (ccm.md §2, §9.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Nothing matches: 200 REJECTED with the reasons.
    Rejected {
        request_errors: Vec<String>,
        location_errors: Vec<LocationErrors>,
    },
    /// A match exists but is not published yet: 202 without a body.
    InProgress,
    /// Published: 200 COMPLETED with the asset id.
    Completed { document_id: String },
}

impl RequestOutcome {
    /// The `requestStatus` name.
    pub fn status_name(&self) -> &'static str {
        match self {
            RequestOutcome::Rejected { .. } => "REJECTED",
            RequestOutcome::InProgress => "IN_PROGRESS",
            RequestOutcome::Completed { .. } => "COMPLETED",
        }
    }

    /// The HTTP answer: status and optional body (`header` + `content`).
    pub fn answer(&self, own_bpnl: &str, request: &ValidHeader) -> (u16, Option<Value>) {
        let header = Header::new(
            Kind::Request,
            own_bpnl,
            &request.sender_bpn,
            Some(&request.message_id),
            None,
        );
        let content = match self {
            RequestOutcome::InProgress => return (202, None),
            RequestOutcome::Completed { document_id } => {
                json!({"requestStatus": "COMPLETED", "documentId": document_id})
            }
            RequestOutcome::Rejected {
                request_errors,
                location_errors,
            } => {
                let errors: Vec<Value> = request_errors
                    .iter()
                    .map(|m| json!({"message": m}))
                    .collect();
                let mut c = json!({"requestStatus": "REJECTED", "requestErrors": errors});
                if !location_errors.is_empty() {
                    c["locationErrors"] = json!(location_errors);
                }
                c
            }
        };
        (200, Some(json!({"header": header, "content": content})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "BPNL0000000002CD";

    fn header(kind: Kind) -> Header {
        Header::new(
            kind,
            "BPNL0000000001AB",
            OWN,
            None,
            Some("https://edc.example/api/v1/dsp"),
        )
    }

    #[test]
    fn kinds_and_paths() {
        assert_eq!(
            Kind::from_path("/companycertificate/request"),
            Some(Kind::Request)
        );
        assert_eq!(
            Kind::from_path("/api/public/x/companycertificate/status/"),
            Some(Kind::Status)
        );
        assert_eq!(Kind::from_path("/companycertificate/feedback"), None);
        assert_eq!(Kind::from_path("/push"), None);
        assert_eq!(Kind::Available.path(), "/companycertificate/available");
        assert!(Kind::Push.needs_feedback_url() && !Kind::Request.needs_feedback_url());
    }

    #[test]
    fn a_good_header_passes() {
        let h = header(Kind::Push);
        let v = validate_header(&h, Kind::Push, OWN).unwrap();
        assert_eq!(v.sender_bpn, "BPNL0000000001AB");
        assert!(check::is_message_id(&v.message_id));
        // The spec's own example values pass too (plain UUID, `Z` time).
        let spec = Header {
            message_id: Some("e4da568b-8cf1-4f5f-a96a-cf26265b2c72".into()),
            context: Some(Kind::Request.context().into()),
            sent_date_time: Some("2024-10-07T10:15:00Z".into()),
            sender_bpn: Some("BPNL0000000001AB".into()),
            receiver_bpn: Some(OWN.into()),
            related_message_id: Some("urn:uuid:e4da568b-8cf1-4f5f-a96a-cf26265b2c72".into()),
            version: Some("3.1.0".into()),
            sender_feedback_url: None,
        };
        assert!(validate_header(&spec, Kind::Request, OWN).is_ok());
    }

    fn fails(h: &Header, kind: Kind, needle: &str) {
        let errors = validate_header(h, kind, OWN).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{needle:?} not in {errors:?}"
        );
    }

    #[test]
    fn header_rules() {
        fails(
            &Header::default(),
            Kind::Request,
            "header.messageId is required",
        );
        fails(
            &Header::default(),
            Kind::Request,
            "header.context is required",
        );
        fails(
            &Header::default(),
            Kind::Request,
            "header.sentDateTime is required",
        );
        fails(
            &Header::default(),
            Kind::Request,
            "header.version is required",
        );

        let mut h = header(Kind::Push);
        h.message_id = Some("12345".into());
        fails(&h, Kind::Push, "messageId `12345`");

        // The context must match the route it arrived on.
        fails(
            &header(Kind::Push),
            Kind::Status,
            "does not match /companycertificate/status",
        );

        let mut h = header(Kind::Push);
        h.sent_date_time = Some("2024-10-07 10:15".into());
        fails(&h, Kind::Push, "sentDateTime");
        h.sent_date_time = Some("2024-10-07T10:15:00".into());
        fails(&h, Kind::Push, "with a time zone");

        let mut h = header(Kind::Push);
        h.sender_bpn = Some("BPNS0000000001AB".into());
        fails(&h, Kind::Push, "senderBpn");

        let mut h = header(Kind::Push);
        h.receiver_bpn = Some("BPNL0000000009ZZ".into());
        fails(&h, Kind::Push, "is not this participant");
        h.receiver_bpn = Some("nope".into());
        fails(&h, Kind::Push, "receiverBpn `nope` is not a BPNL");

        let mut h = header(Kind::Push);
        h.version = Some("3.1".into());
        fails(&h, Kind::Push, "version");

        let mut h = header(Kind::Push);
        h.related_message_id = Some("x".into());
        fails(&h, Kind::Push, "relatedMessageId");

        let mut h = header(Kind::Status);
        h.sender_feedback_url = None;
        fails(&h, Kind::Status, "senderFeedbackUrl is required for status");
        h.sender_feedback_url = Some("edc.example/dsp".into());
        fails(&h, Kind::Status, "not an http(s) URL");
        // A request needs none.
        let mut h = header(Kind::Request);
        h.sender_feedback_url = None;
        assert!(validate_header(&h, Kind::Request, OWN).is_ok());
    }

    #[test]
    fn contents() {
        let mut r = RequestContent {
            certified_bpn: Some("BPNL00000003AYRE".into()),
            certificate_type: Some("ISO9001".into()),
            location_bpns: vec!["BPNA000000000001".into(), "BPNA000000000001".into()],
        };
        assert!(r.validate().is_empty());
        assert_eq!(r.certificate_type.as_deref(), Some("iso9001"));
        assert_eq!(r.location_bpns.len(), 1);
        let mut bad = RequestContent {
            certified_bpn: Some("BPNS00000003AYRE".into()),
            certificate_type: None,
            location_bpns: vec!["BPNL000000000001".into()],
        };
        assert_eq!(bad.validate().len(), 3);

        let s: StatusContent = serde_json::from_value(json!({
            "documentId": "00000000-0000-0000-0000-000000000003",
            "certificateStatus": "REJECTED",
            "certificateErrors": [{"message": "expired"}],
            "locationBpns": ["BPNS000000000001"],
            "locationErrors": [{"bpn": "BPNS000000000002", "locationErrors": [{"message": "missing"}]}]
        }))
        .unwrap();
        let v = s.validate().unwrap();
        assert_eq!(v.status, CertificateStatus::Rejected);
        assert_eq!(v.location_errors[0].location_errors[0].message, "missing");
        let bad: StatusContent =
            serde_json::from_value(json!({"certificateStatus": "MAYBE"})).unwrap();
        assert_eq!(bad.validate().unwrap_err().len(), 2);

        let mut a = AvailableContent {
            document_id: Some("d1".into()),
            certificate_type: Some("IATF16949".into()),
            location_bpns: vec![],
        };
        assert!(a.validate().is_empty());
        assert_eq!(a.certificate_type.as_deref(), Some("iatf16949"));
    }

    #[test]
    fn request_answers() {
        let req = validate_header(&header(Kind::Request), Kind::Request, OWN).unwrap();
        let (status, body) = RequestOutcome::InProgress.answer(OWN, &req);
        assert_eq!((status, body), (202, None));

        let (status, body) = RequestOutcome::Completed {
            document_id: "asset-1".into(),
        }
        .answer(OWN, &req);
        let body = body.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            body["content"],
            json!({"requestStatus": "COMPLETED", "documentId": "asset-1"})
        );
        assert_eq!(body["header"]["relatedMessageId"], json!(req.message_id));
        assert_eq!(body["header"]["receiverBpn"], "BPNL0000000001AB");
        assert_eq!(body["header"]["senderBpn"], OWN);
        assert_eq!(body["header"]["context"], Kind::Request.context());

        let (status, body) = RequestOutcome::Rejected {
            request_errors: vec!["no iatf16949 certificate".into()],
            location_errors: vec![],
        }
        .answer(OWN, &req);
        let body = body.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["content"]["requestStatus"], "REJECTED");
        assert_eq!(
            body["content"]["requestErrors"][0]["message"],
            "no iatf16949 certificate"
        );
        assert!(body["content"].get("locationErrors").is_none());
    }
}
