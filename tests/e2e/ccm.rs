//! Issue 7 through the whole stack: the CCM demo of ccm.md §9.4 (steps 1 to 7) between two
//! tenants of one Weft, the supplier and the OEM, over real HTTP against the stand-in.
//!
//! Each test starts its own stack, so a failure names the step that broke.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use weft_tests::{TestStack, base64, pdf, sha256_hex};

const SUPPLIER: &str = "BPNL00000000SUPP";
const OEM: &str = "BPNL000000000OEM";
const SITE_1: &str = "BPNS000000000001";
const SITE_2: &str = "BPNA000000000002";

const TAXO: &str = "https://w3id.org/catenax/taxonomy#";
const DCT_TYPE: &str = "http://purl.org/dc/terms/type";
const DCT_SUBJECT: &str = "http://purl.org/dc/terms/subject";
const DCT_CERTIFICATE_TYPE: &str = "http://purl.org/dc/terms/certificateType";
const DCT_ENCLOSED_SITES: &str = "http://purl.org/dc/terms/enclosedSites";
const CX_VERSION: &str = "https://w3id.org/catenax/ontology/common#version";
const SEMANTIC_ID: &str = "https://admin-shell.io/aas/3/0/HasSemantics/semanticId";
const BPC_3_1: &str =
    "urn:samm:io.catenax.business_partner_certificate:3.1.0#BusinessPartnerCertificate";
const CCMAPI_ASSET: &str = "ccm-notification-api";

/// The CCM usage policy of ccm.md §5, as `(leftOperand, operator, rightOperand)`.
fn ccm_usage() -> Vec<(String, String, String)> {
    vec![
        (
            "FrameworkAgreement".into(),
            "eq".into(),
            "DataExchangeGovernance:1.0".into(),
        ),
        (
            "UsagePurpose".into(),
            "isAnyOf".into(),
            "cx.ccm.base:1".into(),
        ),
    ]
}

/// Calls a tenant's CCM app; panics on transport errors only.
async fn ccm(
    t: &TestStack,
    tenant: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    t.app(tenant, "ccm", method, path, body.as_ref())
        .await
        .unwrap()
}

/// A BusinessPartnerCertificate 3.1.0 upload (the BPNL and the document id are left to the
/// provider's defaults).
fn certificate(code: &str, sites: &[&str], pdf: &[u8]) -> Value {
    json!({
        "type": {"certificateType": code, "certificateVersion": "2015"},
        "registrationNumber": format!("REG-{code}-0001"),
        "enclosedSites": sites.iter().map(|s| json!({"enclosedSiteBpn": s})).collect::<Vec<_>>(),
        "validFrom": "2024-01-01",
        "validUntil": "9999-12-31",
        "trustLevel": "none",
        "issuer": {"issuerName": "TÜV Demo"},
        "document": {"contentType": "application/pdf", "contentBase64": base64(pdf)}
    })
}

/// The supplier uploads a certificate; returns its record.
async fn upload(t: &TestStack, code: &str, sites: &[&str], pdf: &[u8]) -> Value {
    let (status, record) = ccm(
        t,
        "supplier",
        Method::POST,
        "/certificates",
        Some(certificate(code, sites, pdf)),
    )
    .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["pdf"]["sha256"], sha256_hex(pdf), "{record}");
    record
}

/// The supplier publishes a certificate; returns the asset id (the `documentId`).
async fn publish(t: &TestStack, cert_id: &str) -> String {
    let started = Instant::now();
    let (status, record) = ccm(
        t,
        "supplier",
        Method::POST,
        &format!("/certificates/{cert_id}/publish"),
        None,
    )
    .await;
    eprintln!("ccm publish through the stack: {:?}", started.elapsed());
    assert_eq!(status, 201, "{record}");
    record["assetId"]
        .as_str()
        .expect("a published certificate has an asset id")
        .to_string()
}

/// The supplier's share of `cert_id` with the OEM.
async fn oem_share(t: &TestStack, cert_id: &str) -> Value {
    let (status, shares) = ccm(
        t,
        "supplier",
        Method::GET,
        &format!("/shares?certificateId={cert_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shares}");
    let shares = shares.as_array().cloned().unwrap_or_default();
    assert_eq!(shares.len(), 1, "{shares:?}");
    assert_eq!(shares[0]["consumerBpn"], OEM);
    shares[0].clone()
}

/// How many certificates a tenant received.
async fn received_count(t: &TestStack, tenant: &str) -> usize {
    let (status, list) = ccm(t, tenant, Method::GET, "/received", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().map_or(0, Vec::len)
}

/// A JSON-LD value as IRIs or texts (a string, `{"@id"}`, `{"@value"}` or a list of them).
fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(texts).collect(),
        Value::Object(o) => o
            .get("@id")
            .or_else(|| o.get("@value"))
            .map(texts)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The last segment of an ODRL term (`cx-policy:UsagePurpose`, a full IRI or a short name).
fn local(term: &str) -> String {
    term.rsplit(['/', '#', ':'])
        .next()
        .unwrap_or(term)
        .to_string()
}

/// Every atomic constraint of an offer's permissions, flattened through `and`, sorted.
fn constraints(offer: &Value) -> Vec<(String, String, String)> {
    fn walk(c: &Value, out: &mut Vec<(String, String, String)>) {
        match c {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(o) => {
                if let Some(inner) = o.get("and").or_else(|| o.get("odrl:and")) {
                    return walk(inner, out);
                }
                let get = |name: &str| {
                    o.get(name)
                        .or_else(|| o.get(&format!("odrl:{name}")))
                        .map(texts)
                        .unwrap_or_default()
                        .join(",")
                };
                out.push((
                    local(&get("leftOperand")),
                    local(&get("operator")),
                    get("rightOperand"),
                ));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for p in offer["permission"].as_array().into_iter().flatten() {
        walk(&p["constraint"], &mut out);
    }
    out.sort();
    out
}

/// The datasets of a catalog.
fn datasets(catalog: &Value) -> Vec<Value> {
    match &catalog["dataset"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// The single offer of a dataset, checked to be exactly the CCM usage policy.
fn single_ccm_offer(dataset: &Value) -> Value {
    let offers = match &dataset["hasPolicy"] {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    assert_eq!(offers.len(), 1, "{dataset}");
    let offer = offers[0].clone();
    assert_eq!(constraints(&offer), ccm_usage(), "{offer}");
    let actions: Vec<String> = offer["permission"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| texts(&p["action"]))
        .map(|a| local(&a))
        .collect();
    assert_eq!(actions, ["use"], "{offer}");
    for empty in ["prohibition", "obligation"] {
        assert!(offer[empty].as_array().is_none_or(Vec::is_empty), "{offer}");
    }
    offer
}

fn subject_filter(subject: &str) -> Vec<Value> {
    vec![
        json!({"operandLeft": DCT_SUBJECT, "operator": "=", "operandRight": format!("{TAXO}{subject}")}),
    ]
}

fn certificate_filter(code: &str) -> Value {
    let mut f = subject_filter("CompanyCertificate");
    f.push(json!({"operandLeft": DCT_CERTIFICATE_TYPE, "operator": "=", "operandRight": format!("{TAXO}{code}")}));
    Value::Array(f)
}

/// Step 1: both tenants show 2 policies, 1 CCMAPI asset (§4.1) and 1 contract definition;
/// running the bootstrap again, or enabling the app again, changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_creates_the_ccm_offer_once() {
    let t = TestStack::start().await.unwrap();
    let mut before = Vec::new();
    for (tenant, bpn) in [("supplier", SUPPLIER), ("oem", OEM)] {
        assert_eq!(
            t.resource_ids(tenant, "policydefinitions").await.unwrap(),
            ["ccm-access", "ccm-usage"]
        );
        assert_eq!(
            t.resource_ids(tenant, "assets").await.unwrap(),
            [CCMAPI_ASSET]
        );
        assert_eq!(
            t.resource_ids(tenant, "contractdefinitions").await.unwrap(),
            ["ccm-notification-api-cd"]
        );

        let (status, st) = ccm(&t, tenant, Method::GET, "/status", None).await;
        assert_eq!(status, 200, "{st}");
        assert_eq!(st["bpnl"], bpn);
        let outcomes: Vec<&str> = st["bootstrap"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["created"; 4], "{st}");

        // The CCMAPI asset carries exactly the §4.1 properties.
        let (_, asset) = t
            .management(tenant, Method::GET, &format!("assets/{CCMAPI_ASSET}"), None)
            .await
            .unwrap();
        let props = &asset["properties"];
        assert_eq!(
            texts(&props[DCT_TYPE]),
            [format!("{TAXO}CCMAPI")],
            "{asset}"
        );
        assert_eq!(
            texts(&props[DCT_SUBJECT]),
            [format!("{TAXO}CompanyCertificateManagementNotificationApi")],
            "{asset}"
        );
        assert_eq!(props[CX_VERSION], "3.0", "{asset}");
        // The usage policy is the §5 pair; access requires membership.
        let (_, usage) = t
            .management(tenant, Method::GET, "policydefinitions/ccm-usage", None)
            .await
            .unwrap();
        assert_eq!(constraints(&usage["policy"]), ccm_usage(), "{usage}");
        let (_, access) = t
            .management(tenant, Method::GET, "policydefinitions/ccm-access", None)
            .await
            .unwrap();
        assert!(
            constraints(&access["policy"])
                .iter()
                .any(|(l, o, r)| l == "Membership" && o == "eq" && r == "active"),
            "{access}"
        );

        let mut snapshot = Vec::new();
        for path in [
            "policydefinitions/ccm-access".to_string(),
            "policydefinitions/ccm-usage".into(),
            format!("assets/{CCMAPI_ASSET}"),
            "contractdefinitions/ccm-notification-api-cd".into(),
        ] {
            snapshot.push(
                t.management(tenant, Method::GET, &path, None)
                    .await
                    .unwrap(),
            );
        }
        before.push((tenant, snapshot));
    }

    // The TestLab check: the partner finds the CCMAPI offer by subject + version, under the
    // CCM policy.
    let mut filter = subject_filter("CompanyCertificateManagementNotificationApi");
    filter.push(json!({"operandLeft": CX_VERSION, "operator": "=", "operandRight": "3.0"}));
    let catalog = t
        .catalog("oem", "supplier", Value::Array(filter))
        .await
        .unwrap();
    let found = datasets(&catalog);
    assert_eq!(found.len(), 1, "{catalog}");
    assert_eq!(found[0]["@id"], CCMAPI_ASSET);
    single_ccm_offer(&found[0]);

    // Re-running: the app's bootstrap route, then a second enable by the operator.
    let (status, report) = ccm(&t, "supplier", Method::POST, "/bootstrap", None).await;
    assert_eq!(status, 200, "{report}");
    let outcomes: Vec<&str> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["exists"; 4], "{report}");
    let admin = t.stack.description["adminToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, enabled) = t
        .call(Method::GET, "/admin/tenants/oem/apps/ccm", &admin, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{enabled}");
    let (status, body) = t
        .call(
            Method::PUT,
            "/admin/tenants/oem/apps/ccm",
            &admin,
            Some(&json!({"config": enabled["config"]})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, st) = ccm(&t, "oem", Method::GET, "/status", None).await;
    let outcomes: Vec<&str> = st["bootstrap"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes, ["exists"; 4],
        "the second enable ran the bootstrap again: {st}"
    );

    for (tenant, snapshot) in before {
        assert_eq!(
            t.resource_ids(tenant, "policydefinitions")
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(t.resource_ids(tenant, "assets").await.unwrap().len(), 1);
        assert_eq!(
            t.resource_ids(tenant, "contractdefinitions")
                .await
                .unwrap()
                .len(),
            1
        );
        let mut now = Vec::new();
        for path in [
            "policydefinitions/ccm-access".to_string(),
            "policydefinitions/ccm-usage".into(),
            format!("assets/{CCMAPI_ASSET}"),
            "contractdefinitions/ccm-notification-api-cd".into(),
        ] {
            now.push(
                t.management(tenant, Method::GET, &path, None)
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(now, snapshot, "{tenant}: the bootstrap changed a resource");
    }
    t.shutdown().await;
}

/// Steps 2 to 4: the supplier publishes iso9001 for two locations; the OEM finds it by
/// subject + type under exactly the §5 policy, pulls it (the PDF arrives bit for bit), and
/// sends RECEIVED then ACCEPTED, which moves the supplier's share to Active; ACCEPTED again
/// changes nothing. Nothing of either tenant shows up at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_find_pull_and_accept() {
    let t = TestStack::start().await.unwrap();
    let document = pdf("ISO 9001:2015 certificate - Supplier plant 1 and warehouse 2");
    let record = upload(&t, "ISO9001", &[SITE_1, SITE_2], &document).await;
    let cert_id = record["id"].as_str().unwrap().to_string();
    assert_eq!(
        record["certificate"]["type"]["certificateType"], "iso9001",
        "type codes are normalised"
    );
    assert_eq!(record["certificate"]["businessPartnerNumber"], SUPPLIER);

    // Step 2: publish (twice: the second changes nothing).
    let asset_id = publish(&t, &cert_id).await;
    let (status, again) = ccm(
        &t,
        "supplier",
        Method::POST,
        &format!("/certificates/{cert_id}/publish"),
        None,
    )
    .await;
    assert_eq!(
        (status, again["assetId"].as_str()),
        (200, Some(asset_id.as_str())),
        "{again}"
    );
    assert_eq!(t.resource_ids("supplier", "assets").await.unwrap().len(), 2);
    let (_, asset) = t
        .management("supplier", Method::GET, &format!("assets/{asset_id}"), None)
        .await
        .unwrap();
    let props = &asset["properties"];
    assert_eq!(
        texts(&props[DCT_TYPE]),
        [format!("{TAXO}Submodel")],
        "{asset}"
    );
    assert_eq!(
        texts(&props[DCT_SUBJECT]),
        [format!("{TAXO}CompanyCertificate")],
        "{asset}"
    );
    assert_eq!(texts(&props[SEMANTIC_ID]), [BPC_3_1], "{asset}");
    assert_eq!(
        texts(&props[DCT_CERTIFICATE_TYPE]),
        [format!("{TAXO}iso9001")],
        "{asset}"
    );
    assert_eq!(
        texts(&props[DCT_ENCLOSED_SITES]),
        [format!("{TAXO}{SITE_1}"), format!("{TAXO}{SITE_2}")],
        "{asset}"
    );
    assert_eq!(props[CX_VERSION], "3.0", "{asset}");

    // The OEM's catalog query by subject + type finds it, under exactly the CCM policy.
    let catalog = t
        .catalog("oem", "supplier", certificate_filter("iso9001"))
        .await
        .unwrap();
    let found = datasets(&catalog);
    assert_eq!(found.len(), 1, "{catalog}");
    assert_eq!(found[0]["@id"], asset_id.as_str());
    single_ccm_offer(&found[0]);
    let other = t
        .catalog("oem", "supplier", certificate_filter("iatf16949"))
        .await
        .unwrap();
    assert!(datasets(&other).is_empty(), "{other}");

    // Step 3: the OEM pulls by filter (type in the reference app's spelling, one site).
    let started = Instant::now();
    let (status, pulled) = ccm(
        &t,
        "oem",
        Method::POST,
        "/pull",
        Some(json!({
            "providerBpn": SUPPLIER, "certificateType": "ISO9001", "enclosedSites": [SITE_1]
        })),
    )
    .await;
    eprintln!(
        "ccm pull through the stack (catalog, negotiation, transfer, GET): {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{pulled}");
    let received = pulled["received"].as_array().unwrap();
    assert_eq!(received.len(), 1, "{pulled}");
    assert_eq!(
        received[0]["pdf"]["sha256"],
        sha256_hex(&document),
        "{pulled}"
    );
    assert_eq!(received[0]["assetId"], asset_id.as_str());
    assert_eq!(received[0]["source"], "pull");
    let document_id = received[0]["documentId"].as_str().unwrap().to_string();

    // The stored JSON is a BusinessPartnerCertificate 3.1.0 and the PDF is the upload's.
    let (status, stored) = ccm(
        &t,
        "oem",
        Method::GET,
        &format!("/received/{SUPPLIER}/{asset_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    let c = &stored["certificate"];
    assert_eq!(c["businessPartnerNumber"], SUPPLIER);
    assert_eq!(c["type"]["certificateType"], "iso9001");
    assert_eq!(c["registrationNumber"], "REG-ISO9001-0001");
    assert_eq!(c["validFrom"], "2024-01-01");
    assert_eq!(c["validUntil"], "9999-12-31");
    assert_eq!(c["trustLevel"], "none");
    assert_eq!(c["issuer"]["issuerName"], "TÜV Demo");
    assert_eq!(
        c["enclosedSites"],
        json!([{"enclosedSiteBpn": SITE_1}, {"enclosedSiteBpn": SITE_2}])
    );
    assert_eq!(c["document"]["documentID"], document_id.as_str());
    assert_eq!(c["document"]["contentType"], "application/pdf");
    assert!(
        c["document"]["creationDate"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{c}"
    );
    let resp = t
        .http
        .get(format!(
            "{}/tenants/oem/apps/ccm/received/{SUPPLIER}/{document_id}/document",
            t.stack.base
        ))
        .bearer_auth(t.token("oem"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), sha256_hex(&document));
    assert_eq!(&bytes[..], &document[..]);

    // Pulling again by documentId (a cached agreement) updates the record, no copy.
    let (status, again) = ccm(
        &t,
        "oem",
        Method::POST,
        "/pull",
        Some(json!({"providerBpn": SUPPLIER, "documentId": asset_id})),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(received_count(&t, "oem").await, 1);

    // Step 4: RECEIVED, then ACCEPTED, moves the supplier's share Pending → Active.
    for (status_sent, share_state) in [("RECEIVED", "Pending"), ("ACCEPTED", "Active")] {
        let (status, sent) = ccm(
            &t,
            "oem",
            Method::POST,
            "/feedback",
            Some(json!({
                "providerBpn": SUPPLIER, "documentId": asset_id, "status": status_sent
            })),
        )
        .await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(sent["partner"]["status"], 200, "{sent}");
        assert_eq!(
            sent["documentId"],
            asset_id.as_str(),
            "feedback names the asset id"
        );
        assert_eq!(sent["partner"]["body"]["changed"], true, "{sent}");
        let share = oem_share(&t, &cert_id).await;
        assert_eq!(share["state"], share_state, "{share}");
    }
    let share = oem_share(&t, &cert_id).await;
    let history = share["history"].as_array().unwrap().len();
    // ACCEPTED again: 200, nothing moves.
    let (status, sent) = ccm(
        &t,
        "oem",
        Method::POST,
        "/feedback",
        Some(json!({
            "providerBpn": SUPPLIER, "documentId": asset_id, "status": "ACCEPTED"
        })),
    )
    .await;
    assert_eq!(
        (status, sent["partner"]["status"].as_u64()),
        (200, Some(200)),
        "{sent}"
    );
    assert_eq!(sent["partner"]["body"]["changed"], false, "{sent}");
    let share = oem_share(&t, &cert_id).await;
    assert_eq!(share["state"], "Active");
    assert_eq!(
        share["history"].as_array().unwrap().len(),
        history,
        "{share}"
    );
    let (_, stored) = ccm(
        &t,
        "oem",
        Method::GET,
        &format!("/received/{SUPPLIER}/{asset_id}"),
        None,
    )
    .await;
    assert_eq!(stored["feedback"]["status"], "ACCEPTED", "{stored}");

    // Nothing leaks across tenants: each side sees only its own role's records, the OEM's
    // token does not open the supplier's app, and the OEM's connector holds no supplier asset.
    let (_, oem_certs) = ccm(&t, "oem", Method::GET, "/certificates", None).await;
    assert_eq!(oem_certs, json!([]));
    let (_, oem_shares) = ccm(&t, "oem", Method::GET, "/shares", None).await;
    assert_eq!(oem_shares, json!([]));
    assert_eq!(received_count(&t, "supplier").await, 0);
    let (_, supplier_certs) = ccm(&t, "supplier", Method::GET, "/certificates", None).await;
    assert_eq!(supplier_certs.as_array().unwrap().len(), 1);
    let oem_token = t.token("oem");
    for path in ["/certificates", "/shares", "/status"] {
        let (status, body) = t
            .call(
                Method::GET,
                &format!("/tenants/supplier/apps/ccm{path}"),
                &oem_token,
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, 403, "{path}: {body}");
    }
    assert_eq!(
        t.resource_ids("oem", "assets").await.unwrap(),
        [CCMAPI_ASSET]
    );
    let (status, dps) = ccm(&t, "dps-test", Method::GET, "/status", None).await;
    assert_eq!(status, 403, "dps-test has no CCM: {dps}");
    assert!(
        dps["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not enabled"),
        "{dps}"
    );
    t.shutdown().await;
}

/// Step 5: a request for a certificate the supplier lacks is REJECTED; once uploaded but
/// unpublished it is 202; once published it is COMPLETED with the asset id, and the OEM pulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rejected_then_in_progress_then_completed() {
    let t = TestStack::start().await.unwrap();
    let ask =
        json!({"providerBpn": SUPPLIER, "certificateType": "IATF16949", "locationBpns": [SITE_1]});

    let (status, sent) = ccm(&t, "oem", Method::POST, "/requests", Some(ask.clone())).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["request"]["status"], "REJECTED", "{sent}");
    assert_eq!(sent["request"]["providerStatus"], 200);
    let errors = sent["request"]["answer"]["requestErrors"]
        .as_array()
        .unwrap();
    assert!(
        errors[0]["message"].as_str().unwrap().contains("iatf16949"),
        "{sent}"
    );

    let document = pdf("IATF 16949 certificate");
    let record = upload(&t, "iatf16949", &[SITE_1], &document).await;
    let cert_id = record["id"].as_str().unwrap().to_string();
    let (status, sent) = ccm(&t, "oem", Method::POST, "/requests", Some(ask.clone())).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["request"]["status"], "IN_PROGRESS", "{sent}");
    assert_eq!(sent["request"]["providerStatus"], 202, "{sent}");
    assert!(sent["request"]["documentId"].is_null(), "{sent}");

    let asset_id = publish(&t, &cert_id).await;
    let (status, sent) = ccm(&t, "oem", Method::POST, "/requests", Some(ask.clone())).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["request"]["status"], "COMPLETED", "{sent}");
    assert_eq!(sent["request"]["documentId"], asset_id.as_str(), "{sent}");

    let (status, pulled) = ccm(
        &t,
        "oem",
        Method::POST,
        "/pull",
        Some(json!({"providerBpn": SUPPLIER, "documentId": asset_id})),
    )
    .await;
    assert_eq!(status, 200, "{pulled}");
    assert_eq!(
        pulled["received"][0]["pdf"]["sha256"],
        sha256_hex(&document),
        "{pulled}"
    );

    // Both sides kept the three exchanges.
    let (_, inbound) = ccm(&t, "supplier", Method::GET, "/inbound-requests", None).await;
    let mut statuses: Vec<&str> = inbound
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        ["COMPLETED", "IN_PROGRESS", "REJECTED"],
        "{inbound}"
    );
    assert!(
        inbound
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["consumerBpn"] == OEM),
        "{inbound}"
    );
    let (_, outbound) = ccm(&t, "oem", Method::GET, "/requests", None).await;
    assert_eq!(outbound.as_array().unwrap().len(), 3, "{outbound}");
    // A completed request offers the certificate to the OEM.
    assert_eq!(oem_share(&t, &cert_id).await["state"], "Offered");
    t.shutdown().await;
}

/// Step 6: the supplier pushes a certificate, the OEM stores it; a second push of the same
/// certificate creates no copy; the OEM answers REJECTED with location errors and the
/// supplier's share is Revoked with the reasons kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_rejected_feedback_keeps_the_reasons() {
    let t = TestStack::start().await.unwrap();
    let document = pdf("ISO 14001 certificate");
    let record = upload(&t, "iso14001", &[SITE_1, SITE_2], &document).await;
    let cert_id = record["id"].as_str().unwrap().to_string();
    let document_id = record["certificate"]["document"]["documentID"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, pushed) = ccm(
        &t,
        "supplier",
        Method::POST,
        &format!("/certificates/{cert_id}/push"),
        Some(json!({"receiverBpn": OEM})),
    )
    .await;
    assert_eq!(status, 200, "{pushed}");
    assert_eq!(pushed["partner"]["status"], 200, "{pushed}");
    assert_eq!(pushed["partner"]["body"]["stored"], "created", "{pushed}");
    let push_id = pushed["message"]["messageId"].as_str().unwrap().to_string();
    assert_eq!(oem_share(&t, &cert_id).await["state"], "Offered");

    let (status, stored) = ccm(
        &t,
        "oem",
        Method::GET,
        &format!("/received/{SUPPLIER}/{document_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["source"], "push");
    assert_eq!(stored["sourceMessageId"], push_id.as_str());
    assert_eq!(stored["pdf"]["sha256"], sha256_hex(&document));

    // The same certificate pushed again: the record is updated in place, no copy.
    let (status, again) = ccm(
        &t,
        "supplier",
        Method::POST,
        &format!("/certificates/{cert_id}/push"),
        Some(json!({"receiverBpn": OEM})),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["partner"]["body"]["stored"], "unchanged", "{again}");
    assert_eq!(received_count(&t, "oem").await, 1);

    // The OEM rejects it for one site.
    let location_errors = json!([{"bpn": SITE_2, "locationErrors": [{"message": "site 2 is not covered by the audit"}]}]);
    let certificate_errors = json!([{"message": "scope does not match the purchase order"}]);
    let (status, sent) = ccm(
        &t,
        "oem",
        Method::POST,
        "/feedback",
        Some(json!({
            "providerBpn": SUPPLIER, "documentId": document_id, "status": "REJECTED",
            "locationBpns": [SITE_1, SITE_2],
            "certificateErrors": certificate_errors, "locationErrors": location_errors
        })),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["partner"]["status"], 200, "{sent}");
    let share = oem_share(&t, &cert_id).await;
    assert_eq!(share["state"], "Revoked", "{share}");
    assert_eq!(share["locationErrors"], location_errors, "{share}");
    assert_eq!(share["certificateErrors"], certificate_errors, "{share}");
    assert_eq!(share["locationBpns"], json!([SITE_1, SITE_2]), "{share}");
    let last = share["history"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        (
            last["from"].as_str(),
            last["to"].as_str(),
            last["cause"].as_str()
        ),
        (Some("Offered"), Some("Revoked"), Some("REJECTED")),
        "{share}"
    );
    t.shutdown().await;
}

/// The common header of a message from the supplier to the OEM.
fn header(context: &str, message_id: &str, receiver: &str, feedback_url: &Value) -> Value {
    json!({
        "messageId": message_id,
        "context": context,
        "sentDateTime": "2026-01-15T10:00:00Z",
        "senderBpn": SUPPLIER,
        "receiverBpn": receiver,
        "version": "3.1.0",
        "senderFeedbackUrl": feedback_url,
    })
}

fn uuid(n: u32) -> String {
    format!("urn:uuid:00000000-0000-4000-8000-{n:012}")
}

/// Step 7, the message checks: pushes sent as raw HTTP through a transfer of the OEM's
/// CCMAPI asset. A non-PDF push and a wrong `receiverBpn` are refused, a repeated messageId
/// is answered as a duplicate, a second push of the same certificate creates no copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_pushes_are_checked_and_deduplicated() {
    let t = TestStack::start().await.unwrap();
    // The supplier's connector negotiates the OEM's notification API and opens a transfer.
    let mut filter = subject_filter("CompanyCertificateManagementNotificationApi");
    filter.push(json!({"operandLeft": CX_VERSION, "operator": "=", "operandRight": "3.0"}));
    let catalog = t
        .catalog("supplier", "oem", Value::Array(filter))
        .await
        .unwrap();
    let api = datasets(&catalog)
        .into_iter()
        .next()
        .expect("the OEM offers its CCMAPI");
    let offer = single_ccm_offer(&api);
    let (state, negotiation) = t
        .negotiate("supplier", "oem", CCMAPI_ASSET, &offer)
        .await
        .unwrap();
    assert_eq!(state, "FINALIZED", "{negotiation}");
    let agreement = negotiation["contractAgreementId"]
        .as_str()
        .unwrap()
        .to_string();
    let access = t.start_pull("supplier", "oem", &agreement).await.unwrap();
    let feedback_url = t.stack.description["tenants"]["supplier"]["dsp"].clone();
    let push_ctx = "CompanyCertificateManagement-CCMAPI-Push:1.0.0";
    let send = |body: Value| {
        let url = format!(
            "{}/companycertificate/push",
            access.endpoint.trim_end_matches('/')
        );
        let req = t
            .http
            .post(url)
            .bearer_auth(&access.authorization)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let document = pdf("AEO certificate");
    let mut cert = certificate("aeo", &[SITE_1], &document);
    cert["businessPartnerNumber"] = json!(SUPPLIER);
    cert["document"]["documentID"] = json!("DOC-AEO-1");
    cert["document"]["creationDate"] = json!("2026-01-10T09:00:00Z");

    // A valid push.
    let (status, body) =
        send(json!({"header": header(push_ctx, &uuid(1), OEM, &feedback_url), "content": cert}))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], "created", "{body}");
    assert_eq!(body["sha256"], sha256_hex(&document));
    // The same message again: a duplicate, answered 200, nothing stored.
    let (status, body) =
        send(json!({"header": header(push_ctx, &uuid(1), OEM, &feedback_url), "content": cert}))
            .await;
    assert_eq!((status, &body["duplicate"]), (200, &json!(true)), "{body}");
    // The same certificate in a new message: updated in place, no copy.
    let (status, body) =
        send(json!({"header": header(push_ctx, &uuid(2), OEM, &feedback_url), "content": cert}))
            .await;
    assert_eq!(
        (status, body["stored"].as_str()),
        (200, Some("unchanged")),
        "{body}"
    );
    assert_eq!(received_count(&t, "oem").await, 1);

    // Content that is not a PDF is refused.
    let mut png = cert.clone();
    png["document"]["documentID"] = json!("DOC-AEO-PNG");
    png["document"]["contentBase64"] = json!(base64(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01"));
    let (status, body) =
        send(json!({"header": header(push_ctx, &uuid(3), OEM, &feedback_url), "content": png}))
            .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().to_lowercase().contains("pdf"), "{body}");
    // So is a message for another receiver, and one whose context is not a push.
    let mut other = cert.clone();
    other["document"]["documentID"] = json!("DOC-AEO-OTHER");
    let (status, body) = send(json!({"header": header(push_ctx, &uuid(4), "BPNL0000000000XX", &feedback_url), "content": other})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("receiverBpn"), "{body}");
    let (status, body) = send(json!({"header": header("CompanyCertificateManagement-CCMAPI-Status:1.0.0", &uuid(5), OEM, &feedback_url), "content": other})).await;
    assert_eq!(status, 400, "{body}");
    // A sender claiming to be someone else than the connector authenticated is refused.
    let mut spoofed = header(push_ctx, &uuid(6), OEM, &feedback_url);
    spoofed["senderBpn"] = json!("BPNL0000000000XX");
    let (status, body) = send(json!({"header": spoofed, "content": other})).await;
    assert_eq!(status, 403, "{body}");
    // None of the refused messages left a record.
    let (_, list) = ccm(&t, "oem", Method::GET, "/received", None).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["documentId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["DOC-AEO-1"], "{list}");
    // The stored PDF is the one pushed.
    let (_, stored) = ccm(
        &t,
        "oem",
        Method::GET,
        &format!("/received/{SUPPLIER}/DOC-AEO-1"),
        None,
    )
    .await;
    assert_eq!(stored["pdf"]["sha256"], sha256_hex(&document), "{stored}");
    // Nothing reached the supplier's own records: it only sent.
    assert_eq!(received_count(&t, "supplier").await, 0);
    t.shutdown().await;
}

/// Step 7, the policies: without membership the OEM can neither see nor negotiate the
/// supplier's certificate; with the wrong purpose it sees it but cannot negotiate. With the
/// attributes restored the same pull works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_membership_or_wrong_purpose_cannot_negotiate() {
    let t = TestStack::start().await.unwrap();
    let document = pdf("ISO 9001 certificate");
    let record = upload(&t, "iso9001", &[SITE_1], &document).await;
    let asset_id = publish(&t, record["id"].as_str().unwrap()).await;
    // The offer as a member sees it, kept to try negotiating it without membership.
    let catalog = t
        .catalog("oem", "supplier", certificate_filter("iso9001"))
        .await
        .unwrap();
    let offer = single_ccm_offer(&datasets(&catalog)[0]);
    let cp = t.stack.dataspace.control_plane();
    let pull = json!({"providerBpn": SUPPLIER, "documentId": asset_id});

    // No membership: the catalog hides the offer, the app cannot pull, a direct
    // negotiation of the known offer is terminated.
    cp.set_participant_attribute("oem", "MembershipCredential", None)
        .unwrap();
    let hidden = t
        .catalog("oem", "supplier", certificate_filter("iso9001"))
        .await
        .unwrap();
    assert!(datasets(&hidden).is_empty(), "{hidden}");
    let (status, body) = ccm(&t, "oem", Method::POST, "/pull", Some(pull.clone())).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = ccm(
        &t,
        "oem",
        Method::POST,
        "/pull",
        Some(json!({"providerBpn": SUPPLIER, "certificateType": "iso9001"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (state, negotiation) = t
        .negotiate("oem", "supplier", &asset_id, &offer)
        .await
        .unwrap();
    assert_eq!(state, "TERMINATED", "{negotiation}");
    cp.set_participant_attribute("oem", "MembershipCredential", Some(json!("active")))
        .unwrap();

    // The wrong purpose: visible, but the negotiation is terminated and nothing is pulled.
    cp.set_participant_attribute("oem", "UsagePurpose", Some(json!("cx.core.industrycore:1")))
        .unwrap();
    let visible = t
        .catalog("oem", "supplier", certificate_filter("iso9001"))
        .await
        .unwrap();
    assert_eq!(datasets(&visible).len(), 1, "{visible}");
    let (status, body) = ccm(&t, "oem", Method::POST, "/pull", Some(pull.clone())).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("TERMINATED"),
        "{body}"
    );
    cp.set_participant_attribute("oem", "UsagePurpose", None)
        .unwrap();
    let (state, _) = t
        .negotiate("oem", "supplier", &asset_id, &offer)
        .await
        .unwrap();
    assert_eq!(state, "TERMINATED", "without any purpose");
    assert_eq!(received_count(&t, "oem").await, 0);

    // Restored, the same pull works: the attributes were what stopped it.
    cp.set_participant_attribute("oem", "UsagePurpose", Some(json!("cx.ccm.base:1")))
        .unwrap();
    let (status, body) = ccm(&t, "oem", Method::POST, "/pull", Some(pull)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["received"][0]["pdf"]["sha256"], sha256_hex(&document));
    t.shutdown().await;
}
