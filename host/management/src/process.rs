//! The two kinds of long-running control-plane processes apps wait for and hear about, with
//! their Management API paths, event names and the states in which they have settled.

use weft_runtime::bindings::management::ProcessKind;

/// Negotiation states after which nothing more happens (edcv.md §1.4).
pub const SETTLED_NEGOTIATION_STATES: [&str; 2] = ["FINALIZED", "TERMINATED"];

/// Transfer states a watcher is woken for: STARTED (the data address is there, edcv.md §7.4)
/// and the final ones.
pub const SETTLED_TRANSFER_STATES: [&str; 4] =
    ["STARTED", "COMPLETED", "TERMINATED", "DEPROVISIONED"];

/// A contract negotiation or a transfer process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Negotiation,
    Transfer,
}

impl Process {
    /// Both kinds.
    pub const ALL: [Process; 2] = [Process::Negotiation, Process::Transfer];

    /// The Management API resource (`contractnegotiations`, `transferprocesses`).
    pub fn path(self) -> &'static str {
        match self {
            Process::Negotiation => "contractnegotiations",
            Process::Transfer => "transferprocesses",
        }
    }

    /// The manifest's event kind and the store's kind (`contract-negotiation`,
    /// `transfer-process`).
    pub fn kind(self) -> &'static str {
        match self {
            Process::Negotiation => "contract-negotiation",
            Process::Transfer => "transfer-process",
        }
    }

    /// Parses [`Process::kind`].
    pub fn from_kind(kind: &str) -> Option<Process> {
        Process::ALL.into_iter().find(|p| p.kind() == kind)
    }

    /// The prefix of EDC's event type names (`ContractNegotiationFinalized`, …).
    pub fn event_type_prefix(self) -> &'static str {
        match self {
            Process::Negotiation => "ContractNegotiation",
            Process::Transfer => "TransferProcess",
        }
    }

    /// The id field of EDC event payloads.
    pub fn payload_id_field(self) -> &'static str {
        match self {
            Process::Negotiation => "contractNegotiationId",
            Process::Transfer => "transferProcessId",
        }
    }

    /// Whether a watcher of this process is woken in `state`.
    pub fn is_settled(self, state: &str) -> bool {
        let settled: &[&str] = match self {
            Process::Negotiation => &SETTLED_NEGOTIATION_STATES,
            Process::Transfer => &SETTLED_TRANSFER_STATES,
        };
        settled.iter().any(|s| s.eq_ignore_ascii_case(state))
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl From<ProcessKind> for Process {
    fn from(kind: ProcessKind) -> Process {
        match kind {
            ProcessKind::ContractNegotiation => Process::Negotiation,
            ProcessKind::TransferProcess => Process::Transfer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_settle() {
        for p in Process::ALL {
            assert_eq!(Process::from_kind(p.kind()), Some(p));
        }
        assert_eq!(Process::from_kind("timer"), None);
        assert!(Process::Negotiation.is_settled("FINALIZED"));
        assert!(!Process::Negotiation.is_settled("AGREED"));
        assert!(Process::Transfer.is_settled("started"));
        assert!(!Process::Transfer.is_settled("SUSPENDED"));
    }
}
