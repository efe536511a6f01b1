//! Catalog policy evaluation and the contract negotiation state machine (FINALIZED with an
//! agreement, TERMINATED with an errorDetail).

mod common;

use common::{CONSUMER, CONSUMER_DID, CTX, OUTSIDER, PROVIDER, PROVIDER_DID};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weft_sandbox::{ApiVersion, ClaimMode};

fn membership_policy() -> Value {
    json!({"@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "MembershipCredential", "operator": "eq", "rightOperand": "active"}]}]})
}

fn dataset<'a>(catalog: &'a Value, id: &str) -> Option<&'a Value> {
    catalog["dataset"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@id"] == id)
}

#[tokio::test]
async fn catalog_offers_only_what_the_access_policy_allows() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    f.offer(
        "open",
        json!({"@type": "Set", "permission": [{"action": "use"}]}),
        json!({}),
    )
    .await;
    f.offer(
        "members",
        membership_policy(),
        json!({"dataplaneMetadata": {"profiles": ["HttpData-PULL"]}}),
    )
    .await;
    let bpn_policy = json!({"@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "https://w3id.org/catenax/policy/BusinessPartnerNumber", "operator": "isAnyOf", "rightOperand": ["BPNL00000000OUTS"]}]}]});
    f.offer("outsider-only", bpn_policy, json!({})).await;
    f.register_dataplane(
        PROVIDER,
        json!({"dataplaneId": "prov-dp", "endpoint": "http://127.0.0.1:9/dataflows",
        "transferTypes": ["HttpData-PULL", "HttpData-PUSH"]}),
    )
    .await;

    let (status, catalog) = f.catalog(CONSUMER).await;
    assert_eq!(status, StatusCode::OK, "{catalog}");
    assert_eq!(catalog["@type"], "Catalog");
    assert_eq!(catalog["participantId"], PROVIDER_DID);
    assert_eq!(
        catalog["service"][0]["endpointURL"],
        f.sb.urls().dsp_address(PROVIDER)
    );
    let members = dataset(&catalog, "members").expect("consumer is a member");
    assert!(dataset(&catalog, "open").is_some());
    assert!(dataset(&catalog, "outsider-only").is_none());
    assert_eq!(members["@type"], "Dataset");
    assert_eq!(members["name"], "asset members");
    let offer = &members["hasPolicy"][0];
    assert_eq!(offer["@type"], "Offer");
    assert_eq!(
        offer["permission"][0]["constraint"][0]["leftOperand"],
        "MembershipCredential"
    );
    // Offer ids encode definition and asset.
    let parts: Vec<&str> = offer["@id"].as_str().unwrap().split(':').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine as _;
    let decode = |s: &str| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
    };
    assert_eq!(decode(parts[0]), "def-members");
    assert_eq!(decode(parts[1]), "members");
    // Distributions: only profiles the asset allows.
    let formats: Vec<&str> = members["distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["HttpData-PULL"]);
    let open_formats = dataset(&catalog, "open").unwrap()["distribution"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(open_formats, 2);

    let (_, outsider) = f.catalog(OUTSIDER).await;
    assert!(dataset(&outsider, "members").is_none());
    assert!(dataset(&outsider, "outsider-only").is_some());

    // Revoking the credential removes the offer.
    f.sb.control_plane()
        .set_participant_attribute(CONSUMER, "MembershipCredential", None)
        .unwrap();
    let (_, catalog) = f.catalog(CONSUMER).await;
    assert!(dataset(&catalog, "members").is_none());

    // Dataset request and query spec.
    let body = json!({"@context": [CTX], "@type": "DatasetRequest", "@id": "open", "counterPartyAddress": f.sb.urls().dsp_address(PROVIDER),
        "counterPartyId": PROVIDER_DID, "profile": "http-dsp-profile-2025-1"});
    let (status, ds) = f
        .post(
            &f.url(CONSUMER, "/catalog/dataset/request"),
            &f.token(CONSUMER),
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ds}");
    assert_eq!(ds["@id"], "open");
    let mut missing = body;
    missing["@id"] = json!("members");
    assert_eq!(
        f.post(
            &f.url(CONSUMER, "/catalog/dataset/request"),
            &f.token(CONSUMER),
            missing
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let body = json!({"@context": [CTX], "@type": "CatalogRequest", "counterPartyAddress": f.sb.urls().dsp_address(PROVIDER),
        "counterPartyId": PROVIDER_DID, "protocol": "dataspace-protocol-http:2025-1",
        "querySpec": {"filterExpression": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=", "operandRight": "open"}]}});
    let (_, filtered) = f
        .post(
            &f.url(OUTSIDER, "/catalog/request"),
            &f.token(OUTSIDER),
            body,
        )
        .await;
    assert_eq!(filtered["dataset"].as_array().unwrap().len(), 1);

    // An unknown counter-party is a 502.
    let body = json!({"@context": [CTX], "@type": "CatalogRequest", "counterPartyAddress": "http://127.0.0.1:1/api/dsp/nobody/2025-1",
        "counterPartyId": "did:web:nobody", "protocol": "dataspace-protocol-http:2025-1"});
    let (status, body) = f
        .post(
            &f.url(CONSUMER, "/catalog/request"),
            &f.token(CONSUMER),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
}

#[tokio::test]
async fn negotiation_finalizes_with_an_agreement_on_both_sides() {
    for (mode, version) in [
        (ClaimMode::ParticipantContext, ApiVersion::V4alpha),
        (ClaimMode::Subject, ApiVersion::V5beta),
    ] {
        let f = common::start(mode, version).await;
        f.offer("members", membership_policy(), json!({})).await;
        let (_, catalog) = f.catalog(CONSUMER).await;
        let offer = dataset(&catalog, "members").unwrap()["hasPolicy"][0].clone();
        let id = f.negotiate(CONSUMER, &offer, "members").await;
        let token = f.token(CONSUMER);
        let n = f
            .wait_state(
                &f.url(CONSUMER, &format!("/contractnegotiations/{id}")),
                &token,
                &["FINALIZED", "TERMINATED"],
            )
            .await;
        assert_eq!(n["state"], "FINALIZED", "{n}");
        assert_eq!(n["@type"], "ContractNegotiation");
        assert_eq!(n["type"], "CONSUMER");
        assert_eq!(n["counterPartyId"], PROVIDER_DID);
        assert_eq!(n["counterPartyAddress"], f.sb.urls().dsp_address(PROVIDER));
        assert!(n.get("errorDetail").is_none());
        let agreement_id = n["contractAgreementId"].as_str().unwrap();

        let (_, state) = f
            .get(
                &f.url(CONSUMER, &format!("/contractnegotiations/{id}/state")),
                &token,
            )
            .await;
        assert_eq!(
            state,
            json!({"@context": [CTX], "@type": "NegotiationState", "state": "FINALIZED"})
        );
        let (status, agreement) = f
            .get(
                &f.url(CONSUMER, &format!("/contractagreements/{agreement_id}")),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(agreement["@type"], "ContractAgreement");
        assert_eq!(agreement["assetId"], "members");
        assert_eq!(agreement["consumerId"], CONSUMER_DID);
        assert_eq!(agreement["providerId"], PROVIDER_DID);
        assert_eq!(agreement["policy"]["@type"], "Agreement");
        assert_eq!(agreement["policy"]["target"], "members");
        let (_, via_negotiation) = f
            .get(
                &f.url(CONSUMER, &format!("/contractnegotiations/{id}/agreement")),
                &token,
            )
            .await;
        assert_eq!(via_negotiation["@id"], agreement_id);
        let (_, back) = f
            .get(
                &f.url(
                    CONSUMER,
                    &format!("/contractagreements/{agreement_id}/negotiation"),
                ),
                &token,
            )
            .await;
        assert_eq!(back["@id"], id.as_str());
        // The provider sees its side.
        let ptoken = f.token(PROVIDER);
        let (_, provider_side) = f
            .post(
                &f.url(PROVIDER, "/contractnegotiations/request"),
                &ptoken,
                json!({}),
            )
            .await;
        assert_eq!(provider_side[0]["type"], "PROVIDER");
        assert_eq!(provider_side[0]["state"], "FINALIZED");
        assert_eq!(provider_side[0]["counterPartyId"], CONSUMER_DID);
        let (status, _) = f
            .get(
                &f.url(PROVIDER, &format!("/contractagreements/{agreement_id}")),
                &ptoken,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // Queries on agreements.
        let (_, agreements) = f
            .post(&f.url(CONSUMER, "/contractagreements/request"), &token, json!({"@context": [CTX],
                "filterExpression": [{"operandLeft": "assetId", "operator": "=", "operandRight": "members"}]}))
            .await;
        assert_eq!(agreements.as_array().unwrap().len(), 1);
        // Final negotiations cannot be terminated; only terminated ones deleted.
        let term = json!({"@context": [CTX], "@type": "TerminateNegotiation", "reason": "changed my mind"});
        assert_eq!(
            f.post(
                &f.url(CONSUMER, &format!("/contractnegotiations/{id}/terminate")),
                &token,
                term
            )
            .await
            .0,
            StatusCode::CONFLICT
        );
        assert_eq!(
            f.call(
                Method::DELETE,
                &f.url(CONSUMER, &format!("/contractnegotiations/{id}")),
                Some(&token),
                None
            )
            .await
            .0,
            StatusCode::CONFLICT
        );
        // The asset is now referenced by an agreement.
        assert_eq!(
            f.call(
                Method::DELETE,
                &f.url(PROVIDER, "/assets/members"),
                Some(&ptoken),
                None
            )
            .await
            .0,
            StatusCode::CONFLICT
        );
    }
}

#[tokio::test]
async fn negotiation_terminates_when_a_constraint_is_not_met() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    // Offered to everyone, but the contract policy requires membership.
    let token = f.token(PROVIDER);
    f.offer(
        "gated",
        json!({"@type": "Set", "permission": [{"action": "use"}]}),
        json!({}),
    )
    .await;
    f.post(&f.url(PROVIDER, "/policydefinitions"), &token,
        json!({"@context": [CTX], "@type": "PolicyDefinition", "@id": "needs-membership", "policy": membership_policy()})).await;
    let mut def = json!({"@context": [CTX], "@type": "ContractDefinition", "@id": "def-gated", "accessPolicyId": "policy-gated",
        "contractPolicyId": "needs-membership", "assetsSelector": [{"operandLeft": "id", "operator": "=", "operandRight": "gated"}]});
    assert_eq!(
        f.call(
            Method::PUT,
            &f.url(PROVIDER, "/contractdefinitions"),
            Some(&token),
            Some(def.clone())
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );

    let (_, catalog) = f.catalog(OUTSIDER).await;
    let offer = dataset(&catalog, "gated").unwrap()["hasPolicy"][0].clone();
    let id = f.negotiate(OUTSIDER, &offer, "gated").await;
    let otoken = f.token(OUTSIDER);
    let n = f
        .wait_state(
            &f.url(OUTSIDER, &format!("/contractnegotiations/{id}")),
            &otoken,
            &["FINALIZED", "TERMINATED"],
        )
        .await;
    assert_eq!(n["state"], "TERMINATED", "{n}");
    let detail = n["errorDetail"].as_str().unwrap();
    assert!(
        detail.contains("MembershipCredential eq active"),
        "{detail}"
    );
    assert!(n.get("contractAgreementId").is_none());
    assert_eq!(
        f.get(
            &f.url(OUTSIDER, &format!("/contractnegotiations/{id}/agreement")),
            &otoken
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // The provider's side terminated too; terminated negotiations can be deleted.
    let (_, provider_side) = f
        .post(
            &f.url(PROVIDER, "/contractnegotiations/request"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(provider_side[0]["state"], "TERMINATED");
    assert_eq!(
        f.call(
            Method::DELETE,
            &f.url(OUTSIDER, &format!("/contractnegotiations/{id}")),
            Some(&otoken),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );

    // The member succeeds on the same offer.
    let (_, catalog) = f.catalog(CONSUMER).await;
    let offer = dataset(&catalog, "gated").unwrap()["hasPolicy"][0].clone();
    let id = f.negotiate(CONSUMER, &offer, "gated").await;
    let n = f
        .wait_state(
            &f.url(CONSUMER, &format!("/contractnegotiations/{id}")),
            &f.token(CONSUMER),
            &["FINALIZED", "TERMINATED"],
        )
        .await;
    assert_eq!(n["state"], "FINALIZED", "{n}");

    // A tampered offer (policy differs from the definition) is refused.
    let mut tampered = offer.clone();
    tampered["permission"] = json!([{"action": "use"}]);
    let id = f.negotiate(CONSUMER, &tampered, "gated").await;
    let n = f
        .wait_state(
            &f.url(CONSUMER, &format!("/contractnegotiations/{id}")),
            &f.token(CONSUMER),
            &["FINALIZED", "TERMINATED"],
        )
        .await;
    assert_eq!(n["state"], "TERMINATED");
    assert!(
        n["errorDetail"].as_str().unwrap().contains("differs"),
        "{n}"
    );

    // An unknown definition, and an unreachable provider.
    def["@id"] = json!("other");
    let bogus = json!({"@id": "Ym9ndXM=:Z2F0ZWQ=:eA==", "permission": [], "prohibition": [], "obligation": []});
    let id = f.negotiate(CONSUMER, &bogus, "gated").await;
    let n = f
        .wait_state(
            &f.url(CONSUMER, &format!("/contractnegotiations/{id}")),
            &f.token(CONSUMER),
            &["FINALIZED", "TERMINATED"],
        )
        .await;
    assert_eq!(n["state"], "TERMINATED");
    let body = json!({"@context": [CTX], "@type": "ContractRequest", "counterPartyAddress": "http://127.0.0.1:1/api/dsp/nobody/2025-1",
        "profile": "http-dsp-profile-2025-1", "policy": {"@id": offer["@id"], "assigner": "did:web:nobody"}});
    let (status, resp) = f
        .post(
            &f.url(CONSUMER, "/contractnegotiations"),
            &f.token(CONSUMER),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let id = resp["@id"].as_str().unwrap();
    let n = f
        .wait_state(
            &f.url(CONSUMER, &format!("/contractnegotiations/{id}")),
            &f.token(CONSUMER),
            &["FINALIZED", "TERMINATED"],
        )
        .await;
    assert_eq!(n["state"], "TERMINATED");
    assert!(
        n["errorDetail"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{n}"
    );
}

#[tokio::test]
async fn negotiation_events_reach_callback_addresses() {
    use std::sync::{Arc, Mutex};
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    f.offer(
        "ev",
        json!({"@type": "Set", "permission": [{"action": "use"}]}),
        json!({}),
    )
    .await;
    let (_, catalog) = f.catalog(CONSUMER).await;
    let offer = dataset(&catalog, "ev").unwrap()["hasPolicy"][0].clone();
    let body = json!({"@context": [CTX], "@type": "ContractRequest", "counterPartyAddress": f.sb.urls().dsp_address(PROVIDER),
        "protocol": "dataspace-protocol-http:2025-1", "policy": {"@id": offer["@id"], "assigner": PROVIDER_DID, "target": "ev",
            "permission": offer["permission"]},
        "callbackAddresses": [{"uri": format!("http://{addr}/events"), "events": ["contract.negotiation.finalized"], "transactional": false}]});
    let (status, resp) = f
        .post(
            &f.url(CONSUMER, "/contractnegotiations"),
            &f.token(CONSUMER),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = resp["@id"].as_str().unwrap().to_owned();
    common::eventually("finalized event", || !received.lock().unwrap().is_empty()).await;
    let events = received.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "only the subscribed event: {events:?}");
    assert_eq!(events[0]["type"], "ContractNegotiationFinalized");
    assert_eq!(events[0]["payload"]["contractNegotiationId"], id.as_str());
}
