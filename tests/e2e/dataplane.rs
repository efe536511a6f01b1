//! Weft as a tenant's data plane, driven over DPS with the credentials in `sandbox.json`.

use reqwest::Method;
use serde_json::{Value, json};
use weft_tests::TestStack;

const HTTP_PULL: &str = "https://w3id.org/dspace-sig/profile/http-pull";

fn start_message(process: &str, dataset: &str) -> Value {
    json!({
        "messageId": format!("msg-{process}"),
        "participantId": "did:web:localhost:supplier",
        "counterPartyId": "did:web:localhost:oem",
        "dataspaceContext": "sandbox",
        "processId": process,
        "agreementId": "agreement-1",
        "datasetId": dataset,
        "profile": HTTP_PULL,
        "claims": {}
    })
}

fn property<'a>(address: &'a Value, name: &str) -> Option<&'a str> {
    address["endpointProperties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_goes_to_the_app_that_created_its_asset() {
    let t = TestStack::start().await.unwrap();
    let d = t.description().unwrap();
    let http = reqwest::Client::new();
    let dps = d["tenants"]["supplier"]["dps"]
        .as_str()
        .unwrap()
        .to_string();
    let cp_auth = d["weft"]["dpsAuthorization"].as_str().unwrap().to_string();
    let supplier = t.token("supplier");

    // hello creates an asset through Weft's Management API bridge.
    let created = t
        .call(
            Method::POST,
            "/tenants/supplier/apps/hello/mgmt",
            &supplier,
            Some(&json!({"method": "post", "path": "assets", "body": {
                "@context": ["https://w3id.org/edc/connector/management/v2"],
                "@type": "Asset", "@id": "hello-data", "properties": {"name": "hello data"}
            }})),
        )
        .await
        .unwrap();
    assert_eq!(created.1["status"], 200, "{created:?}");

    // The control plane starts a pull on it: hello, its creator, answers (ccm, which would
    // win on dataset selectors alone, refuses assets it did not publish).
    let started = http
        .post(format!("{dps}/dataflows/start"))
        .header("Authorization", &cp_auth)
        .json(&start_message("p-hello", "hello-data"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200, "{}", started.text().await.unwrap());
    let status: Value = started.json().await.unwrap();
    assert_eq!(status["state"], "STARTED");
    let address = &status["dataAddress"];
    assert_eq!(address["@type"], "DataAddress");
    let endpoint = address["endpoint"].as_str().unwrap();
    let token = property(address, "authorization").expect("a pull token");

    // The consumer pulls with the token; the app streams the data.
    let body = http
        .get(format!("{endpoint}?bytes=4096"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.bytes().await.unwrap().len(), 4096);

    // Without the control plane's credentials nothing is accepted.
    let refused = http
        .post(format!("{dps}/dataflows/start"))
        .json(&start_message("p-x", "hello-data"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Terminating revokes the token.
    let terminated = http
        .post(format!("{dps}/dataflows/p-hello/terminate"))
        .header("Authorization", &cp_auth)
        .json(&json!({"messageId": "m-t", "reason": "done"}))
        .send()
        .await
        .unwrap();
    assert_eq!(terminated.status(), 200);
    let after = http
        .get(endpoint)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert!(
        after.status() == 401 || after.status() == 403,
        "{}",
        after.status()
    );
    t.shutdown().await;
}
