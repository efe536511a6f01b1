//! The quickstart: `sandbox.json` alone is enough to act as a tenant or as the operator.

use reqwest::Method;
use serde_json::Value;
use weft_tests::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_json_is_enough_to_drive_weft() {
    let t = TestStack::start().await.unwrap();
    let d = t.description().unwrap();
    let http = reqwest::Client::new();
    let supplier = d["tenants"]["supplier"]["token"].as_str().unwrap();
    let apps_url = d["tenants"]["supplier"]["apps"].as_str().unwrap();

    // A tenant lists its apps and calls one.
    let apps: Value = http
        .get(apps_url)
        .bearer_auth(supplier)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        apps.as_array().unwrap().iter().any(|a| a["app"] == "hello"),
        "{apps}"
    );
    let whoami: Value = http
        .get(format!("{apps_url}/hello/whoami"))
        .bearer_auth(supplier)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(whoami["tenant"]["participantContextId"], "supplier");
    assert_eq!(whoami["tenant"]["bpn"], d["tenants"]["supplier"]["bpn"]);

    // The operator sees the installed plugins.
    let admin = d["adminToken"].as_str().unwrap();
    let plugins: Value = http
        .get(format!("{}/plugins", d["weft"]["admin"].as_str().unwrap()))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(plugins.to_string().contains("hello"), "{plugins}");

    // A tenant token cannot reach another tenant or the admin API.
    let (status, body) = t
        .call(
            Method::GET,
            "/tenants/oem/apps/hello/whoami",
            supplier,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = t
        .call(Method::GET, "/admin/plugins", supplier, None)
        .await
        .unwrap();
    assert_eq!(status, 403);

    // Tokens straight from the identity provider work too (client credentials).
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_id",
            d["tenants"]["oem"]["clientId"].as_str().unwrap(),
        ),
        (
            "client_secret",
            d["tenants"]["oem"]["clientSecret"].as_str().unwrap(),
        ),
        ("scope", "weft:apps"),
    ];
    let token: Value = http
        .post(d["identityProvider"]["token"].as_str().unwrap())
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oem = token["access_token"]
        .as_str()
        .expect("a token from the IdP");
    let (status, body) = t
        .call(Method::GET, "/tenants/oem/apps/hello/whoami", oem, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    t.shutdown().await;
}
