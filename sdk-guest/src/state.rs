//! Durable key-value state scoped to (tenant, plugin): the `weft:plugin/state` import.
//!
//! Values are small (the host caps value size and the tenant's total); bulk data belongs
//! in flows.
//!
//! ```no_run
//! use weft_sdk::state;
//!
//! state::set("greeting", b"hello")?;
//! assert_eq!(state::get("greeting")?.as_deref(), Some(&b"hello"[..]));
//! state::set_json("seen", &vec!["a", "b"])?;
//! for entry in state::list("se") {
//!     let (key, value) = entry?;
//!     weft_sdk::info!("{key} = {} bytes", value.len());
//! }
//! // Optimistic update: only succeeds if nobody changed the value meanwhile.
//! let swapped = state::compare_and_set("greeting", Some(b"hello"), b"bye")?;
//! # let _ = swapped;
//! # Ok::<(), weft_sdk::Error>(())
//! ```

use std::collections::VecDeque;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, backend};

/// Entries fetched per `list` round trip; the host may cap it lower. Large enough to keep
/// round trips few, small enough that one page stays a small allocation.
pub const PAGE_SIZE: u32 = 100;

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Keys and values, in key order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// Pass to the next [`list_page`] call to continue; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Reads a value; `None` when absent.
pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
    backend::active::state_get(key)
}

/// Writes a value. [`Error::LimitExceeded`] when the value or the tenant's quota is too large.
pub fn set(key: &str, value: &[u8]) -> Result<()> {
    backend::active::state_set(key, value)
}

/// Deletes a value; returns whether it existed.
pub fn delete(key: &str) -> Result<bool> {
    backend::active::state_delete(key)
}

/// Sets `key` to `new` only if its current value is `expected` (`None` = absent).
/// Returns `false`, changing nothing, when the current value differs.
pub fn compare_and_set(key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool> {
    backend::active::state_compare_and_set(key, expected, new)
}

/// Reads a JSON value; `None` when absent, [`Error::Invalid`] when it is not a `T`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Invalid(format!("state value `{key}` is not the expected JSON: {e}"))
        }),
    }
}

/// Writes a value as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::Internal(format!("serializing state value `{key}`: {e}")))?;
    set(key, &bytes)
}

/// Fetches one page of keys starting with `prefix`.
pub fn list_page(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page> {
    backend::active::state_list(prefix, cursor, limit)
}

/// Iterates over all entries whose key starts with `prefix`, in key order, fetching
/// [`PAGE_SIZE`] entries per round trip. An error ends the iteration after being yielded.
pub fn list(prefix: &str) -> List {
    List {
        prefix: prefix.to_owned(),
        cursor: None,
        buffered: VecDeque::new(),
        done: false,
    }
}

/// Iterator returned by [`list`].
#[derive(Debug)]
pub struct List {
    prefix: String,
    cursor: Option<String>,
    buffered: VecDeque<(String, Vec<u8>)>,
    done: bool,
}

impl Iterator for List {
    type Item = Result<(String, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.buffered.pop_front() {
                return Some(Ok(entry));
            }
            if self.done {
                return None;
            }
            match list_page(&self.prefix, self.cursor.as_deref(), PAGE_SIZE) {
                Ok(page) => {
                    self.buffered.extend(page.entries);
                    // A page without a cursor is the last one; so is an empty page (guards
                    // against a host that keeps handing out cursors without entries).
                    self.done = page.next_cursor.is_none() || self.buffered.is_empty();
                    self.cursor = page.next_cursor;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
