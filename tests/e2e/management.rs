//! Issue 5 through the whole stack: an app calls the Management API as its tenant, through
//! Weft's bridge, against the stand-in control plane.

use reqwest::Method;
use serde_json::{Value, json};
use weft_tests::TestStack;

async fn mgmt(t: &TestStack, tenant: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let token = t.token(tenant);
    let (status, out) = t
        .call(
            Method::POST,
            &format!("/tenants/{tenant}/apps/hello/mgmt"),
            &token,
            Some(&json!({"method": method, "path": path, "body": body})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{out}");
    out
}

fn asset(id: &str) -> Value {
    json!({
        "@context": ["https://w3id.org/edc/connector/management/v2"],
        "@type": "Asset",
        "@id": id,
        "properties": {"name": id}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_manages_only_its_own_resources() {
    let t = TestStack::start().await.unwrap();
    for tenant in ["supplier", "oem"] {
        let created = mgmt(
            &t,
            tenant,
            "post",
            "assets",
            Some(asset(&format!("{tenant}-asset"))),
        )
        .await;
        assert_eq!(created["status"], 200, "{created}");
        assert_eq!(created["body"]["@id"], format!("{tenant}-asset"));
        // Creating it again is a conflict the app can treat as "exists".
        let again = mgmt(
            &t,
            tenant,
            "post",
            "assets",
            Some(asset(&format!("{tenant}-asset"))),
        )
        .await;
        assert_eq!(again["status"], 409, "{again}");
    }
    let listed = mgmt(&t, "supplier", "post", "assets/request", Some(json!({"@context": ["https://w3id.org/edc/connector/management/v2"], "@type": "QuerySpec"}))).await;
    let ids: Vec<String> = listed["body"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|a| a["@id"].as_str().map(String::from))
        .collect();
    assert!(ids.contains(&"supplier-asset".to_string()), "{listed}");
    assert!(
        !ids.contains(&"oem-asset".to_string()),
        "the supplier sees the OEM's asset: {listed}"
    );
    // Every request reached the control plane under the caller's own context.
    for r in t.stack.dataspace.control_plane().requests() {
        if r.path.contains("/participants/oem/") {
            assert!(!r.body.contains("supplier-asset"), "{r:?}");
        }
    }
    // A path that leaves the tenant scope never leaves Weft.
    let escaped = mgmt(&t, "supplier", "get", "../oem/assets", None).await;
    assert_eq!(escaped["error"], "invalid", "{escaped}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_grant_refuses_writes_before_the_control_plane() {
    let t = TestStack::start().await.unwrap();
    let admin = t.stack.description["adminToken"]
        .as_str()
        .unwrap()
        .to_string();
    // The tenant narrows hello to read-only management access.
    let (status, body) = t
        .call(
            Method::PUT,
            "/admin/tenants/oem/apps/hello",
            &admin,
            Some(&json!({"grants": {"management": ["management-api:read"], "state-quota-bytes": 1024}})),
        )
        .await
        .unwrap();
    assert!(status < 300, "{status} {body}");
    t.stack.dataspace.control_plane().clear_requests();
    let refused = mgmt(&t, "oem", "post", "assets", Some(asset("not-allowed"))).await;
    assert_eq!(refused["error"], "access-denied", "{refused}");
    assert!(
        t.stack
            .dataspace
            .control_plane()
            .requests()
            .iter()
            .all(|r| !r.body.contains("not-allowed")),
        "the write reached the control plane"
    );
    // Reads still work.
    let read = mgmt(
        &t,
        "oem",
        "post",
        "assets/request",
        Some(json!({"@type": "QuerySpec"})),
    )
    .await;
    assert_eq!(read["status"], 200, "{read}");
    t.shutdown().await;
}
