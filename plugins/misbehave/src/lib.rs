//! `misbehave`: a fixture plugin that misbehaves on purpose, so host tests can prove
//! every limit holds and a bad plugin cannot take the host down.
//!
//! Tenant API routes:
//!
//! | Route | Does |
//! |---|---|
//! | `/loop` | spins forever (the CPU deadline must stop it) |
//! | `/alloc` | allocates and touches 1 MiB blocks until allocation fails (the memory cap must stop it) |
//! | `/panic` | panics (a trap, not a host crash) |
//! | `/huge` | streams an endless response body (the response size cap must stop it) |
//! | `/sleep?ms=N` | busy-waits on the monotonic clock for N ms (CPU and wall-clock limits) |
//! | `/ok` | answers 200 `ok` |
//!
//! Every other hook keeps the SDK's default.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use weft_sdk::http::{Request, Response, Router};
use weft_sdk::{Error, Plugin, Result};

/// Size of each block `/alloc` grabs: big enough to reach any cap quickly, small enough
/// that the failing allocation is close to the cap.
pub const ALLOC_BLOCK_BYTES: usize = 1024 * 1024;

/// Wasm page size; `/alloc` writes one byte per page so every page is really committed.
const PAGE_BYTES: usize = 64 * 1024;

/// The plugin.
pub struct Misbehave;

impl Plugin for Misbehave {
    fn handle_api(request: Request) -> Response {
        router().handle(request)
    }
}

weft_sdk::export_plugin!(Misbehave);

/// The tenant API router.
pub fn router() -> Router {
    Router::new()
        .get("/loop", |_, _| spin_forever())
        .get("/alloc", |_, _| allocate_until_failure())
        .get("/panic", |_, _| panic!("misbehave: panicking on purpose"))
        .get("/huge", |_, _| Ok(Response::reader(200, Endless)))
        .get("/sleep", sleep)
        .get("/ok", |_, _| Ok(Response::text(200, "ok")))
}

fn spin_forever() -> Result<Response> {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn allocate_until_failure() -> Result<Response> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // A plain allocation: when the host refuses to grow memory the allocator fails and
        // the guest aborts (a trap), which is what the host must turn into a typed error.
        let mut block = vec![0u8; ALLOC_BLOCK_BYTES];
        for i in (0..block.len()).step_by(PAGE_BYTES) {
            block[i] = 1;
        }
        hoard.push(std::hint::black_box(block));
    }
}

/// An endless body of `x`.
struct Endless;

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(b'x');
        Ok(buf.len())
    }
}

/// Longest `/sleep` accepted: a test needs seconds at most; bounds a typo's damage.
pub const MAX_SLEEP_MS: u64 = 600_000;

fn sleep(req: Request, _: weft_sdk::http::Params) -> Result<Response> {
    let ms = req
        .query_parse::<u64>("ms")?
        .ok_or_else(|| Error::invalid("query parameter `ms` is required"))?;
    if ms > MAX_SLEEP_MS {
        return Err(Error::invalid(format!(
            "`ms` must be at most {MAX_SLEEP_MS}"
        )));
    }
    let start = Instant::now();
    let until = Duration::from_millis(ms);
    let mut spins: u64 = 0;
    while start.elapsed() < until {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
    Ok(Response::json(200, &serde_json::json!({ "slept_ms": ms })))
}

#[cfg(test)]
mod tests {
    use weft_sdk::http::Method;

    use super::*;

    #[test]
    fn ok_sleep_and_huge_behave_as_documented() {
        assert_eq!(
            Misbehave::handle_api(Request::new(Method::Get, "/ok")).status(),
            200
        );
        assert_eq!(
            Misbehave::handle_api(Request::new(Method::Get, "/sleep?ms=1")).status(),
            200
        );
        assert_eq!(
            Misbehave::handle_api(Request::new(Method::Get, "/sleep")).status(),
            400
        );
        let huge = Misbehave::handle_api(Request::new(Method::Get, "/huge"));
        assert_eq!(
            huge.into_body_bytes(100_000).unwrap_err().kind(),
            "limit-exceeded"
        );
    }
}
