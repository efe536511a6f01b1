//! `log`: guest log records into the host's `tracing` output, tagged and bounded.

use crate::bindings::weft::plugin::log::{Host, Level};
use crate::bindings::weft::plugin::types::Property;
use crate::call::HostState;
use crate::config::{MAX_LOG_FIELDS, MAX_LOG_MESSAGE_BYTES};

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Host for HostState {
    async fn write(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<Property>,
    ) -> wasmtime::Result<()> {
        let message = cut(&message, MAX_LOG_MESSAGE_BYTES);
        let fields: Vec<String> = fields
            .iter()
            .take(MAX_LOG_FIELDS)
            .map(|p| format!("{}={}", cut(&p.name, 64), cut(&p.value, 512)))
            .collect();
        let fields = fields.join(" ");
        let call = &self.call;
        let tenant = call.tenant.participant_context_id.as_str();
        let plugin = call.plugin_id.as_str();
        let flow = call.flow_id().unwrap_or("");
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "weft::plugin", tenant, plugin, flow, fields = %fields, "{message}")
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error => emit!(error),
        }
        Ok(())
    }
}
