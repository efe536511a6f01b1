//! `wrong-world`: a fixture component that does not fit the `weft:plugin` world.
//!
//! It is built with raw `wit-bindgen` against `wit/world.wit`, which imports
//! `weft:missing/thing@0.1.0` (no host provides it) and exports only
//! `weft:plugin/lifecycle`. Loading it must fail with a message naming the missing import.

#[allow(unsafe_code, unreachable_pub, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "weft:missing/wrong-world",
        // The contract first (with its WASI deps), then the local package that uses it.
        path: ["../../wit", "wit"],
        generate_all,
        // See sdk-guest: the vendored wasi:cli needs this feature to resolve.
        features: ["clocks-timezone"],
    });
}

use bindings::exports::weft::plugin::lifecycle::Guest;
use bindings::weft::plugin::types::Error;

/// The component's export implementation.
pub struct WrongWorld;

impl Guest for WrongWorld {
    fn on_enable() -> Result<(), Error> {
        // Calls the missing import so the component really imports it.
        let answer = bindings::weft::missing::thing::poke();
        Err(Error::Internal(format!(
            "wrong-world must never be enabled (got {answer})"
        )))
    }

    fn on_disable() -> Result<(), Error> {
        Ok(())
    }

    fn on_upgrade(_previous_version: String) -> Result<(), Error> {
        Ok(())
    }
}

// Only on wasm32: the export names cannot be exported from a native cdylib.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod export {
    use super::{WrongWorld, bindings};
    bindings::export!(WrongWorld with_types_in bindings);
}
