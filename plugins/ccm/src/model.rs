//! The payload: `urn:samm:io.catenax.business_partner_certificate:3.1.0#BusinessPartnerCertificate`
//! (ccm.md §3.2), with the validation and normalisation CX-0135 asks for.
//!
//! Every field deserializes leniently (missing fields become empty) so that [`validate`]
//! can report every problem of a payload at once instead of the first one serde meets.
//!
//! [`validate`]: BusinessPartnerCertificate::validate

use serde::{Deserialize, Serialize};

use crate::check;

/// Longest free-text field accepted: the model sets none, this keeps one record small.
pub const MAX_TEXT_CHARS: usize = 1024;
/// Longest `documentID` accepted: it becomes part of state keys.
pub const MAX_DOCUMENT_ID_CHARS: usize = 256;
/// Most enclosed sites on one certificate: each becomes an asset property value.
pub const MAX_ENCLOSED_SITES: usize = 1000;
/// The content type CCM exchanges.
pub const PDF_CONTENT_TYPE: &str = "application/pdf";
/// The trust levels of the model.
pub const TRUST_LEVELS: [&str; 4] = ["none", "low", "high", "trusted"];

/// A company certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BusinessPartnerCertificate {
    /// BPNL of the certified legal entity.
    pub business_partner_number: String,
    /// The certificate type.
    #[serde(rename = "type")]
    pub certificate_type: CertificateType,
    /// The number the issuer assigned.
    pub registration_number: String,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_of_application: Option<String>,
    /// Sites and addresses the certificate covers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enclosed_sites: Vec<EnclosedSite>,
    /// `YYYY-MM-DD`.
    pub valid_from: String,
    /// `YYYY-MM-DD`; `9999-12-31` never expires.
    pub valid_until: String,
    /// The certifying body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Issuer>,
    /// `none`, `low`, `high` or `trusted`.
    pub trust_level: String,
    /// Who validated the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validator: Option<Validator>,
    /// BPNL of whoever supplied the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploader: Option<String>,
    /// The certificate document.
    pub document: Document,
}

/// `type`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CertificateType {
    /// The type code, e.g. `iso9001`.
    pub certificate_type: String,
    /// E.g. `2015`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_version: Option<String>,
}

/// One of `enclosedSites`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnclosedSite {
    /// BPNS or BPNA.
    pub enclosed_site_bpn: String,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_of_application: Option<String>,
}

/// `issuer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Issuer {
    /// Required when `issuer` is present.
    pub issuer_name: String,
    /// A BPNL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_bpn: Option<String>,
}

/// `validator`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Validator {
    /// Name of the validating data service provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validator_name: Option<String>,
    /// Its BPNL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validator_bpn: Option<String>,
}

/// `document`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Document {
    /// The document's own id (spelled `documentID` by the model).
    #[serde(rename = "documentID")]
    pub document_id: String,
    /// A SAMM timestamp.
    pub creation_date: String,
    /// A MIME type; CCM exchanges `application/pdf`.
    pub content_type: String,
    /// The PDF, base64. Kept out of stored records (the bytes are stored separately).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
}

fn check_text(name: &str, value: &str, errors: &mut Vec<String>) {
    if value.chars().count() > MAX_TEXT_CHARS {
        errors.push(format!("{name} is longer than {MAX_TEXT_CHARS} characters"));
    }
}

fn trim_opt(v: &mut Option<String>) {
    if let Some(s) = v {
        let t = s.trim();
        if t.is_empty() {
            *v = None;
        } else if t.len() != s.len() {
            *v = Some(t.to_owned());
        }
    }
}

impl BusinessPartnerCertificate {
    /// The enclosed site BPNs, in order.
    pub fn site_bpns(&self) -> Vec<String> {
        self.enclosed_sites
            .iter()
            .map(|s| s.enclosed_site_bpn.clone())
            .collect()
    }

    /// Whether the certificate covers `location` (a BPNS or BPNA).
    pub fn covers(&self, location: &str) -> bool {
        self.enclosed_sites
            .iter()
            .any(|s| s.enclosed_site_bpn == location)
    }

    /// The same certificate without the document content (what records keep).
    pub fn without_content(&self) -> Self {
        let mut c = self.clone();
        c.document.content_base64 = None;
        c
    }

    /// Normalises the certificate in place (trimmed text, lower-case type code and trust
    /// level, duplicate sites dropped) and returns every rule it breaks. With
    /// `require_content`, `document.contentBase64` must be present.
    pub fn validate(&mut self, require_content: bool) -> Vec<String> {
        let mut errors = Vec::new();

        self.business_partner_number = self.business_partner_number.trim().to_owned();
        if self.business_partner_number.is_empty() {
            errors.push("businessPartnerNumber is required".to_owned());
        } else if !check::is_bpnl(&self.business_partner_number) {
            errors.push(format!(
                "businessPartnerNumber `{}` is not a BPNL (^BPNL[a-zA-Z0-9]{{12}}$)",
                self.business_partner_number
            ));
        }

        match check::normalize_type_code(&self.certificate_type.certificate_type) {
            Ok(code) => self.certificate_type.certificate_type = code,
            Err(e) => errors.push(format!("type.certificateType: {e}")),
        }
        trim_opt(&mut self.certificate_type.certificate_version);
        if let Some(v) = &self.certificate_type.certificate_version {
            check_text("type.certificateVersion", v, &mut errors);
        }

        self.registration_number = self.registration_number.trim().to_owned();
        if self.registration_number.is_empty() {
            errors.push("registrationNumber is required".to_owned());
        }
        check_text("registrationNumber", &self.registration_number, &mut errors);
        trim_opt(&mut self.area_of_application);
        if let Some(a) = &self.area_of_application {
            check_text("areaOfApplication", a, &mut errors);
        }

        let mut seen: Vec<String> = Vec::new();
        let mut sites = Vec::new();
        for (i, mut site) in std::mem::take(&mut self.enclosed_sites)
            .into_iter()
            .enumerate()
        {
            site.enclosed_site_bpn = site.enclosed_site_bpn.trim().to_owned();
            trim_opt(&mut site.area_of_application);
            if !check::is_location_bpn(&site.enclosed_site_bpn) {
                errors.push(format!(
                    "enclosedSites[{i}].enclosedSiteBpn `{}` is not a BPNS or BPNA (^(?:BPNS|BPNA)[a-zA-Z0-9]{{12}}$)",
                    site.enclosed_site_bpn
                ));
            }
            if let Some(a) = &site.area_of_application {
                check_text(
                    &format!("enclosedSites[{i}].areaOfApplication"),
                    a,
                    &mut errors,
                );
            }
            if !seen.contains(&site.enclosed_site_bpn) {
                seen.push(site.enclosed_site_bpn.clone());
                sites.push(site);
            }
        }
        if sites.len() > MAX_ENCLOSED_SITES {
            errors.push(format!("more than {MAX_ENCLOSED_SITES} enclosedSites"));
        }
        self.enclosed_sites = sites;

        self.valid_from = self.valid_from.trim().to_owned();
        self.valid_until = self.valid_until.trim().to_owned();
        let from = check::parse_date(&self.valid_from);
        let until = check::parse_date(&self.valid_until);
        if from.is_none() {
            errors.push(format!(
                "validFrom `{}` is not a date (YYYY-MM-DD)",
                self.valid_from
            ));
        }
        if until.is_none() {
            errors.push(format!(
                "validUntil `{}` is not a date (YYYY-MM-DD; 9999-12-31 = never expires)",
                self.valid_until
            ));
        }
        if let (Some(f), Some(u)) = (from, until)
            && f > u
        {
            errors.push(format!(
                "validFrom {} is after validUntil {}",
                self.valid_from, self.valid_until
            ));
        }

        if let Some(issuer) = &mut self.issuer {
            issuer.issuer_name = issuer.issuer_name.trim().to_owned();
            trim_opt(&mut issuer.issuer_bpn);
            if issuer.issuer_name.is_empty() {
                errors.push("issuer.issuerName is required when issuer is given".to_owned());
            }
            check_text("issuer.issuerName", &issuer.issuer_name, &mut errors);
            if let Some(b) = &issuer.issuer_bpn
                && !check::is_bpnl(b)
            {
                errors.push(format!("issuer.issuerBpn `{b}` is not a BPNL"));
            }
        }

        self.trust_level = self.trust_level.trim().to_ascii_lowercase();
        if !TRUST_LEVELS.contains(&self.trust_level.as_str()) {
            errors.push(format!(
                "trustLevel `{}` must be one of none, low, high, trusted",
                self.trust_level
            ));
        }

        if let Some(v) = &mut self.validator {
            trim_opt(&mut v.validator_name);
            trim_opt(&mut v.validator_bpn);
            if let Some(n) = &v.validator_name {
                check_text("validator.validatorName", n, &mut errors);
            }
            if let Some(b) = &v.validator_bpn
                && !check::is_bpnl(b)
            {
                errors.push(format!("validator.validatorBpn `{b}` is not a BPNL"));
            }
        }
        trim_opt(&mut self.uploader);
        if let Some(u) = &self.uploader
            && !check::is_bpnl(u)
        {
            errors.push(format!("uploader `{u}` is not a BPNL"));
        }

        let doc = &mut self.document;
        doc.document_id = doc.document_id.trim().to_owned();
        if doc.document_id.is_empty() {
            errors.push("document.documentID is required".to_owned());
        } else if doc.document_id.chars().count() > MAX_DOCUMENT_ID_CHARS {
            errors.push(format!(
                "document.documentID is longer than {MAX_DOCUMENT_ID_CHARS} characters"
            ));
        }
        doc.creation_date = doc.creation_date.trim().to_owned();
        if doc.creation_date.is_empty() {
            errors.push("document.creationDate is required".to_owned());
        } else if !check::is_timestamp(&doc.creation_date) {
            errors.push(format!(
                "document.creationDate `{}` is not a timestamp (e.g. 2024-08-23T13:19:00.280+02:00)",
                doc.creation_date
            ));
        }
        doc.content_type = doc.content_type.trim().to_ascii_lowercase();
        if doc.content_type.is_empty() {
            errors.push("document.contentType is required".to_owned());
        } else if doc.content_type != PDF_CONTENT_TYPE {
            errors.push(format!(
                "document.contentType `{}` is not supported: CCM exchanges {PDF_CONTENT_TYPE}",
                doc.content_type
            ));
        }
        if require_content
            && doc
                .content_base64
                .as_deref()
                .is_none_or(|c| c.trim().is_empty())
        {
            errors.push("document.contentBase64 is required".to_owned());
        }
        errors
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid certificate as JSON (content: a tiny PDF).
    pub(crate) fn sample_json() -> serde_json::Value {
        serde_json::json!({
            "businessPartnerNumber": "BPNL0000000001AB",
            "type": {"certificateType": "ISO9001", "certificateVersion": "2015"},
            "registrationNumber": "12 198 54182 TMS",
            "enclosedSites": [
                {"enclosedSiteBpn": "BPNS000000000001", "areaOfApplication": "Development"},
                {"enclosedSiteBpn": "BPNA000000000002"}
            ],
            "validFrom": "2023-01-25",
            "validUntil": "9999-12-31",
            "trustLevel": "none",
            "issuer": {"issuerName": "TÜV", "issuerBpn": "BPNL133631123120"},
            "document": {
                "documentID": "UUID--123456789",
                "creationDate": "2024-08-23T13:19:00.280+02:00",
                "contentType": "application/pdf",
                "contentBase64": crate::pdf::tests::sample_pdf_base64()
            }
        })
    }

    fn sample() -> BusinessPartnerCertificate {
        serde_json::from_value(sample_json()).unwrap()
    }

    #[test]
    fn a_valid_certificate_is_normalised() {
        let mut c = sample();
        assert_eq!(c.validate(true), Vec::<String>::new());
        assert_eq!(c.certificate_type.certificate_type, "iso9001");
        assert!(c.covers("BPNA000000000002") && !c.covers("BPNS000000000009"));
        let json = serde_json::to_value(c.without_content()).unwrap();
        assert!(json["document"].get("contentBase64").is_none());
        assert_eq!(json["document"]["documentID"], "UUID--123456789");
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c: BusinessPartnerCertificate = serde_json::from_value(serde_json::json!({
            "businessPartnerNumber": "BPNX0000000001AB",
            "type": {"certificateType": "iso 9001:2015"},
            "enclosedSites": [{"enclosedSiteBpn": "BPNL000000000001"}],
            "validFrom": "2025-01-01",
            "validUntil": "2024-01-01",
            "trustLevel": "medium",
            "issuer": {"issuerBpn": "x"},
            "uploader": "BPNL1",
            "document": {"contentType": "image/png"}
        }))
        .unwrap();
        let errors = c.validate(true);
        for needle in [
            "businessPartnerNumber",
            "type.certificateType",
            "registrationNumber is required",
            "enclosedSites[0]",
            "validFrom 2025-01-01 is after validUntil",
            "trustLevel `medium`",
            "issuer.issuerName is required",
            "issuer.issuerBpn",
            "uploader",
            "document.documentID is required",
            "document.creationDate is required",
            "image/png",
            "contentBase64 is required",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(needle)),
                "missing {needle:?} in {errors:?}"
            );
        }
    }

    #[test]
    fn bad_dates_and_trust_level_case() {
        let mut c = sample();
        c.valid_until = "31.12.2026".into();
        c.trust_level = "HIGH".into();
        let errors = c.validate(false);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("validUntil"));
        assert_eq!(c.trust_level, "high");
    }
}
