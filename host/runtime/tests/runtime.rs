//! The runtime's guarantees, tested with the fixture plugins built from `plugins/`:
//! hot swap under load, limits, isolation between calls, load-time refusals, the
//! precompiled cache and the plugin directory watch.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weft_runtime::config::{CallLimits, RuntimeConfig};
use weft_runtime::grants::Grants;
use weft_runtime::plugin::LoadRequest;
use weft_runtime::runtime::Stats;
use weft_runtime::{
    CallContext, CallErrorKind, Entry, LimitHit, LoadError, LoadedPlugin, Registry, Runtime,
    Services, Tenant,
};

fn config(cache: Option<&std::path::Path>) -> RuntimeConfig {
    let mut c = RuntimeConfig {
        cache_dir: cache.map(|p| p.to_path_buf()),
        ..Default::default()
    };
    // Keep the test pool small: many test processes reserve address space at once.
    c.pool.instances = 64;
    c
}

fn runtime() -> Arc<Runtime> {
    Runtime::new(config(None), Services::in_memory()).unwrap()
}

fn tenant(id: &str) -> Tenant {
    Tenant {
        participant_context_id: id.into(),
        did: format!("did:web:example.com:{id}"),
        bpn: None,
    }
}

fn api_call(tenant_id: &str) -> CallContext {
    let mut call = CallContext::new(tenant(tenant_id), Entry::Api);
    call.grants = Arc::new(Grants {
        state_quota_bytes: 1 << 20,
        ..Grants::default()
    });
    call
}

fn load(rt: &Runtime, plugin: &weft_bundle::Bundled) -> Arc<LoadedPlugin> {
    rt.load(LoadRequest {
        wasm: plugin.wasm,
        manifest: plugin.manifest,
        signature: None,
    })
    .unwrap()
}

/// The v2 build of `hello` (version 2.0.0).
fn hello_v2_manifest() -> String {
    weft_bundle::HELLO_V2.manifest.to_string()
}

async fn request(
    rt: &Arc<Runtime>,
    plugin: Arc<LoadedPlugin>,
    call: CallContext,
    method: &str,
    path: &str,
) -> Result<(u16, String), weft_runtime::CallError> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://plugin{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = rt.handle_http(plugin, call, req).await?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_load_loses_no_call() {
    let rt = runtime();
    let registry = Arc::new(Registry::new(rt.clone()));
    let v1 = registry.insert(load(&rt, &weft_bundle::HELLO)).unwrap();
    let v2 = rt
        .load(LoadRequest {
            wasm: weft_bundle::HELLO_V2.wasm,
            manifest: &hello_v2_manifest(),
            signature: None,
        })
        .unwrap();
    let v2 = registry.insert(v2).unwrap();
    registry.activate("hello", &v1.version()).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (rt, registry, stop, ok) = (rt.clone(), registry.clone(), stop.clone(), ok.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let plugin = registry.active("hello").expect("hello is always active");
                let expected = if plugin.version() == "2.0.0" {
                    "2"
                } else {
                    "1"
                };
                let (status, body) =
                    request(&rt, plugin, api_call(&format!("t{w}")), "GET", "/version")
                        .await
                        .expect("no call fails during a swap");
                assert_eq!(status, 200);
                // Each call sees exactly the version it started on.
                assert_eq!(body.trim().trim_matches('"'), expected, "body {body}");
                seen.push(expected);
                ok.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    for round in 0..20 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let target = if round % 2 == 0 { &v2 } else { &v1 };
        registry.activate("hello", &target.version()).unwrap();
    }
    // Roll back to v1 and keep serving for a moment.
    registry.activate("hello", &v1.version()).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    stop.store(true, Ordering::Relaxed);
    let mut versions = std::collections::BTreeSet::new();
    for w in workers {
        versions.extend(w.await.unwrap());
    }
    assert!(ok.load(Ordering::Relaxed) > 20, "the hammer made calls");
    assert_eq!(
        versions.len(),
        2,
        "both versions served calls: {versions:?}"
    );
    assert_eq!(registry.active("hello").unwrap().version(), v1.version());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loop_is_stopped_and_others_keep_being_served() {
    let rt = runtime();
    let bad = load(&rt, &weft_bundle::MISBEHAVE);
    let good = load(&rt, &weft_bundle::HELLO);
    let mut call = api_call("loopy");
    call.limits = Some(CallLimits {
        cpu_ms: 200,
        wall_ms: 20_000,
        memory_bytes: 64 << 20,
    });
    let looping = tokio::spawn({
        let (rt, bad) = (rt.clone(), bad.clone());
        async move { request(&rt, bad, call, "GET", "/loop").await }
    });
    // While the loop burns its budget, other tenants are served.
    for i in 0..5 {
        let (status, _) = request(
            &rt,
            good.clone(),
            api_call(&format!("other{i}")),
            "GET",
            "/whoami",
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
    }
    let err = looping
        .await
        .unwrap()
        .expect_err("the loop must be stopped");
    assert!(
        matches!(
            err.kind,
            CallErrorKind::Limit(LimitHit::Cpu { limit_ms: 200 })
        ),
        "{err}"
    );
    assert_eq!(err.plugin, "misbehave");
    assert_eq!(err.tenant, "loopy");
    // And the same plugin still serves well-behaved requests afterwards.
    let (status, _) = request(&rt, bad, api_call("loopy"), "GET", "/ok")
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn memory_bomb_hits_its_cap_with_a_typed_error() {
    let rt = runtime();
    let bad = load(&rt, &weft_bundle::MISBEHAVE);
    let mut call = api_call("bomber");
    call.limits = Some(CallLimits {
        memory_bytes: 32 << 20,
        cpu_ms: 10_000,
        wall_ms: 20_000,
    });
    let err = request(&rt, bad, call, "GET", "/alloc")
        .await
        .expect_err("the bomb must fail");
    assert!(
        matches!(err.kind, CallErrorKind::Limit(LimitHit::Memory { limit }) if limit == 32 << 20),
        "{err}"
    );
    assert_eq!(err.tenant, "bomber");
}

#[tokio::test]
async fn a_panic_is_an_error_not_a_crash() {
    let rt = runtime();
    let bad = load(&rt, &weft_bundle::MISBEHAVE);
    let err = request(&rt, bad.clone(), api_call("t"), "GET", "/panic")
        .await
        .expect_err("panics fail the call");
    match &err.kind {
        CallErrorKind::Trap(msg) => assert!(msg.contains("panicked"), "{msg}"),
        other => panic!("expected a trap, got {other}"),
    }
    assert_eq!(Stats::get(&rt.stats().failed_calls), 1);
    let (status, _) = request(&rt, bad, api_call("t"), "GET", "/ok")
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn endless_output_is_cut_by_the_wall_clock() {
    let rt = runtime();
    let bad = load(&rt, &weft_bundle::MISBEHAVE);
    let mut call = api_call("t");
    call.limits = Some(CallLimits {
        memory_bytes: 64 << 20,
        cpu_ms: 60_000,
        wall_ms: 300,
    });
    let req = hyper::Request::builder()
        .uri("http://plugin/huge")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = rt
        .handle_http(bad, call, req)
        .await
        .expect("headers arrive");
    let mut body = resp.into_body();
    let mut received = 0usize;
    let ended_with_error = loop {
        match body.frame().await {
            Some(Ok(frame)) => received += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => break true,
            None => break false,
        }
    };
    assert!(received > 0, "some of the body streamed");
    assert!(
        ended_with_error || received < usize::MAX,
        "the stream ended"
    );
}

#[tokio::test]
async fn calls_never_share_guest_memory() {
    let rt = runtime();
    let hello = load(&rt, &weft_bundle::HELLO);
    let (status, _) = request(
        &rt,
        hello.clone(),
        api_call("tenant-a"),
        "POST",
        "/memory?value=secret-of-a",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    // Same call, same instance: the write is visible within the call (sanity check of
    // the fixture) is not observable from outside; the next call must see nothing.
    for t in ["tenant-b", "tenant-a"] {
        let (status, body) = request(&rt, hello.clone(), api_call(t), "GET", "/memory")
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(!body.contains("secret-of-a"), "{t} read {body}");
    }
}

#[tokio::test]
async fn a_component_that_does_not_fit_the_world_is_refused_by_name() {
    let rt = runtime();
    let err = rt
        .load(LoadRequest {
            wasm: weft_bundle::WRONG_WORLD.wasm,
            manifest: weft_bundle::WRONG_WORLD.manifest,
            signature: None,
        })
        .unwrap_err();
    match err {
        LoadError::WrongWorld(msg) => assert!(msg.contains("weft:missing"), "{msg}"),
        other => panic!("expected WrongWorld, got {other}"),
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_and_disturb_nothing() {
    let rt = runtime();
    let registry = Registry::new(rt.clone());
    let good = registry.insert(load(&rt, &weft_bundle::HELLO)).unwrap();
    registry.activate("hello", &good.version()).unwrap();
    let manifest = weft_bundle::HELLO.manifest;

    let corrupt = b"\0asm not really a component".to_vec();
    let cases: Vec<(Vec<u8>, String, &str)> = vec![
        (
            corrupt,
            manifest.to_string(),
            "not a valid webassembly component",
        ),
        (
            vec![0u8; weft_runtime::config::MAX_COMPONENT_BYTES + 1],
            manifest.to_string(),
            "more than the",
        ),
        (
            weft_bundle::HELLO.wasm.to_vec(),
            "id = ".to_string(),
            "manifest",
        ),
        (
            weft_bundle::HELLO.wasm.to_vec(),
            format!("{manifest}\nsurprise = true\n"),
            "surprise",
        ),
    ];
    for (wasm, manifest, expect) in cases {
        let err = registry
            .install(wasm, manifest, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.to_lowercase().contains(expect),
            "{err} should mention {expect}"
        );
    }
    let active = registry.active("hello").unwrap();
    assert_eq!(active.digest, good.digest);
    let (status, _) = request(&rt, active, api_call("t"), "GET", "/whoami")
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_restart_reuses_the_precompiled_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let first = Runtime::new(config(Some(dir.path())), Services::in_memory()).unwrap();
    let p = load(&first, &weft_bundle::HELLO);
    assert!(!p.from_cache);
    assert_eq!(Stats::get(&first.stats().compiles), 1);
    drop((p, first));

    let second = Runtime::new(config(Some(dir.path())), Services::in_memory()).unwrap();
    let p = load(&second, &weft_bundle::HELLO);
    assert!(p.from_cache);
    assert_eq!(
        Stats::get(&second.stats().compiles),
        0,
        "no recompile after restart"
    );
    assert_eq!(Stats::get(&second.stats().cache_loads), 1);
    let (status, _) = request(&second, p, api_call("t"), "GET", "/whoami")
        .await
        .unwrap();
    assert_eq!(status, 200);

    // A damaged artifact is discarded and rebuilt, never trusted.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = Runtime::new(config(Some(dir.path())), Services::in_memory()).unwrap();
    let p = load(&third, &weft_bundle::HELLO);
    assert!(!p.from_cache);
    assert_eq!(Stats::get(&third.stats().compiles), 1);
}

#[tokio::test]
async fn state_is_scoped_to_the_tenant() {
    let rt = runtime();
    let hello = load(&rt, &weft_bundle::HELLO);
    let (status, _) = request(
        &rt,
        hello.clone(),
        api_call("a"),
        "PUT",
        "/state/k?value=va",
    )
    .await
    .unwrap();
    assert!(status < 300, "{status}");
    let (_, body_a) = request(&rt, hello.clone(), api_call("a"), "GET", "/state/k")
        .await
        .unwrap();
    let (status_b, body_b) = request(&rt, hello.clone(), api_call("b"), "GET", "/state/k")
        .await
        .unwrap();
    assert!(body_a.contains("va"), "{body_a}");
    assert!(
        !body_b.contains("va"),
        "tenant b read {body_b} ({status_b})"
    );
    // Without a state grant the import answers access-denied, not a trap.
    let mut denied = CallContext::new(tenant("a"), Entry::Api);
    denied.grants = Arc::new(Grants::default());
    let (status, body) = request(&rt, hello, denied, "GET", "/state/k")
        .await
        .unwrap();
    assert!(
        body.to_lowercase().contains("access") || status == 403,
        "{status} {body}"
    );
}

#[tokio::test]
async fn the_plugin_directory_is_watched() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let registry = Arc::new(Registry::new(rt.clone()));
    let _watch = weft_runtime::watch::watch_dir(registry.clone(), dir.path().to_path_buf())
        .await
        .unwrap();
    assert!(registry.active("hello").is_none());
    std::fs::write(dir.path().join("hello.wasm"), weft_bundle::HELLO.wasm).unwrap();
    std::fs::write(dir.path().join("hello.toml"), weft_bundle::HELLO.manifest).unwrap();
    let v1 = wait_for(|| registry.active("hello")).await;

    // A broken file leaves the published version alone.
    std::fs::write(
        dir.path().join("broken.toml"),
        "manifest-version = 1\nid = \"broken\"",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"nope").unwrap();
    // A new version replaces the old one.
    std::fs::write(dir.path().join("hello.wasm"), weft_bundle::HELLO_V2.wasm).unwrap();
    std::fs::write(dir.path().join("hello.toml"), hello_v2_manifest()).unwrap();
    let v2 = wait_for(|| registry.active("hello").filter(|p| p.version() == "2.0.0")).await;
    assert_ne!(v1.digest, v2.digest);
    assert!(registry.active("broken").is_none());
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached within 30 s");
}

/// Hook calls must be usable from multi-threaded servers (axum handlers, spawned tasks).
#[allow(dead_code)]
fn calls_are_send(
    rt: &Runtime,
    p: &LoadedPlugin,
    c: CallContext,
    e: weft_runtime::bindings::events::Event,
) {
    fn is_send<T: Send>(_: T) {}
    is_send(rt.lifecycle(p, c.clone(), weft_runtime::LifecycleOp::Enable));
    is_send(rt.event(p, c, e));
}
