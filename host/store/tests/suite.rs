//! The one storage test suite, run against SQLite (a temp file, always) and PostgreSQL (when
//! `WEFT_TEST_POSTGRES_URL` is set; each test in its own random schema, dropped afterwards).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use weft_store::{
    AuditEntry, AuditFilter, EnablementRecord, PluginVersionRecord, StateLimits, Store, StoreError,
    TenantRecord, now,
};

/// Environment variable naming the PostgreSQL server for the PostgreSQL leg of the suite.
const POSTGRES_URL_VAR: &str = "WEFT_TEST_POSTGRES_URL";

/// Opens the same database again and again (restart), then cleans up.
enum Harness {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl Harness {
    fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.db");
        Harness::Sqlite { _dir: dir, path }
    }

    fn postgres() -> Option<Harness> {
        let url = std::env::var(POSTGRES_URL_VAR).ok()?;
        let schema = format!("weft_test_{}", uuid::Uuid::new_v4().simple());
        Some(Harness::Postgres { url, schema })
    }

    async fn open(&self) -> Store {
        match self {
            Harness::Sqlite { path, .. } => {
                Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                    .await
                    .unwrap()
            }
            Harness::Postgres { url, schema } => {
                Store::connect_with_schema(url, schema).await.unwrap()
            }
        }
    }

    async fn cleanup(&self) {
        if let Harness::Postgres { url, schema } = self {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }
}

type Case = fn(Arc<Harness>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `case` on `harness`, always cleaning up, then re-raises a failure.
async fn run(harness: Harness, case: Case) {
    let harness = Arc::new(harness);
    let outcome = tokio::spawn(case(harness.clone())).await;
    harness.cleanup().await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// One `#[tokio::test]` per backend for each case.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Harness::sqlite(), |h| Box::pin(super::$case(h))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(harness) = super::Harness::postgres() else {
                        eprintln!("skipped: set {} to run the PostgreSQL leg", super::POSTGRES_URL_VAR);
                        return;
                    };
                    super::run(harness, |h| Box::pin(super::$case(h))).await;
                }
            )*
        }
    };
}

suite!(
    restart_restores_everything,
    plugin_versions_and_conflicts,
    activation_and_deletion_rules,
    tenants_and_conflicts,
    enablements_and_foreign_keys,
    state_basics,
    state_quota_and_value_limit,
    state_compare_and_set,
    state_concurrent_cas_counter,
    state_paging,
    state_prefix_is_literal,
    state_tenant_isolation,
    state_unknown_scope,
    audit_ordering_and_paging,
    asset_owners,
    invalid_input,
);

const DIGEST_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const LIMITS: StateLimits = StateLimits {
    max_value_bytes: 1024,
    max_total_bytes: 1 << 20,
};

fn version(plugin: &str, version: &str, digest: &str) -> PluginVersionRecord {
    PluginVersionRecord {
        plugin_id: plugin.into(),
        version: version.into(),
        digest: digest.into(),
        manifest_toml: format!("name = \"{plugin}\"\nversion = \"{version}\"\n"),
        requested_grants_json: r#"{"outbound":["example.com"]}"#.into(),
        component_path: format!("plugins/{digest}.wasm"),
        signed_by: Some("csp-key-1".into()),
        created_at: now(),
    }
}

fn tenant(id: &str) -> TenantRecord {
    TenantRecord {
        id: id.into(),
        did: format!("did:web:{id}.example"),
        bpn: Some(format!("BPNL-{id}")),
        active: true,
        created_at: now(),
    }
}

fn enablement(tenant: &str, plugin: &str, pinned: Option<&str>) -> EnablementRecord {
    EnablementRecord {
        tenant_id: tenant.into(),
        plugin_id: plugin.into(),
        pinned_version: pinned.map(Into::into),
        config_json: format!(r#"{{"tenant":"{tenant}"}}"#),
        narrowed_grants_json: None,
        enabled_at: now(),
    }
}

/// A store with tenants `t1`, `t2` and plugin `app` (version 1.0.0, active) enabled for both.
async fn seeded(h: &Harness) -> Store {
    let store = h.open().await;
    store
        .put_plugin_version(&version("app", "1.0.0", DIGEST_A))
        .await
        .unwrap();
    store
        .set_active_version("app", Some("1.0.0"))
        .await
        .unwrap();
    for t in ["t1", "t2"] {
        store.create_tenant(&tenant(t)).await.unwrap();
        store
            .put_enablement(&enablement(t, "app", None))
            .await
            .unwrap();
    }
    store
}

async fn restart_restores_everything(h: Arc<Harness>) {
    let store = seeded(&h).await;
    let v2 = version("app", "2.0.0", DIGEST_B);
    store.put_plugin_version(&v2).await.unwrap();
    store
        .set_granted("app", r#"{"outbound":["a.example"]}"#)
        .await
        .unwrap();
    store.set_tenant_active("t2", false).await.unwrap();
    let pinned = enablement("t1", "app", Some("2.0.0"));
    store.put_enablement(&pinned).await.unwrap();
    store
        .state_set("t1", "app", "k", b"v1", LIMITS)
        .await
        .unwrap();
    store
        .audit(&AuditEntry {
            actor: "admin".into(),
            action: "plugin.upload".into(),
            target: "plugin/app/2.0.0".into(),
            detail_json: "{}".into(),
        })
        .await
        .unwrap();
    let plugins = store.list_plugins().await.unwrap();
    let tenants = store.list_tenants().await.unwrap();
    let usage = store.state_usage("t1", "app").await.unwrap();
    store.close().await;
    assert!(
        store.list_plugins().await.is_err(),
        "a closed store must not answer"
    );
    assert!(
        store
            .state_set("t1", "app", "late", b"x", LIMITS)
            .await
            .is_err(),
        "a closed store must not write"
    );

    let store = h.open().await;
    assert_eq!(store.list_plugins().await.unwrap(), plugins);
    assert_eq!(plugins[0].active_version.as_deref(), Some("1.0.0"));
    assert_eq!(
        store.get_granted("app").await.unwrap().as_deref(),
        Some(r#"{"outbound":["a.example"]}"#)
    );
    assert_eq!(store.get_version("app", "2.0.0").await.unwrap(), Some(v2));
    assert_eq!(
        store
            .get_active_version("app")
            .await
            .unwrap()
            .unwrap()
            .version,
        "1.0.0"
    );
    assert_eq!(store.list_tenants().await.unwrap(), tenants);
    assert!(!store.get_tenant("t2").await.unwrap().unwrap().active);
    assert_eq!(
        store.get_enablement("t1", "app").await.unwrap(),
        Some(pinned)
    );
    assert_eq!(
        store
            .list_enablements_for_plugin("app")
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store.state_get("t1", "app", "k").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), usage);
    assert_eq!(usage, 3);
    let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "plugin.upload");
    store.close().await;
}

async fn plugin_versions_and_conflicts(h: Arc<Harness>) {
    let store = h.open().await;
    let v1 = version("app", "1.0.0", DIGEST_A);
    assert!(store.put_plugin_version(&v1).await.unwrap());
    assert!(
        !store.put_plugin_version(&v1).await.unwrap(),
        "same digest again is idempotent"
    );
    let err = store
        .put_plugin_version(&version("app", "1.0.0", DIGEST_B))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        store
            .get_version("app", "1.0.0")
            .await
            .unwrap()
            .unwrap()
            .digest,
        DIGEST_A
    );

    let mut v2 = version("app", "2.0.0", DIGEST_B);
    v2.signed_by = None;
    store.put_plugin_version(&v2).await.unwrap();
    store
        .put_plugin_version(&version("other", "0.1.0", DIGEST_A))
        .await
        .unwrap();
    let versions = store.list_versions("app").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions.contains(&v1) && versions.contains(&v2));
    assert!(store.list_versions("nope").await.unwrap().is_empty());
    assert_eq!(store.get_version("app", "3.0.0").await.unwrap(), None);

    let plugins = store.list_plugins().await.unwrap();
    let ids: Vec<_> = plugins.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["app", "other"]);
    assert_eq!(plugins[0].active_version, None, "storing never activates");
    assert_eq!(store.get_active_version("app").await.unwrap(), None);

    assert_eq!(store.get_granted("app").await.unwrap(), None);
    store
        .set_granted("app", r#"{"scopes":["management-api:read"]}"#)
        .await
        .unwrap();
    store.set_granted("app", r#"{"scopes":[]}"#).await.unwrap();
    assert_eq!(
        store.get_granted("app").await.unwrap().as_deref(),
        Some(r#"{"scopes":[]}"#)
    );
    let err = store.set_granted("nope", "{}").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(store.get_granted("nope").await.unwrap(), None);
    store.close().await;
}

async fn activation_and_deletion_rules(h: Arc<Harness>) {
    let store = seeded(&h).await;
    store
        .put_plugin_version(&version("app", "2.0.0", DIGEST_B))
        .await
        .unwrap();

    let err = store
        .set_active_version("app", Some("9.9.9"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store
        .set_active_version("nope", Some("1.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(
        store
            .get_active_version("app")
            .await
            .unwrap()
            .unwrap()
            .version,
        "1.0.0"
    );

    // Upgrade, then roll back: a pointer swap each way.
    store
        .set_active_version("app", Some("2.0.0"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_active_version("app")
            .await
            .unwrap()
            .unwrap()
            .digest,
        DIGEST_B
    );
    store
        .set_active_version("app", Some("1.0.0"))
        .await
        .unwrap();

    let err = store.delete_version("app", "1.0.0").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "active: {err}");

    store
        .put_enablement(&enablement("t1", "app", Some("2.0.0")))
        .await
        .unwrap();
    let err = store.delete_version("app", "2.0.0").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "pinned: {err}");
    assert!(store.get_version("app", "2.0.0").await.unwrap().is_some());

    store
        .put_enablement(&enablement("t1", "app", None))
        .await
        .unwrap();
    store.delete_version("app", "2.0.0").await.unwrap();
    assert_eq!(store.get_version("app", "2.0.0").await.unwrap(), None);
    let err = store.delete_version("app", "2.0.0").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    store.set_active_version("app", None).await.unwrap();
    assert_eq!(store.get_active_version("app").await.unwrap(), None);
    store.delete_version("app", "1.0.0").await.unwrap();
    assert!(store.list_versions("app").await.unwrap().is_empty());
    store.close().await;
}

async fn tenants_and_conflicts(h: Arc<Harness>) {
    let store = h.open().await;
    let b = tenant("b");
    let mut a = tenant("a");
    a.bpn = None;
    store.create_tenant(&b).await.unwrap();
    store.create_tenant(&a).await.unwrap();
    let mut dup = tenant("a");
    dup.did = "did:web:impostor".into();
    let err = store.create_tenant(&dup).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.get_tenant("a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.list_tenants().await.unwrap(), vec![a.clone(), b]);
    assert_eq!(store.get_tenant("c").await.unwrap(), None);

    store.set_tenant_active("a", false).await.unwrap();
    assert!(!store.get_tenant("a").await.unwrap().unwrap().active);
    store.set_tenant_active("a", true).await.unwrap();
    assert!(store.get_tenant("a").await.unwrap().unwrap().active);
    let err = store.set_tenant_active("c", false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    store.close().await;
}

async fn enablements_and_foreign_keys(h: Arc<Harness>) {
    let store = seeded(&h).await;
    store
        .put_plugin_version(&version("other", "0.1.0", DIGEST_B))
        .await
        .unwrap();

    for bad in [
        enablement("ghost", "app", None),
        enablement("t1", "ghost", None),
        enablement("t1", "app", Some("9.9.9")),
        enablement("t1", "other", Some("1.0.0")),
    ] {
        let err = store.put_enablement(&bad).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{bad:?}: {err}");
        assert_eq!(
            store
                .get_enablement(&bad.tenant_id, &bad.plugin_id)
                .await
                .unwrap()
                .map(|e| e.pinned_version),
            if bad.tenant_id == "t1" && bad.plugin_id == "app" {
                Some(None)
            } else {
                None
            },
            "a refused enablement changes nothing"
        );
    }

    // Upsert replaces config, pin and narrowed grants.
    let mut e = enablement("t1", "app", Some("1.0.0"));
    e.config_json = r#"{"threshold":3}"#.into();
    e.narrowed_grants_json = Some(r#"{"outbound":[]}"#.into());
    store.put_enablement(&e).await.unwrap();
    assert_eq!(
        store.get_enablement("t1", "app").await.unwrap(),
        Some(e.clone())
    );
    store
        .put_enablement(&enablement("t1", "other", None))
        .await
        .unwrap();

    let for_t1 = store.list_enablements_for_tenant("t1").await.unwrap();
    let plugins: Vec<_> = for_t1.iter().map(|e| e.plugin_id.as_str()).collect();
    assert_eq!(plugins, ["app", "other"]);
    let for_app = store.list_enablements_for_plugin("app").await.unwrap();
    let tenants: Vec<_> = for_app.iter().map(|e| e.tenant_id.as_str()).collect();
    assert_eq!(tenants, ["t1", "t2"]);
    assert_eq!(for_app[0], e);

    assert!(store.delete_enablement("t2", "app").await.unwrap());
    assert!(!store.delete_enablement("t2", "app").await.unwrap());
    assert_eq!(store.get_enablement("t2", "app").await.unwrap(), None);
    assert_eq!(
        store
            .list_enablements_for_plugin("app")
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
}

async fn state_basics(h: Arc<Harness>) {
    let store = seeded(&h).await;
    assert_eq!(store.state_get("t1", "app", "k").await.unwrap(), None);
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 0);
    store
        .state_set("t1", "app", "k", b"hello", LIMITS)
        .await
        .unwrap();
    assert_eq!(
        store.state_get("t1", "app", "k").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 1 + 5);
    store
        .state_set("t1", "app", "k", b"hi", LIMITS)
        .await
        .unwrap();
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 1 + 2);
    let binary = [0u8, 255, 1, 0];
    store
        .state_set("t1", "app", "bin", &binary, LIMITS)
        .await
        .unwrap();
    assert_eq!(
        store
            .state_get("t1", "app", "bin")
            .await
            .unwrap()
            .as_deref(),
        Some(&binary[..])
    );
    store
        .state_set("t1", "app", "empty", b"", LIMITS)
        .await
        .unwrap();
    assert_eq!(
        store
            .state_get("t1", "app", "empty")
            .await
            .unwrap()
            .as_deref(),
        Some(&b""[..])
    );
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 3 + 7 + 5);

    assert!(store.state_delete("t1", "app", "k").await.unwrap());
    assert!(!store.state_delete("t1", "app", "k").await.unwrap());
    assert!(!store.state_delete("t2", "app", "bin").await.unwrap());
    assert_eq!(store.state_get("t1", "app", "k").await.unwrap(), None);
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 7 + 5);
    store.close().await;
}

async fn state_quota_and_value_limit(h: Arc<Harness>) {
    let store = seeded(&h).await;
    let limits = StateLimits {
        max_value_bytes: 10,
        max_total_bytes: 20,
    };
    // Value limit: 11 bytes refused, nothing stored, 10 bytes fine.
    let err = store
        .state_set("t1", "app", "a", &[7; 11], limits)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
    assert_eq!(store.state_get("t1", "app", "a").await.unwrap(), None);
    store
        .state_set("t1", "app", "a", &[1; 10], limits)
        .await
        .unwrap();
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 11);

    // Total: 11 + (1 + 9) = 21 > 20, refused, nothing changed.
    let err = store
        .state_set("t1", "app", "b", &[2; 9], limits)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
    assert_eq!(store.state_get("t1", "app", "b").await.unwrap(), None);
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 11);
    // Exactly at the quota is fine.
    store
        .state_set("t1", "app", "b", &[2; 8], limits)
        .await
        .unwrap();
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 20);

    // Overwriting an existing value counts only the difference: 20 stays 20.
    store
        .state_set("t1", "app", "a", &[3; 10], limits)
        .await
        .unwrap();
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 20);
    // Growing an existing value over the quota is refused and changes nothing.
    let err = store
        .state_set("t1", "app", "b", &[2; 9], limits)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
    assert_eq!(
        store.state_get("t1", "app", "b").await.unwrap().unwrap(),
        vec![2; 8],
        "over-limit overwrite changes nothing"
    );
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 20);
    // Shrinking is allowed even when the quota was lowered below the usage.
    let lowered = StateLimits {
        max_total_bytes: 5,
        ..limits
    };
    store
        .state_set("t1", "app", "a", &[4; 2], lowered)
        .await
        .unwrap();
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 3 + 9);
    // CAS respects the limits too.
    let err = store
        .state_compare_and_set("t1", "app", "c", None, &[5; 9], limits)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
    assert_eq!(store.state_get("t1", "app", "c").await.unwrap(), None);

    // The other tenant's quota is separate.
    store
        .state_set("t2", "app", "a", &[1; 10], limits)
        .await
        .unwrap();
    assert_eq!(store.state_usage("t2", "app").await.unwrap(), 11);
    // Deleting frees the bytes.
    assert!(store.state_delete("t1", "app", "b").await.unwrap());
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 3);
    store
        .state_set("t1", "app", "c", &[5; 9], limits)
        .await
        .unwrap();
    store.close().await;
}

async fn state_compare_and_set(h: Arc<Harness>) {
    let store = seeded(&h).await;
    // Expecting absence on an absent key stores.
    assert!(
        store
            .state_compare_and_set("t1", "app", "k", None, b"1", LIMITS)
            .await
            .unwrap()
    );
    // Expecting absence on a present key refuses.
    assert!(
        !store
            .state_compare_and_set("t1", "app", "k", None, b"x", LIMITS)
            .await
            .unwrap()
    );
    // Wrong expected value refuses, right one stores.
    assert!(
        !store
            .state_compare_and_set("t1", "app", "k", Some(b"0"), b"x", LIMITS)
            .await
            .unwrap()
    );
    assert_eq!(
        store.state_get("t1", "app", "k").await.unwrap().unwrap(),
        b"1"
    );
    assert!(
        store
            .state_compare_and_set("t1", "app", "k", Some(b"1"), b"22", LIMITS)
            .await
            .unwrap()
    );
    assert_eq!(
        store.state_get("t1", "app", "k").await.unwrap().unwrap(),
        b"22"
    );
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 3);
    // Expecting a value on an absent key refuses.
    assert!(
        !store
            .state_compare_and_set("t1", "app", "nope", Some(b""), b"x", LIMITS)
            .await
            .unwrap()
    );
    assert_eq!(store.state_get("t1", "app", "nope").await.unwrap(), None);
    // Empty value is a value, distinct from absence.
    store
        .state_set("t1", "app", "e", b"", LIMITS)
        .await
        .unwrap();
    assert!(
        !store
            .state_compare_and_set("t1", "app", "e", None, b"x", LIMITS)
            .await
            .unwrap()
    );
    assert!(
        store
            .state_compare_and_set("t1", "app", "e", Some(b""), b"x", LIMITS)
            .await
            .unwrap()
    );
    store.close().await;
}

async fn state_concurrent_cas_counter(h: Arc<Harness>) {
    const TASKS: u64 = 20;
    let store = seeded(&h).await;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                let current = store.state_get("t1", "app", "counter").await.unwrap();
                let n = current
                    .as_deref()
                    .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                let next = (n + 1).to_be_bytes();
                if store
                    .state_compare_and_set(
                        "t1",
                        "app",
                        "counter",
                        current.as_deref(),
                        &next,
                        LIMITS,
                    )
                    .await
                    .unwrap()
                {
                    return attempts;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut attempts = 0;
    for task in tasks {
        attempts += task.await.unwrap();
    }
    let value = store
        .state_get("t1", "app", "counter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u64::from_be_bytes(value.try_into().unwrap()), TASKS);
    assert!(attempts >= 20);
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 7 + 8);
    store.close().await;
}

async fn state_paging(h: Arc<Harness>) {
    let store = seeded(&h).await;
    let keys: Vec<String> = (0..25).map(|i| format!("item/{i:03}")).collect();
    // Insert out of order; listing must come back in byte order.
    for key in keys.iter().rev() {
        store
            .state_set("t1", "app", key, key.as_bytes(), LIMITS)
            .await
            .unwrap();
    }
    store
        .state_set("t1", "app", "itel", b"x", LIMITS)
        .await
        .unwrap();
    store
        .state_set("t1", "app", "item0", b"x", LIMITS)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = store
            .state_list("t1", "app", "item/", cursor.clone(), 10)
            .await
            .unwrap();
        pages += 1;
        assert!(page.len() <= 10);
        for (key, value) in &page {
            assert_eq!(key.as_bytes(), &value[..]);
        }
        seen.extend(page.into_iter().map(|(k, _)| k));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, keys);

    // An exact page leaves no cursor.
    let (page, next) = store
        .state_list("t1", "app", "item/00", None, 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(next, None);

    // Empty prefix lists everything, in byte order.
    let (all, next) = store.state_list("t1", "app", "", None, 100).await.unwrap();
    assert_eq!(next, None);
    let all: Vec<_> = all.into_iter().map(|(k, _)| k).collect();
    let mut expected = keys.clone();
    expected.extend(["itel".to_owned(), "item0".to_owned()]);
    expected.sort();
    assert_eq!(all, expected);

    // Byte order, not a locale's: uppercase before lowercase, 'é' after 'z'.
    for key in ["o/b", "o/B", "o/é", "o/z", "o/a"] {
        store
            .state_set("t2", "app", key, b"", LIMITS)
            .await
            .unwrap();
    }
    let (page, _) = store.state_list("t2", "app", "o/", None, 10).await.unwrap();
    let order: Vec<_> = page.into_iter().map(|(k, _)| k).collect();
    assert_eq!(order, ["o/B", "o/a", "o/b", "o/z", "o/é"]);

    let err = store
        .state_list("t1", "app", "", None, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    store.close().await;
}

async fn state_prefix_is_literal(h: Arc<Harness>) {
    let store = seeded(&h).await;
    for key in ["a%b", "a%c", "axb", "a_1", "ab1", "a\\x", "a", "b"] {
        store
            .state_set("t1", "app", key, b"v", LIMITS)
            .await
            .unwrap();
    }
    let list = |prefix: &'static str| {
        let store = store.clone();
        async move {
            let (page, _) = store
                .state_list("t1", "app", prefix, None, 100)
                .await
                .unwrap();
            page.into_iter().map(|(k, _)| k).collect::<Vec<_>>()
        }
    };
    assert_eq!(list("a%").await, ["a%b", "a%c"]);
    assert_eq!(list("a_").await, ["a_1"]);
    assert_eq!(list("a\\").await, ["a\\x"]);
    assert_eq!(list("%").await, Vec::<String>::new());
    assert_eq!(list("a").await.len(), 7);
    store.close().await;
}

async fn state_tenant_isolation(h: Arc<Harness>) {
    let store = seeded(&h).await;
    store
        .put_plugin_version(&version("other", "0.1.0", DIGEST_B))
        .await
        .unwrap();
    store
        .state_set("t1", "app", "shared", b"one", LIMITS)
        .await
        .unwrap();
    store
        .state_set("t2", "app", "shared", b"two", LIMITS)
        .await
        .unwrap();
    store
        .state_set("t1", "other", "shared", b"three", LIMITS)
        .await
        .unwrap();
    assert_eq!(
        store
            .state_get("t1", "app", "shared")
            .await
            .unwrap()
            .unwrap(),
        b"one"
    );
    assert_eq!(
        store
            .state_get("t2", "app", "shared")
            .await
            .unwrap()
            .unwrap(),
        b"two"
    );
    assert_eq!(
        store
            .state_get("t1", "other", "shared")
            .await
            .unwrap()
            .unwrap(),
        b"three"
    );

    assert!(store.state_delete("t2", "app", "shared").await.unwrap());
    assert_eq!(
        store
            .state_get("t1", "app", "shared")
            .await
            .unwrap()
            .unwrap(),
        b"one"
    );
    assert!(
        !store
            .state_compare_and_set("t2", "app", "shared", Some(b"one"), b"stolen", LIMITS)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .state_get("t1", "app", "shared")
            .await
            .unwrap()
            .unwrap(),
        b"one"
    );
    let (page, _) = store.state_list("t2", "app", "", None, 100).await.unwrap();
    assert!(page.is_empty());
    let (page, _) = store.state_list("t1", "app", "", None, 100).await.unwrap();
    assert_eq!(page, vec![("shared".to_owned(), b"one".to_vec())]);
    assert_eq!(store.state_usage("t2", "app").await.unwrap(), 0);
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 6 + 3);
    store.close().await;
}

async fn state_unknown_scope(h: Arc<Harness>) {
    let store = seeded(&h).await;
    for (t, p) in [("ghost", "app"), ("t1", "ghost")] {
        let err = store.state_set(t, p, "k", b"v", LIMITS).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        let err = store
            .state_compare_and_set(t, p, "k", None, b"v", LIMITS)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        assert_eq!(store.state_get(t, p, "k").await.unwrap(), None);
        assert!(!store.state_delete(t, p, "k").await.unwrap());
    }
    store.close().await;
}

async fn audit_ordering_and_paging(h: Arc<Harness>) {
    let store = h.open().await;
    let before = now();
    let mut ids = Vec::new();
    for (i, target) in [
        "plugin/app",
        "tenant/t1",
        "plugin/app_x",
        "plugin/app",
        "plugin%",
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(
            store
                .audit(&AuditEntry {
                    actor: "admin".into(),
                    action: format!("action{i}"),
                    target: target.into(),
                    detail_json: format!(r#"{{"i":{i}}}"#),
                })
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    let actions: Vec<_> = all.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["action4", "action3", "action2", "action1", "action0"]
    );
    assert!(all.iter().all(|r| r.at >= before && r.at <= now()));
    assert_eq!(all[4].detail_json, r#"{"i":0}"#);
    assert_eq!(all[4].target, "plugin/app");

    // Paging by id.
    let page1 = store
        .list_audit(&AuditFilter {
            limit: 2,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let page2 = store
        .list_audit(&AuditFilter {
            limit: 2,
            before_id: Some(page1[1].id),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page1, all[..2]);
    assert_eq!(page2, all[2..4]);

    // Prefix on the target, literally.
    let by_target = |prefix: &str| {
        let store = store.clone();
        let prefix = prefix.to_owned();
        async move {
            store
                .list_audit(&AuditFilter {
                    target_prefix: Some(prefix),
                    ..AuditFilter::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.action)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by_target("plugin/app").await,
        ["action3", "action2", "action0"]
    );
    assert_eq!(by_target("plugin/app_").await, ["action2"]);
    assert_eq!(by_target("plugin%").await, ["action4"]);
    assert_eq!(by_target("tenant/").await, ["action1"]);
    assert!(by_target("x").await.is_empty());
    store.close().await;
}

async fn invalid_input(h: Arc<Harness>) {
    let store = seeded(&h).await;
    let invalid = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    let mut bad_digest = version("app", "3.0.0", "ABC");
    assert!(invalid(
        store.put_plugin_version(&bad_digest).await.map(|_| ())
    ));
    bad_digest.digest = DIGEST_B.into();
    bad_digest.requested_grants_json = "not json".into();
    assert!(invalid(
        store.put_plugin_version(&bad_digest).await.map(|_| ())
    ));
    assert!(invalid(
        store
            .put_plugin_version(&version("", "1", DIGEST_A))
            .await
            .map(|_| ())
    ));
    assert!(invalid(store.set_granted("app", "{").await));
    assert!(invalid(store.create_tenant(&tenant("a\0b")).await));
    assert!(invalid(store.get_tenant("a\0b").await.map(|_| ())));
    assert!(invalid(
        store.state_set("t1", "app", "", b"v", LIMITS).await
    ));
    assert!(invalid(
        store.state_set("t1", "app", "k\0", b"v", LIMITS).await
    ));
    let long_key = "k".repeat(weft_store::MAX_STATE_KEY_BYTES + 1);
    assert!(invalid(
        store.state_set("t1", "app", &long_key, b"v", LIMITS).await
    ));
    assert!(invalid(
        store
            .state_list("t1", "app", "\0", None, 1)
            .await
            .map(|_| ())
    ));
    let mut bad_config = enablement("t1", "app", None);
    bad_config.config_json = "{".into();
    assert!(invalid(store.put_enablement(&bad_config).await));
    assert!(invalid(
        store
            .audit(&AuditEntry {
                actor: "a".into(),
                action: "b".into(),
                target: "c".into(),
                detail_json: "nope".into(),
            })
            .await
            .map(|_| ())
    ));
    // Nothing of the above reached the database.
    assert_eq!(store.list_versions("app").await.unwrap().len(), 1);
    assert_eq!(store.list_tenants().await.unwrap().len(), 2);
    assert_eq!(store.state_usage("t1", "app").await.unwrap(), 0);
    assert!(
        store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

#[tokio::test]
async fn memory_url_keeps_one_database() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.create_tenant(&tenant("m")).await.unwrap();
    // Several calls in parallel must all see the same in-memory database.
    let (a, b) = tokio::join!(store.get_tenant("m"), store.list_tenants());
    assert!(a.unwrap().is_some());
    assert_eq!(b.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn rejects_unknown_urls_and_sqlite_schema() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        Store::connect_with_schema("sqlite::memory:", "s").await,
        Err(StoreError::Invalid(_))
    ));
    if let Ok(url) = std::env::var(POSTGRES_URL_VAR) {
        assert!(matches!(
            Store::connect_with_schema(&url, "bad\"name").await,
            Err(StoreError::Invalid(_))
        ));
    }
}

async fn asset_owners(h: Arc<Harness>) {
    let store = h.open().await;
    assert_eq!(store.asset_owner("t1", "a1").await.unwrap(), None);
    store.set_asset_owner("t1", "a1", "ccm").await.unwrap();
    store.set_asset_owner("t2", "a1", "hello").await.unwrap();
    assert_eq!(
        store.asset_owner("t1", "a1").await.unwrap().as_deref(),
        Some("ccm")
    );
    assert_eq!(
        store.asset_owner("t2", "a1").await.unwrap().as_deref(),
        Some("hello"),
        "owners are per tenant"
    );
    store.set_asset_owner("t1", "a1", "other").await.unwrap();
    assert_eq!(
        store.asset_owner("t1", "a1").await.unwrap().as_deref(),
        Some("other"),
        "the latest creator wins"
    );
    assert!(store.delete_asset_owner("t1", "a1").await.unwrap());
    assert!(!store.delete_asset_owner("t1", "a1").await.unwrap());
    assert_eq!(store.asset_owner("t1", "a1").await.unwrap(), None);
    assert_eq!(
        store.asset_owner("t2", "a1").await.unwrap().as_deref(),
        Some("hello")
    );
}
