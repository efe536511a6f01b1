//! The provider's view of one certificate shared with one consumer, moved by the consumer's
//! `status` feedback (ccm.md §7, §9.2): RECEIVED → Pending, ACCEPTED → Active,
//! REJECTED → Revoked. Repeats are idempotent; moving back is refused.
//!
//! `Offered` is where a share starts when the provider offers the certificate (a pull served,
//! a push or an available notice sent, a request answered COMPLETED). Offering again after a
//! rejection re-opens a Revoked share.

use serde::{Deserialize, Serialize};

use crate::message::CertificateStatus;

/// The state of a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareState {
    /// Offered to the consumer, no feedback yet.
    Offered,
    /// The consumer received it and is validating (RECEIVED).
    Pending,
    /// The consumer accepted it (ACCEPTED).
    Active,
    /// The consumer rejected it (REJECTED), reasons kept.
    Revoked,
}

impl ShareState {
    /// The state a feedback status leads to.
    pub fn target_of(status: CertificateStatus) -> ShareState {
        match status {
            CertificateStatus::Received => ShareState::Pending,
            CertificateStatus::Accepted => ShareState::Active,
            CertificateStatus::Rejected => ShareState::Revoked,
        }
    }
}

/// What a feedback does to a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The share moves (or is created).
    Moved {
        from: Option<ShareState>,
        to: ShareState,
    },
    /// A repeat: nothing changes.
    Unchanged(ShareState),
}

/// A refused move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the share is {from:?}; {status} cannot move it to {to:?}")]
pub struct InvalidTransition {
    pub from: ShareState,
    pub status: &'static str,
    pub to: ShareState,
}

/// Applies a consumer's feedback to the current state (`None`: no share recorded yet).
///
/// | from \ status | RECEIVED | ACCEPTED | REJECTED |
/// |---|---|---|---|
/// | none, Offered | Pending | Active | Revoked |
/// | Pending | = | Active | Revoked |
/// | Active | refused | = | Revoked |
/// | Revoked | refused | refused | = |
pub fn apply(
    current: Option<ShareState>,
    status: CertificateStatus,
) -> Result<Transition, InvalidTransition> {
    use ShareState::*;
    let to = ShareState::target_of(status);
    let from = match current {
        None | Some(Offered) => return Ok(Transition::Moved { from: current, to }),
        Some(from) => from,
    };
    if from == to {
        return Ok(Transition::Unchanged(from));
    }
    let allowed = matches!((from, to), (Pending, Active | Revoked) | (Active, Revoked));
    if allowed {
        Ok(Transition::Moved {
            from: Some(from),
            to,
        })
    } else {
        Err(InvalidTransition {
            from,
            status: status.as_str(),
            to,
        })
    }
}

/// Offering the certificate (again): a new share starts Offered, a Revoked one re-opens;
/// Pending and Active stay as they are. Returns the new state when it changes.
pub fn offer(current: Option<ShareState>) -> Option<ShareState> {
    match current {
        None | Some(ShareState::Revoked) => Some(ShareState::Offered),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::CertificateStatus::*;
    use super::ShareState::*;
    use super::*;

    #[test]
    fn the_happy_path_moves_pending_active_revoked() {
        assert_eq!(
            apply(None, Received),
            Ok(Transition::Moved {
                from: None,
                to: Pending
            })
        );
        assert_eq!(
            apply(Some(Offered), Received),
            Ok(Transition::Moved {
                from: Some(Offered),
                to: Pending
            })
        );
        assert_eq!(
            apply(Some(Pending), Accepted),
            Ok(Transition::Moved {
                from: Some(Pending),
                to: Active
            })
        );
        assert_eq!(
            apply(Some(Active), Rejected),
            Ok(Transition::Moved {
                from: Some(Active),
                to: Revoked
            })
        );
        assert_eq!(apply(Some(Pending), Rejected).map(|_| ()), Ok(()));
        // Feedback without a RECEIVED first is fine.
        assert_eq!(
            apply(None, Rejected),
            Ok(Transition::Moved {
                from: None,
                to: Revoked
            })
        );
    }

    #[test]
    fn repeats_are_idempotent() {
        assert_eq!(
            apply(Some(Pending), Received),
            Ok(Transition::Unchanged(Pending))
        );
        assert_eq!(
            apply(Some(Active), Accepted),
            Ok(Transition::Unchanged(Active))
        );
        assert_eq!(
            apply(Some(Revoked), Rejected),
            Ok(Transition::Unchanged(Revoked))
        );
    }

    #[test]
    fn moving_back_is_refused_with_a_clear_error() {
        let e = apply(Some(Active), Received).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the share is Active; RECEIVED cannot move it to Pending"
        );
        assert!(apply(Some(Revoked), Received).is_err());
        assert!(apply(Some(Revoked), Accepted).is_err());
    }

    #[test]
    fn offering_reopens_only_revoked_shares() {
        assert_eq!(offer(None), Some(Offered));
        assert_eq!(offer(Some(Revoked)), Some(Offered));
        assert_eq!(offer(Some(Pending)), None);
        assert_eq!(offer(Some(Active)), None);
        assert_eq!(offer(Some(Offered)), None);
    }
}
