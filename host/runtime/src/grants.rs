//! Capabilities: what a manifest asks, what the CSP grants, what a tenant narrows to.
//!
//! The same shape serves all three keys. A call runs with `asked ∩ granted ∩ narrowed`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Smallest timer interval a plugin may ask for: a tick per tenant costs one instance per
/// tenant, so a fast tick over thousands of tenants would be a self-inflicted load test.
pub const MIN_TIMER_SECS: u64 = 10;

/// The management scopes a plugin can be granted.
pub const MANAGEMENT_SCOPES: [&str; 2] = ["management-api:read", "management-api:write"];

/// Event kinds a plugin can subscribe to.
pub const EVENT_KINDS: [&str; 2] = ["contract-negotiation", "transfer-process"];

/// A set of capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grants {
    /// Management API scopes (`management-api:read`, `management-api:write`).
    pub management: BTreeSet<String>,
    /// Bytes of key-value state per tenant; 0 means no state access.
    pub state_quota_bytes: u64,
    /// Outbound HTTP destinations: `scheme://host[:port]`, host may start with `*.`.
    pub outbound_hosts: BTreeSet<String>,
    /// Control-plane event kinds delivered to the `events` export.
    pub events: BTreeSet<String>,
    /// Periodic tick per tenant, in seconds.
    pub timer_secs: Option<u64>,
}

impl Grants {
    /// Checks every entry is well formed.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = self
            .management
            .iter()
            .find(|s| !MANAGEMENT_SCOPES.contains(&s.as_str()))
        {
            return Err(format!(
                "unknown management scope {s:?} (known: {MANAGEMENT_SCOPES:?})"
            ));
        }
        if let Some(e) = self
            .events
            .iter()
            .find(|e| !EVENT_KINDS.contains(&e.as_str()))
        {
            return Err(format!("unknown event kind {e:?} (known: {EVENT_KINDS:?})"));
        }
        for host in &self.outbound_hosts {
            OutboundHost::parse(host)?;
        }
        if let Some(secs) = self.timer_secs
            && secs < MIN_TIMER_SECS
        {
            return Err(format!(
                "timer-secs {secs} is below the minimum of {MIN_TIMER_SECS}"
            ));
        }
        Ok(())
    }

    /// The capabilities both sets allow.
    pub fn intersect(&self, other: &Grants) -> Grants {
        Grants {
            management: self
                .management
                .intersection(&other.management)
                .cloned()
                .collect(),
            state_quota_bytes: self.state_quota_bytes.min(other.state_quota_bytes),
            outbound_hosts: self
                .outbound_hosts
                .intersection(&other.outbound_hosts)
                .cloned()
                .collect(),
            events: self.events.intersection(&other.events).cloned().collect(),
            timer_secs: match (self.timer_secs, other.timer_secs) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
        }
    }

    /// Whether `self` allows everything `asked` asks for.
    pub fn covers(&self, asked: &Grants) -> bool {
        self.missing(asked).is_empty()
    }

    /// What `asked` asks for beyond `self`, one line each (for error messages).
    pub fn missing(&self, asked: &Grants) -> Vec<String> {
        let mut out = Vec::new();
        for s in asked.management.difference(&self.management) {
            out.push(format!("management scope {s}"));
        }
        if asked.state_quota_bytes > self.state_quota_bytes {
            out.push(format!(
                "state quota {} bytes (granted {})",
                asked.state_quota_bytes, self.state_quota_bytes
            ));
        }
        for h in asked.outbound_hosts.difference(&self.outbound_hosts) {
            out.push(format!("outbound host {h}"));
        }
        for e in asked.events.difference(&self.events) {
            out.push(format!("events {e}"));
        }
        match (asked.timer_secs, self.timer_secs) {
            (Some(a), Some(g)) if a < g => out.push(format!("timer every {a}s (granted {g}s)")),
            (Some(a), None) => out.push(format!("timer every {a}s")),
            _ => {}
        }
        out
    }

    /// Whether an outbound request to this URL is allowed.
    pub fn allows_outbound(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.outbound_hosts.iter().any(|pattern| {
            OutboundHost::parse(pattern).is_ok_and(|p| p.matches(scheme, host, port))
        })
    }

    /// Whether a management request with this method may be sent.
    pub fn allows_management(&self, write: bool) -> bool {
        let needed = if write {
            "management-api:write"
        } else {
            "management-api:read"
        };
        self.management.contains(needed)
    }
}

/// A parsed `scheme://host[:port]` allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundHost {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OutboundHost {
    /// Parses an allow-list entry.
    pub fn parse(text: &str) -> Result<OutboundHost, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("outbound host {text:?} needs a scheme, like https://host"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "outbound host {text:?}: scheme must be http or https"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("outbound host {text:?}: bad port"))?;
                (h, Some(port))
            }
            None => (rest, None),
        };
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if bare.is_empty()
            || bare.contains('*')
            || bare.contains('/')
            || !bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(format!("outbound host {text:?}: bad host name"));
        }
        Ok(OutboundHost {
            scheme: scheme.to_string(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = port.unwrap_or(default_port);
        let want_port = self
            .port
            .unwrap_or(if self.scheme == "https" { 443 } else { 80 });
        let host_ok = match self.host.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == self.host,
        };
        self.scheme == scheme && host_ok && port == want_port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(mgmt: &[&str], quota: u64, hosts: &[&str]) -> Grants {
        Grants {
            management: mgmt.iter().map(|s| s.to_string()).collect(),
            state_quota_bytes: quota,
            outbound_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            ..Grants::default()
        }
    }

    #[test]
    fn intersection_narrows_never_widens() {
        let asked = grants(
            &["management-api:read", "management-api:write"],
            100,
            &["https://a.example"],
        );
        let csp = grants(
            &["management-api:read"],
            50,
            &["https://a.example", "https://b.example"],
        );
        let eff = asked.intersect(&csp);
        assert_eq!(
            eff,
            grants(&["management-api:read"], 50, &["https://a.example"])
        );
        assert!(!csp.covers(&asked));
        assert_eq!(csp.missing(&asked).len(), 2);
        assert!(csp.covers(&eff));
    }

    #[test]
    fn outbound_matching() {
        let g = grants(
            &[],
            0,
            &["https://api.example.com", "http://*.local.test:8080"],
        );
        assert!(g.allows_outbound("https", "api.example.com", None));
        assert!(g.allows_outbound("https", "API.example.com", Some(443)));
        assert!(!g.allows_outbound("http", "api.example.com", None));
        assert!(!g.allows_outbound("https", "api.example.com", Some(8443)));
        assert!(g.allows_outbound("http", "x.local.test", Some(8080)));
        assert!(!g.allows_outbound("http", "local.test", Some(8080)));
        assert!(!g.allows_outbound("https", "evil.com", None));
    }

    #[test]
    fn validation() {
        assert!(
            grants(&["management-api:admin"], 0, &[])
                .validate()
                .is_err()
        );
        assert!(grants(&[], 0, &["api.example.com"]).validate().is_err());
        assert!(
            grants(&[], 0, &["ftp://api.example.com"])
                .validate()
                .is_err()
        );
        assert!(grants(&[], 0, &["https://a/b"]).validate().is_err());
        assert!(
            Grants {
                timer_secs: Some(1),
                ..Grants::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            grants(&["management-api:read"], 0, &["https://*.example.com:8443"])
                .validate()
                .is_ok()
        );
    }
}
