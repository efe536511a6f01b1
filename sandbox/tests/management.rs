//! Management API: CRUD and queries, both versions and claim modes, and the refusals (401, 403,
//! 404, 400 with error arrays) in EDC's order.

mod common;

use common::{CONSUMER, CTX, OUTSIDER, PROVIDER, assert_error_array};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weft_sandbox::{ApiVersion, ClaimMode, MintSpec, Role, SigningAlgorithm};

const MODES: [(ClaimMode, ApiVersion); 2] = [
    (ClaimMode::ParticipantContext, ApiVersion::V4alpha),
    (ClaimMode::Subject, ApiVersion::V5beta),
];

fn asset(id: &str) -> Value {
    json!({"@context": [CTX], "@type": "Asset", "@id": id,
        "properties": {"name": "Sample", "https://example.com/ns/category": "cert"},
        "privateProperties": {"secret": "s"},
        "dataplaneMetadata": {"labels": [], "properties": {}, "profiles": ["HttpData-PULL"]}})
}

#[tokio::test]
async fn asset_crud_round_trip_in_both_versions_and_modes() {
    for (mode, version) in MODES {
        let f = common::start(mode, version).await;
        let token = f.token(PROVIDER);
        let (status, body) = f
            .post(&f.url(PROVIDER, "/assets"), &token, asset("a1"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["@type"], "IdResponse");
        assert_eq!(body["@id"], "a1");
        assert_eq!(body["@context"], json!([CTX]));
        assert!(body["createdAt"].as_u64().unwrap() > 0);

        let (status, got) = f.get(&f.url(PROVIDER, "/assets/a1"), &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["@context"], json!([CTX]));
        assert_eq!(got["@type"], "Asset");
        assert_eq!(got["@id"], "a1");
        assert_eq!(got["properties"]["name"], "Sample");
        assert_eq!(got["properties"]["id"], "a1");
        assert_eq!(
            got["dataplaneMetadata"]["profiles"],
            json!(["HttpData-PULL"])
        );

        // Generated id when absent; duplicate id conflicts.
        let mut anonymous = asset("x");
        anonymous.as_object_mut().unwrap().remove("@id");
        let (status, body) = f.post(&f.url(PROVIDER, "/assets"), &token, anonymous).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body["@id"].as_str().unwrap().is_empty());
        let (status, body) = f
            .post(&f.url(PROVIDER, "/assets"), &token, asset("a1"))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body[0]["type"], "ObjectConflict");

        // Update is 204 with the id in the body.
        let mut updated = asset("a1");
        updated["properties"]["name"] = json!("Renamed");
        let (status, body) = f
            .call(
                Method::PUT,
                &f.url(PROVIDER, "/assets"),
                Some(&token),
                Some(updated),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, got) = f.get(&f.url(PROVIDER, "/assets/a1"), &token).await;
        assert_eq!(got["properties"]["name"], "Renamed");
        let (status, _) = f
            .call(
                Method::PUT,
                &f.url(PROVIDER, "/assets"),
                Some(&token),
                Some(asset("missing")),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Query with the implicit tenant filter.
        let (status, list) = f
            .post(&f.url(PROVIDER, "/assets/request"), &token, json!({"@context": [CTX], "@type": "QuerySpec",
                "filterExpression": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=", "operandRight": "a1"}]}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["@id"], "a1");
        let (_, all) = f
            .post(&f.url(PROVIDER, "/assets/request"), &token, json!({}))
            .await;
        assert_eq!(all.as_array().unwrap().len(), 2);
        let (_, others) = f
            .post(
                &f.url(CONSUMER, "/assets/request"),
                &f.token(CONSUMER),
                json!({}),
            )
            .await;
        assert_eq!(others, json!([]));

        let (status, _) = f
            .call(
                Method::DELETE,
                &f.url(PROVIDER, "/assets/a1"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = f.get(&f.url(PROVIDER, "/assets/a1"), &token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body[0]["type"], "ObjectNotFound");
    }
}

#[tokio::test]
async fn queries_support_in_like_property_iris_sorting_and_paging() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let token = f.token(PROVIDER);
    for (id, cat) in [("b-1", "cert"), ("b-2", "report"), ("c-3", "cert")] {
        let mut a = asset(id);
        a["properties"]["https://example.com/ns/category"] = json!(cat);
        assert_eq!(
            f.post(&f.url(PROVIDER, "/assets"), &token, a).await.0,
            StatusCode::OK
        );
    }
    let q = |filter: Value, extra: Value| {
        let mut body = json!({"@context": [CTX], "@type": "QuerySpec", "filterExpression": filter});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let ids = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["@id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let url = f.url(PROVIDER, "/assets/request");
    let (_, r) = f
        .post(
            &url,
            &token,
            q(
                json!([{"operandLeft": "@id", "operator": "in", "operandRight": ["b-1", "c-3"]}]),
                json!({}),
            ),
        )
        .await;
    assert_eq!(ids(&r), ["b-1", "c-3"]);
    let (_, r) = f
        .post(
            &url,
            &token,
            q(
                json!([{"operandLeft": "id", "operator": "like", "operandRight": "b-%"}]),
                json!({}),
            ),
        )
        .await;
    assert_eq!(ids(&r), ["b-1", "b-2"]);
    let (_, r) = f.post(&url, &token, q(json!([{"operandLeft": "https://example.com/ns/category", "operator": "=", "operandRight": "cert"}]), json!({}))).await;
    assert_eq!(ids(&r), ["b-1", "c-3"]);
    let (_, r) = f
        .post(
            &url,
            &token,
            q(
                json!([]),
                json!({"sortField": "id", "sortOrder": "DESC", "offset": 1, "limit": 1}),
            ),
        )
        .await;
    assert_eq!(ids(&r), ["b-2"]);
    let (status, body) = f
        .post(
            &url,
            &token,
            q(
                json!([{"operandLeft": "id", "operator": "~~", "operandRight": "x"}]),
                json!({}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_array(&body, Some("filterExpression[0].operator"));
}

#[tokio::test]
async fn policy_and_contract_definitions() {
    let f = common::start(ClaimMode::ParticipantContext, ApiVersion::V4alpha).await;
    let token = f.token(PROVIDER);
    let policy = json!({"@context": [CTX], "@type": "PolicyDefinition", "@id": "p1",
        "policy": {"@type": "Set", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "MembershipCredential", "operator": "eq", "rightOperand": "active"}]}]}});
    assert_eq!(
        f.post(
            &f.url(PROVIDER, "/policydefinitions"),
            &token,
            policy.clone()
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, got) = f
        .get(&f.url(PROVIDER, "/policydefinitions/p1"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["@type"], "PolicyDefinition");
    assert_eq!(
        got["policy"]["permission"][0]["constraint"][0]["leftOperand"],
        "MembershipCredential"
    );
    let (_, v) = f
        .post(
            &f.url(PROVIDER, "/policydefinitions/p1/validate"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(v["isValid"], true);

    let def = json!({"@context": [CTX], "@type": "ContractDefinition", "@id": "d1", "accessPolicyId": "p1",
        "contractPolicyId": "p1", "assetsSelector": [{"@type": "Criterion", "operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=", "operandRight": "a1"}]});
    assert_eq!(
        f.post(
            &f.url(PROVIDER, "/contractdefinitions"),
            &token,
            def.clone()
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, list) = f
        .post(&f.url(PROVIDER, "/contractdefinitions/request"), &token,
            json!({"@context": [CTX], "filterExpression": [{"operandLeft": "accessPolicyId", "operator": "=", "operandRight": "p1"}]}))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // A referenced policy cannot be deleted.
    let (status, body) = f
        .call(
            Method::DELETE,
            &f.url(PROVIDER, "/policydefinitions/p1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Update the definition, then delete both.
    let mut changed = def.clone();
    changed["assetsSelector"] = json!([]);
    assert_eq!(
        f.call(
            Method::PUT,
            &f.url(PROVIDER, "/contractdefinitions"),
            Some(&token),
            Some(changed)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, got) = f
        .get(&f.url(PROVIDER, "/contractdefinitions/d1"), &token)
        .await;
    assert_eq!(got["assetsSelector"], json!([]));
    assert_eq!(
        f.call(
            Method::DELETE,
            &f.url(PROVIDER, "/contractdefinitions/d1"),
            Some(&token),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        f.call(
            Method::DELETE,
            &f.url(PROVIDER, "/policydefinitions/p1"),
            Some(&token),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let mut p2 = policy.clone();
    p2["policy"]["permission"] = json!([{"action": "use"}]);
    assert_eq!(
        f.call(
            Method::PUT,
            &f.url(PROVIDER, "/policydefinitions/p1"),
            Some(&token),
            Some(p2)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn invalid_json_ld_bodies_get_error_arrays() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let token = f.token(PROVIDER);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/assets",
            json!({"@type": "Asset", "properties": {}}),
            "@context",
        ),
        (
            "/assets",
            json!({"@context": ["https://example.com/other"], "@type": "Asset", "properties": {}}),
            "@context",
        ),
        (
            "/assets",
            json!({"@context": [CTX], "properties": {}}),
            "@type",
        ),
        (
            "/assets",
            json!({"@context": [CTX], "@type": "PolicyDefinition", "properties": {}}),
            "@type",
        ),
        (
            "/assets",
            json!({"@context": [CTX], "@type": "Asset"}),
            "properties",
        ),
        (
            "/assets",
            json!({"@context": [CTX], "@type": "Asset", "properties": "nope"}),
            "properties",
        ),
        (
            "/assets",
            json!({"@context": [CTX], "@type": "Asset", "@id": 5, "properties": {}}),
            "@id",
        ),
        (
            "/policydefinitions",
            json!({"@context": [CTX], "@type": "PolicyDefinition"}),
            "policy",
        ),
        (
            "/policydefinitions",
            json!({"@context": [CTX], "@type": "PolicyDefinition", "policy": {"@type": "Offer"}}),
            "policy.@type",
        ),
        (
            "/contractdefinitions",
            json!({"@context": [CTX], "@type": "ContractDefinition", "accessPolicyId": "p"}),
            "contractPolicyId",
        ),
        (
            "/contractdefinitions",
            json!({"@context": [CTX], "@type": "ContractDefinition", "accessPolicyId": "p", "contractPolicyId": "p",
            "assetsSelector": [{"operandLeft": "id", "operandRight": "x"}]}),
            "assetsSelector[0].operator",
        ),
        (
            "/contractnegotiations",
            json!({"@context": [CTX], "@type": "ContractRequest", "protocol": "dataspace-protocol-http:2025-1", "policy": {"@id": "o"}}),
            "counterPartyAddress",
        ),
        (
            "/contractnegotiations",
            json!({"@context": [CTX], "@type": "ContractRequest", "counterPartyAddress": "http://x/api/dsp/p/2025-1", "policy": {"@id": "o"}}),
            "protocol",
        ),
        (
            "/contractnegotiations",
            json!({"@context": [CTX], "@type": "ContractRequest", "counterPartyAddress": "http://x", "protocol": "dataspace-protocol-http:2025-1", "profile": "http-dsp-profile-2025-1", "policy": {"@id": "o"}}),
            "protocol",
        ),
        (
            "/contractnegotiations",
            json!({"@context": [CTX], "@type": "ContractRequest", "counterPartyAddress": "http://x", "profile": "http-dsp-profile-2025-1", "policy": {}}),
            "policy.@id",
        ),
        (
            "/transferprocesses",
            json!({"@context": [CTX], "@type": "TransferRequest", "counterPartyAddress": "http://x", "protocol": "dataspace-protocol-http:2025-1", "contractId": "c"}),
            "transferType",
        ),
        (
            "/catalog/request",
            json!({"@context": [CTX], "@type": "CatalogRequest", "protocol": "dataspace-protocol-http:2025-1"}),
            "counterPartyAddress",
        ),
    ];
    for (path, body, error_path) in cases {
        let (status, resp) = f.post(&f.url(PROVIDER, path), &token, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {resp}");
        assert_error_array(&resp, Some(error_path));
    }
    // Not JSON at all, and not an object.
    let response = f
        .http
        .post(f.url(PROVIDER, "/assets"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_error_array(&response.json().await.unwrap(), None);
    let (status, resp) = f
        .post(&f.url(PROVIDER, "/assets"), &token, json!([1, 2]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_array(&resp, None);
    // The full-IRI form is compacted.
    let (status, _) = f
        .post(
            &f.url(PROVIDER, "/assets"),
            &token,
            json!({"@context": [CTX], "@type": "https://w3id.org/edc/v0.0.1/ns/Asset",
            "@id": "iri", "https://w3id.org/edc/v0.0.1/ns/properties": {"name": "n"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = f.get(&f.url(PROVIDER, "/assets/iri"), &token).await;
    assert_eq!(got["@type"], "Asset");
    assert_eq!(got["properties"]["name"], "n");
}

#[tokio::test]
async fn authentication_failures_are_401() {
    for (mode, version) in MODES {
        let f = common::start(mode, version).await;
        let idp = f.sb.idp();
        let url = f.url(CONSUMER, "/assets/request");
        let spec =
            MintSpec::participant(CONSUMER, &["management-api:read", "management-api:write"]);
        let mut expired = idp.claims_for(&spec);
        expired.insert("exp".into(), json!(1_000));
        expired.insert("iat".into(), json!(900));
        let mut wrong_iss = idp.claims_for(&spec);
        wrong_iss.insert("iss".into(), json!("https://other.example"));
        let claims = Value::Object(idp.claims_for(&spec));
        // Flip one character at the start of the signature.
        let good = idp.mint(&spec).unwrap();
        let cut = good.rfind('.').unwrap() + 1;
        let flipped = if good.as_bytes()[cut] == b'A' {
            "B"
        } else {
            "A"
        };
        let tampered = format!("{}{flipped}{}", &good[..cut], &good[cut + 1..]);
        let bad = [
            None,
            Some("not-a-jwt".to_owned()),
            Some(tampered),
            Some(
                idp.sign(&Value::Object(expired), SigningAlgorithm::Es256, None)
                    .unwrap(),
            ),
            Some(
                idp.sign(&Value::Object(wrong_iss), SigningAlgorithm::Es256, None)
                    .unwrap(),
            ),
            Some(
                idp.sign(&claims, SigningAlgorithm::Es256, Some("unknown-kid"))
                    .unwrap(),
            ),
        ];
        for token in bad {
            let (status, body) = f
                .call(Method::POST, &url, token.as_deref(), Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{mode:?} {token:?}: {body}"
            );
            assert!(body["error"].is_string(), "{body}");
        }
        // Sanity: the same request with a good token succeeds.
        let (status, _) = f.post(&url, &idp.mint(&spec).unwrap(), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            f.sb.control_plane()
                .requests()
                .iter()
                .filter(|r| r.path.ends_with("/assets/request"))
                .count()
                >= 7
        );
    }
}

#[tokio::test]
async fn authorization_failures_are_403_then_404() {
    // Participant-context mode (v4alpha).
    let f = common::start(ClaimMode::ParticipantContext, ApiVersion::V4alpha).await;
    let idp = f.sb.idp();
    let url = f.url(CONSUMER, "/assets");
    // Another tenant's token.
    let (status, body) = f.post(&url, &f.token(PROVIDER), asset("z")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body[0]["type"], "NotAuthorized");
    // Missing write scope.
    let (status, _) = f
        .post(
            &url,
            &f.token_with(CONSUMER, &["management-api:read"]),
            asset("z"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Wrong role (provisioner on tenant resources).
    let (status, _) = f.post(&url, &f.provisioner_token(), asset("z")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A context that does not exist in the token: 401 (VC order step 1).
    let ghost = idp
        .mint(&MintSpec::participant("ghost", &["management-api:write"]))
        .unwrap();
    assert_eq!(
        f.post(&url, &ghost, asset("z")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Admin needs no scope and bypasses ownership; unknown context is then 404.
    let admin = idp
        .mint(&MintSpec {
            role: Some(Role::Admin),
            ..MintSpec::default()
        })
        .unwrap();
    assert_eq!(f.post(&url, &admin, asset("z")).await.0, StatusCode::OK);
    let (status, body) = f.post(&f.url("ghost", "/assets"), &admin, asset("z")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // VC quirk: asset DELETE needs only the read scope.
    let (status, _) = f
        .call(
            Method::DELETE,
            &f.url(CONSUMER, "/assets/z"),
            Some(&f.token_with(CONSUMER, &["management-api:read"])),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Unknown ids are 404 for the owner.
    for path in [
        "/assets/nope",
        "/policydefinitions/nope",
        "/contractdefinitions/nope",
        "/contractnegotiations/nope",
        "/contractagreements/nope",
        "/transferprocesses/nope",
        "/transferprocesses/nope/state",
    ] {
        let (status, body) = f.get(&f.url(CONSUMER, path), &f.token(CONSUMER)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body[0]["type"], "ObjectNotFound");
    }
    // Another tenant's resource is invisible under one's own context.
    assert_eq!(
        f.post(
            &f.url(PROVIDER, "/assets"),
            &f.token(PROVIDER),
            asset("p-only")
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        f.get(&f.url(CONSUMER, "/assets/p-only"), &f.token(CONSUMER))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.get(&f.url(PROVIDER, "/assets/p-only"), &f.token(CONSUMER))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Subject mode (v5beta): per-resource scopes.
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let url = f.url(CONSUMER, "/assets");
    assert_eq!(
        f.post(
            &url,
            &f.token_with(CONSUMER, &["management-api:assets:write"]),
            asset("s1")
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        f.post(
            &url,
            &f.token_with(CONSUMER, &["management-api:assets:read"]),
            asset("s2")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.post(
            &url,
            &f.token_with(CONSUMER, &["management-api:policydefinitions:write"]),
            asset("s3")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.post(&url, &f.token_with(CONSUMER, &[]), asset("s4"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.post(&url, &f.token(OUTSIDER), asset("s5")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.post(&url, &f.admin_token(), asset("s6")).await.0,
        StatusCode::OK
    );
    let (status, _) = f
        .call(
            Method::DELETE,
            &f.url(CONSUMER, "/assets/s1"),
            Some(&f.token_with(CONSUMER, &["management-api:read"])),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Unknown version segment.
    let (status, _) = f
        .get(
            &format!(
                "{}/v9/participants/{CONSUMER}/assets/s1",
                f.sb.urls().management
            ),
            &f.token(CONSUMER),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn participant_contexts_and_config_for_provisioner_and_admin() {
    for (mode, version) in MODES {
        let f = common::start(mode, version).await;
        let prov = f.provisioner_token();
        let body = json!({"@context": [CTX], "@type": "ParticipantContext", "@id": "new-pc",
            "identity": "did:web:new.example", "properties": {"bpn": "BPNL0000000000NEW", "MembershipCredential": "active"}});
        let (status, resp) = f.post(&f.root("/participants"), &prov, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        assert_eq!(resp["@id"], "new-pc");
        assert_eq!(
            f.post(&f.root("/participants"), &prov, body).await.0,
            StatusCode::CONFLICT
        );
        // A tenant cannot create contexts.
        let (status, _) = f
            .post(
                &f.root("/participants"),
                &f.token(CONSUMER),
                json!({"@context": [CTX], "@type": "ParticipantContext", "identity": "did:web:x"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, pc) = f
            .get(&f.root("/participants/new-pc"), &f.admin_token())
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(pc["identity"], "did:web:new.example");
        assert_eq!(pc["state"], "CREATED");
        let (_, list) = f.get(&f.root("/participants"), &prov).await;
        assert_eq!(list.as_array().unwrap().len(), 4);
        // Config.
        let config = json!({"@context": [CTX], "@type": "ParticipantContextConfig",
            "entries": {"edc.participant.id": "did:web:new.example"}, "privateEntries": {"edc.vault.hashicorp.config": "{}"}});
        let (status, r) = f
            .call(
                Method::PUT,
                &f.root("/participants/new-pc/config"),
                Some(&prov),
                Some(config),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{r}");
        let (_, got) = f.get(&f.root("/participants/new-pc/config"), &prov).await;
        assert_eq!(got["entries"]["edc.participant.id"], "did:web:new.example");
        assert!(got.get("privateEntries").is_none());
        let patch =
            json!({"@context": [CTX], "@type": "ParticipantContextConfig", "entries": {"k": "v"}});
        let (status, _) = f
            .call(
                Method::PATCH,
                &f.root("/participants/new-pc/config"),
                Some(&prov),
                Some(patch),
            )
            .await;
        match version {
            ApiVersion::V5beta => {
                assert_eq!(status, StatusCode::NO_CONTENT);
                let (_, got) = f.get(&f.root("/participants/new-pc/config"), &prov).await;
                assert_eq!(got["entries"]["k"], "v");
                assert_eq!(got["entries"]["edc.participant.id"], "did:web:new.example");
            }
            ApiVersion::V4alpha => assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED),
        }
        // The new context can be used by its tenant.
        let (status, _) = f
            .post(
                &f.url("new-pc", "/assets/request"),
                &f.token("new-pc"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // Delete it.
        assert_eq!(
            f.call(
                Method::DELETE,
                &f.root("/participants/new-pc"),
                Some(&prov),
                None
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            f.get(&f.root("/participants/new-pc"), &prov).await.0,
            StatusCode::NOT_FOUND
        );
        // Bad bodies.
        let (status, body) = f
            .post(
                &f.root("/participants"),
                &prov,
                json!({"@context": [CTX], "@type": "ParticipantContext"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_error_array(&body, Some("identity"));
    }
}

#[tokio::test]
async fn cel_expressions_are_admin_resources() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let body = json!({"@context": [CTX, "https://w3id.org/edc/virtual-connector/management/v2"], "@type": "CelExpression", "@id": "membership",
        "leftOperand": "MembershipCredential", "expression": "ctx.agent.claims.vc...", "description": "membership", "scopes": ["catalog"]});
    assert_eq!(
        f.post(&f.root("/celexpressions"), &f.token(CONSUMER), body.clone())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, resp) = f
        .post(&f.root("/celexpressions"), &f.admin_token(), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let (_, got) = f
        .get(&f.root("/celexpressions/membership"), &f.admin_token())
        .await;
    assert_eq!(got["leftOperand"], "MembershipCredential");
    let (_, list) = f
        .post(
            &f.root("/celexpressions/request"),
            &f.admin_token(),
            json!({}),
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn dataplane_registration_accepts_both_field_spellings() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let token = f.token(PROVIDER);
    let url = f.url(PROVIDER, "/dataplanes");
    let a = json!({"dataplaneId": "dp-1", "endpoint": "http://127.0.0.1:1/dataflows", "transferTypes": ["HttpData-PULL"], "labels": []});
    let b = json!({"id": "dp-2", "endpoint": "http://127.0.0.1:2/dataflows", "profiles": ["https://w3id.org/dspace-sig/profile/http-pull"],
        "authorization": {"type": "oauth2_client_credentials", "tokenEndpoint": "http://x", "clientId": "c", "clientSecret": "s"}});
    assert_eq!(
        f.call(Method::PUT, &url, Some(&token), Some(a.clone()))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        f.call(Method::PUT, &url, Some(&token), Some(b)).await.0,
        StatusCode::OK
    );
    // Replace semantics.
    assert_eq!(
        f.call(Method::PUT, &url, Some(&token), Some(a)).await.0,
        StatusCode::OK
    );
    let (status, body) = f
        .call(
            Method::PUT,
            &url,
            Some(&token),
            Some(json!({"endpoint": "ftp://x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_array(&body, Some("dataplaneId"));
    assert_error_array(&body, Some("endpoint"));
    assert_error_array(&body, Some("transferTypes"));
    assert_eq!(
        f.call(Method::PUT, &url, Some(&f.token(CONSUMER)), Some(json!({})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.call(Method::DELETE, &format!("{url}/dp-1"), Some(&token), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        f.call(Method::DELETE, &format!("{url}/dp-1"), Some(&token), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn requests_are_recorded_and_outages_simulated() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let cp = f.sb.control_plane();
    assert!(
        cp.requests().is_empty(),
        "the control plane saw no request yet"
    );
    let token = f.token(PROVIDER);
    f.post(&f.url(PROVIDER, "/assets"), &token, asset("r1"))
        .await;
    let requests = cp.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].path,
        format!("/api/mgmt/v5beta/participants/{PROVIDER}/assets")
    );
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(requests[0].body.contains("\"r1\""));
    cp.clear_requests();
    assert!(cp.requests().is_empty());
    cp.set_available(false);
    let (status, body) = f.get(&f.url(PROVIDER, "/assets/r1"), &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error_array(&body, None);
    cp.set_available(true);
    assert_eq!(
        f.get(&f.url(PROVIDER, "/assets/r1"), &token).await.0,
        StatusCode::OK
    );
    // Wrong methods are 405, unknown paths 404, both with an error array.
    let (status, body) = f.get(&f.url(PROVIDER, "/assets"), &token).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_array(&body, None);
    // Unknown paths are 404 with an error array.
    let (status, body) = f
        .get(&format!("{}/nothing", f.sb.urls().management), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_array(&body, None);
}
