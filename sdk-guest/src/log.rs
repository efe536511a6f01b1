//! Structured logging into the host's log: the `weft:plugin/log` import.
//!
//! The host tags every record with tenant, plugin and flow, and caps sizes and rate. The
//! macros take a format string, then optionally `;` and `key = value` fields (any
//! `Display` value):
//!
//! ```no_run
//! let key = "greeting";
//! weft_sdk::info!("stored {key}");
//! weft_sdk::warn!("value too large"; key = key, bytes = 70_000);
//! weft_sdk::log::write(weft_sdk::log::Level::Debug, "raw", &[("k", "v")]);
//! ```

use serde::{Deserialize, Serialize};

use crate::backend;

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes one log record with `fields` as name/value pairs.
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    backend::active::log_write(level, message, fields);
}

/// Writes an `info` record.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write(Level::Info, message, fields);
}

/// Writes a `warn` record.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write(Level::Warn, message, fields);
}

/// Writes an `error` record.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    write(Level::Error, message, fields);
}

/// Writes a `debug` record.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    write(Level::Debug, message, fields);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log {
    ($level:expr, $fmt:literal $(, $arg:expr)* ; $($key:ident = $value:expr),+ $(,)?) => {
        $crate::log::write(
            $level,
            &::std::format!($fmt $(, $arg)*),
            &[$((::core::stringify!($key), &*::std::string::ToString::to_string(&$value))),+],
        )
    };
    ($level:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::log::write($level, &::std::format!($fmt $(, $arg)*), &[])
    };
}

/// Logs at `trace` level: `trace!("fmt", args...; key = value, ...)`.
#[macro_export]
macro_rules! trace {
    ($($t:tt)+) => { $crate::__weft_log!($crate::log::Level::Trace, $($t)+) };
}

/// Logs at `debug` level: `debug!("fmt", args...; key = value, ...)`.
#[macro_export]
macro_rules! debug {
    ($($t:tt)+) => { $crate::__weft_log!($crate::log::Level::Debug, $($t)+) };
}

/// Logs at `info` level: `info!("fmt", args...; key = value, ...)`.
#[macro_export]
macro_rules! info {
    ($($t:tt)+) => { $crate::__weft_log!($crate::log::Level::Info, $($t)+) };
}

/// Logs at `warn` level: `warn!("fmt", args...; key = value, ...)`.
#[macro_export]
macro_rules! warn {
    ($($t:tt)+) => { $crate::__weft_log!($crate::log::Level::Warn, $($t)+) };
}

/// Logs at `error` level: `error!("fmt", args...; key = value, ...)`.
#[macro_export]
macro_rules! error {
    ($($t:tt)+) => { $crate::__weft_log!($crate::log::Level::Error, $($t)+) };
}
