//! The native backend: serves the imports from the thread-local [`crate::testing`] host.

use crate::context::{EntryPoint, PluginInfo, Tenant};
use crate::flows::DataAddress;
use crate::http::{ClientRequest, ClientResponse};
use crate::log::Level;
use crate::management::{self, ProcessKind};
use crate::state::Page;
use crate::testing::{self, LogRecord, with};
use crate::transfer::Report;
use crate::{Error, Result};

pub(crate) fn tenant() -> Tenant {
    with(|h| h.tenant.clone())
}

pub(crate) fn config() -> String {
    with(|h| h.config.clone())
}

pub(crate) fn entry_point() -> EntryPoint {
    with(|h| h.entry_point.clone())
}

pub(crate) fn plugin() -> PluginInfo {
    with(|h| h.plugin.clone())
}

pub(crate) fn state_get(key: &str) -> Result<Option<Vec<u8>>> {
    Ok(with(|h| h.state.get(key).cloned()))
}

pub(crate) fn state_set(key: &str, value: &[u8]) -> Result<()> {
    with(|h| h.state.insert(key.to_owned(), value.to_vec()));
    Ok(())
}

pub(crate) fn state_delete(key: &str) -> Result<bool> {
    Ok(with(|h| h.state.remove(key).is_some()))
}

pub(crate) fn state_compare_and_set(
    key: &str,
    expected: Option<&[u8]>,
    new: &[u8],
) -> Result<bool> {
    Ok(with(|h| {
        if h.state.get(key).map(Vec::as_slice) != expected {
            return false;
        }
        h.state.insert(key.to_owned(), new.to_vec());
        true
    }))
}

/// Pages like the host: the cursor is the last key returned.
pub(crate) fn state_list(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page> {
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    Ok(with(|h| {
        let mut entries: Vec<(String, Vec<u8>)> = h
            .state
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c))
            .take(limit + 1)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let next_cursor = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Page {
            entries,
            next_cursor,
        }
    }))
}

pub(crate) fn management_send(request: &management::Request) -> Result<management::Response> {
    let handler = testing::management_handler()?;
    handler(request)
}

pub(crate) fn management_wait_for_state(
    _kind: ProcessKind,
    _id: &str,
    _states: &[&str],
    _timeout_ms: u32,
) -> Result<String> {
    Err(Error::Unavailable(
        "no control plane to wait on in native tests".to_owned(),
    ))
}

pub(crate) fn management_watch(kind: ProcessKind, id: &str, correlation: &str) -> Result<()> {
    with(|h| {
        h.watches
            .push((kind, id.to_owned(), correlation.to_owned()))
    });
    Ok(())
}

pub(crate) fn transfer_send(flow_id: &str, request: ClientRequest) -> Result<ClientResponse> {
    let handler = testing::transfer_handler()?;
    handler(flow_id, request)
}

pub(crate) fn transfer_counterparty_address(flow_id: &str) -> Result<Option<DataAddress>> {
    Ok(with(|h| h.addresses.get(flow_id).cloned()))
}

pub(crate) fn transfer_report(flow_id: &str, report: Report) -> Result<()> {
    with(|h| h.reports.push((flow_id.to_owned(), report)));
    Ok(())
}

pub(crate) fn log_write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let record = LogRecord {
        level,
        message: message.to_owned(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    with(|h| h.logs.push(record));
}

#[cfg(test)]
mod tests {
    use crate::{state, testing};

    #[test]
    fn listing_pages_through_everything_with_the_prefix() {
        testing::reset();
        for i in 0..250 {
            state::set(&format!("k/{i:03}"), b"v").unwrap();
        }
        state::set("other", b"x").unwrap();
        let keys: Vec<String> = state::list("k/").map(|e| e.unwrap().0).collect();
        assert_eq!(keys.len(), 250);
        assert_eq!(keys.first().map(String::as_str), Some("k/000"));
        assert_eq!(keys.last().map(String::as_str), Some("k/249"));
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn compare_and_set_and_json_helpers() {
        testing::reset();
        assert!(state::compare_and_set("c", None, b"1").unwrap());
        assert!(!state::compare_and_set("c", None, b"2").unwrap());
        assert!(state::compare_and_set("c", Some(b"1"), b"2").unwrap());
        state::set_json("j", &vec![1, 2]).unwrap();
        assert_eq!(state::get_json::<Vec<u8>>("j").unwrap(), Some(vec![1, 2]));
        assert_eq!(
            state::get_json::<String>("j").unwrap_err().kind(),
            "invalid"
        );
        assert!(state::delete("j").unwrap());
        assert!(!state::delete("j").unwrap());
    }

    #[test]
    fn log_macros_record_message_and_fields() {
        testing::reset();
        let n = 3;
        crate::info!("stored {n} values"; key = "a", bytes = 10);
        crate::warn!("plain");
        let logs = testing::logs();
        assert_eq!(logs[0].message, "stored 3 values");
        assert_eq!(
            logs[0].fields,
            vec![
                ("key".to_owned(), "a".to_owned()),
                ("bytes".to_owned(), "10".to_owned())
            ]
        );
        assert_eq!(logs[1].level, crate::log::Level::Warn);
        assert!(logs[1].fields.is_empty());
    }

    #[test]
    fn config_deserializes_or_is_invalid() {
        #[derive(serde::Deserialize)]
        struct C {
            n: u32,
        }
        testing::reset();
        testing::set_config(r#"{"n": 4}"#);
        assert_eq!(crate::context::config::<C>().unwrap().n, 4);
        testing::set_config(r#"{"n": "x"}"#);
        assert_eq!(
            crate::context::config::<C>().err().map(|e| e.kind()),
            Some("invalid")
        );
    }
}
