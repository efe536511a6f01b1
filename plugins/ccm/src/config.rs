//! The tenant's CCM configuration (the plugin config JSON) and the tenant's BPNL.
//!
//! ```json
//! {
//!   "bpnl": "BPNL000000000OEM",
//!   "dspAddress": "https://cp.example/api/dsp/oem/2025-1",
//!   "accessBpns": ["BPNL0000000SUPP"],
//!   "partners": {"BPNL0000000SUPP": {"dspAddress": "https://cp.example/api/dsp/supp/2025-1",
//!                                     "did": "did:web:supp.example"}}
//! }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_sdk::{Error, Result, context};

use crate::{check, pdf, vocab};

/// Default wait for a negotiation to finish: the control plane runs several DSP round trips.
pub const DEFAULT_NEGOTIATION_TIMEOUT_MS: u32 = 20_000;
/// Default wait for a transfer to start (consumer prepare, provider start, `/started`).
pub const DEFAULT_TRANSFER_TIMEOUT_MS: u32 = 20_000;

/// A partner's connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's DSP address (counterPartyAddress).
    pub dsp_address: String,
    /// The partner's DSP identity (counterPartyId), a DID.
    pub did: String,
}

/// The plugin configuration of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The tenant's BPNL when the host does not know it.
    pub bpnl: Option<String>,
    /// This tenant's own DSP address: the `senderFeedbackUrl` of push, available and status.
    pub dsp_address: Option<String>,
    /// Restricts the access policy to these BPNLs (empty: every member).
    pub access_bpns: Vec<String>,
    /// Partners by BPNL.
    pub partners: BTreeMap<String, PartnerConfig>,
    /// Transfer type of pulls (default `HttpData-PULL`).
    pub transfer_type: Option<String>,
    /// DSP `protocol` of catalog, negotiation and transfer requests.
    pub protocol: Option<String>,
    /// DSP `profile` to send instead of `protocol` (v5beta connectors).
    pub profile: Option<String>,
    /// Cap on a PDF in bytes.
    pub max_pdf_bytes: Option<usize>,
    /// Wait for negotiations, in milliseconds.
    pub negotiation_timeout_ms: Option<u32>,
    /// Wait for transfers to start, in milliseconds.
    pub transfer_timeout_ms: Option<u32>,
    /// Pull automatically when an `available` notice arrives (default true).
    pub auto_pull: Option<bool>,
}

/// Everything a call needs to know about the tenant, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub bpnl: String,
    pub dsp_address: Option<String>,
    pub access_bpns: Vec<String>,
    pub partners: BTreeMap<String, PartnerConfig>,
    pub transfer_type: String,
    /// `("protocol" | "profile", value)`.
    pub protocol: (&'static str, String),
    pub max_pdf_bytes: usize,
    pub negotiation_timeout: Duration,
    pub transfer_timeout: Duration,
    pub auto_pull: bool,
}

impl Settings {
    /// Reads the tenant context and configuration.
    pub fn load() -> Result<Settings> {
        let config: Config = context::config()?;
        Settings::resolve(context::tenant().bpn, config)
    }

    /// Resolves the BPNL (the host's value wins; a different configured one is an error)
    /// and checks the configuration.
    pub fn resolve(tenant_bpn: Option<String>, config: Config) -> Result<Settings> {
        let bpnl = match (tenant_bpn, config.bpnl) {
            (Some(t), Some(c)) if t != c => {
                return Err(Error::Invalid(format!(
                    "configured bpnl {c} differs from the tenant's BPN {t}"
                )));
            }
            (Some(t), _) => t,
            (None, Some(c)) => c,
            (None, None) => {
                return Err(Error::Invalid(
                    "the tenant has no BPNL: the host knows none and the configuration sets no `bpnl`"
                        .to_owned(),
                ));
            }
        };
        if !check::is_bpnl(&bpnl) {
            return Err(Error::Invalid(format!(
                "the tenant's BPNL `{bpnl}` is not a BPNL"
            )));
        }
        if let Some(b) = config.access_bpns.iter().find(|b| !check::is_bpnl(b)) {
            return Err(Error::Invalid(format!("accessBpns: `{b}` is not a BPNL")));
        }
        for (bpn, p) in &config.partners {
            if !check::is_bpnl(bpn) {
                return Err(Error::Invalid(format!("partners: `{bpn}` is not a BPNL")));
            }
            if !check::is_http_url(&p.dsp_address) || p.did.trim().is_empty() {
                return Err(Error::Invalid(format!(
                    "partners.{bpn}: dspAddress must be an http(s) URL and did must be set"
                )));
            }
        }
        if let Some(a) = &config.dsp_address
            && !check::is_http_url(a)
        {
            return Err(Error::Invalid(format!(
                "dspAddress `{a}` is not an http(s) URL"
            )));
        }
        let protocol = match (config.profile, config.protocol) {
            (Some(p), _) => ("profile", p),
            (None, Some(p)) => ("protocol", p),
            (None, None) => ("protocol", vocab::DEFAULT_PROTOCOL.to_owned()),
        };
        let max_pdf_bytes = config
            .max_pdf_bytes
            .unwrap_or(pdf::DEFAULT_MAX_PDF_BYTES)
            .min(pdf::MAX_PDF_BYTES_CEILING);
        Ok(Settings {
            bpnl,
            dsp_address: config.dsp_address,
            access_bpns: config.access_bpns,
            partners: config.partners,
            transfer_type: config
                .transfer_type
                .unwrap_or_else(|| vocab::TRANSFER_TYPE_HTTP_PULL.to_owned()),
            protocol,
            max_pdf_bytes,
            negotiation_timeout: Duration::from_millis(u64::from(
                config
                    .negotiation_timeout_ms
                    .unwrap_or(DEFAULT_NEGOTIATION_TIMEOUT_MS),
            )),
            transfer_timeout: Duration::from_millis(u64::from(
                config
                    .transfer_timeout_ms
                    .unwrap_or(DEFAULT_TRANSFER_TIMEOUT_MS),
            )),
            auto_pull: config.auto_pull.unwrap_or(true),
        })
    }

    /// The own DSP address, required to send push, available and status.
    pub fn feedback_url(&self) -> Result<&str> {
        self.dsp_address.as_deref().ok_or_else(|| {
            Error::Invalid(
                "configure `dspAddress` (this tenant's DSP address): push, available and status messages carry it as senderFeedbackUrl"
                    .to_owned(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpnl_comes_from_the_host_or_the_config() {
        let s = Settings::resolve(Some("BPNL0000000001AB".into()), Config::default()).unwrap();
        assert_eq!(s.bpnl, "BPNL0000000001AB");
        assert_eq!(s.protocol, ("protocol", vocab::DEFAULT_PROTOCOL.to_owned()));
        assert_eq!(s.transfer_type, "HttpData-PULL");
        let c = Config {
            bpnl: Some("BPNL0000000002CD".into()),
            ..Config::default()
        };
        assert_eq!(
            Settings::resolve(None, c.clone()).unwrap().bpnl,
            "BPNL0000000002CD"
        );
        assert!(Settings::resolve(Some("BPNL0000000001AB".into()), c).is_err());
        assert!(Settings::resolve(None, Config::default()).is_err());
        assert!(Settings::resolve(Some("BPNX".into()), Config::default()).is_err());
    }

    #[test]
    fn config_is_strict() {
        let bad: std::result::Result<Config, _> =
            serde_json::from_str(r#"{"bpnl": "BPNL0000000001AB", "colour": "red"}"#);
        assert!(bad.is_err());
        let c: Config = serde_json::from_str(
            r#"{"partners": {"BPNL0000000001AB": {"dspAddress": "http://cp/api/dsp/a/2025-1", "did": "did:web:a"}},
                "profile": "http-dsp-profile-2025-1", "maxPdfBytes": 999999999}"#,
        )
        .unwrap();
        let s = Settings::resolve(Some("BPNL0000000002CD".into()), c).unwrap();
        assert_eq!(s.protocol.0, "profile");
        assert_eq!(s.max_pdf_bytes, pdf::MAX_PDF_BYTES_CEILING);
        assert!(s.feedback_url().is_err());
        let bad_partner = Config {
            partners: BTreeMap::from([(
                "BPNL0000000001AB".to_owned(),
                PartnerConfig {
                    dsp_address: "nope".into(),
                    did: "did:web:a".into(),
                },
            )]),
            ..Config::default()
        };
        assert!(Settings::resolve(Some("BPNL0000000002CD".into()), bad_partner).is_err());
    }
}
