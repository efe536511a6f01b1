//! The fixture and app plugins as `wasm32-wasip2` components, embedded for tests and the
//! sandbox.
//!
//! `build.rs` builds every plugin crate under `plugins/` (any directory with a `weft.toml`)
//! into `target/plugins` (feature variants too) and copies them into `OUT_DIR`; nothing built is
//! committed. Adding a plugin: create `plugins/<dir>` with its `weft.toml`, add it to the
//! workspace members, then declare it here with one line
//! (`pub const CCM: Bundled = bundled!("ccm", "ccm/weft.toml", "WEFT_BUNDLE_CCM");`) and,
//! if the sandbox should install it, name it in [`ALL`].

use std::fmt;

/// A plugin component with its manifest.
#[derive(Clone, Copy)]
pub struct Bundled {
    /// The plugin id (as in the manifest).
    pub id: &'static str,
    /// The component bytes.
    pub wasm: &'static [u8],
    /// The `weft.toml` text.
    pub manifest: &'static str,
}

impl fmt::Debug for Bundled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundled")
            .field("id", &self.id)
            .field("wasm", &format_args!("{} bytes", self.wasm.len()))
            .finish_non_exhaustive()
    }
}

/// `bundled!(id, manifest path under plugins/, env var set by build.rs)`.
macro_rules! bundled {
    ($id:literal, $manifest:literal, $env:literal) => {
        Bundled {
            id: $id,
            wasm: include_bytes!(env!($env)),
            manifest: include_str!(concat!("../../", $manifest)),
        }
    };
}

/// The well-behaved fixture, version 0.1.0 (`GET /version` answers `"1"`).
pub const HELLO: Bundled = bundled!("hello", "hello/weft.toml", "WEFT_BUNDLE_HELLO");

/// `hello` built with feature `v2`, version 2.0.0 (`GET /version` answers `"2"`).
pub const HELLO_V2: Bundled = bundled!("hello", "hello/weft-v2.toml", "WEFT_BUNDLE_HELLO_V2");

/// Endless loop, memory bomb, panic, endless output, busy sleep.
pub const MISBEHAVE: Bundled =
    bundled!("misbehave", "misbehave/weft.toml", "WEFT_BUNDLE_MISBEHAVE");

/// A component that imports `weft:missing/thing@0.1.0`: must be refused at load time.
pub const WRONG_WORLD: Bundled = bundled!(
    "wrong-world",
    "wrong-world/weft.toml",
    "WEFT_BUNDLE_WRONG_WORLD"
);

/// The DPS conformance fixture: every http-pull/http-push flow, `async`/`complete` on cue.
pub const DPS_CONFORMANCE: Bundled = bundled!(
    "dps-conformance",
    "dps-conformance/weft.toml",
    "WEFT_BUNDLE_DPS_CONFORMANCE"
);

/// Company Certificate Management (CX-0135 v2.4.0), provider and consumer.
pub const CCM: Bundled = bundled!("ccm", "ccm/weft.toml", "WEFT_BUNDLE_CCM");

/// The plugins the sandbox installs.
pub static ALL: &[Bundled] = &[HELLO, DPS_CONFORMANCE, CCM];

/// The plugins the sandbox installs (same as [`ALL`]).
pub fn all() -> &'static [Bundled] {
    ALL
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The preamble of a component binary (layer 1), as opposed to a core module (layer 0).
    const COMPONENT_PREAMBLE: [u8; 8] = [0x00, b'a', b's', b'm', 0x0d, 0x00, 0x01, 0x00];

    fn manifest_field(b: &Bundled, field: &str) -> String {
        let doc: toml::Table = b.manifest.parse().unwrap();
        doc[field].as_str().unwrap().to_owned()
    }

    #[test]
    fn every_bundle_is_a_component_with_a_matching_manifest() {
        for b in [HELLO, HELLO_V2, MISBEHAVE, WRONG_WORLD] {
            assert_eq!(
                b.wasm.get(..8),
                Some(&COMPONENT_PREAMBLE[..]),
                "{b:?} is not a component"
            );
            assert_eq!(manifest_field(&b, "id"), b.id);
        }
    }

    #[test]
    fn hello_v2_is_a_different_build_and_version() {
        assert_ne!(HELLO.wasm, HELLO_V2.wasm);
        assert_eq!(manifest_field(&HELLO, "version"), "0.1.0");
        assert_eq!(manifest_field(&HELLO_V2, "version"), "2.0.0");
    }

    #[test]
    fn the_sandbox_installs_hello() {
        assert!(all().iter().any(|b| b.id == "hello"));
    }
}
