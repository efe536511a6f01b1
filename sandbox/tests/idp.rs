//! Identity provider: JWKS, discovery, client credentials, token exchange, claim modes,
//! RFC 6749 errors, token lifetime and outages.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_sandbox::idp::{TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_JWT};
use weft_sandbox::{
    ApiVersion, ClaimMode, ClientSpec, MintSpec, Role, SandboxConfig, SigningAlgorithm, VerifyError,
};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

async fn form(http: &reqwest::Client, url: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http.post(url).form(fields).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn clients() -> Vec<ClientSpec> {
    vec![
        ClientSpec::participant(
            "tenant-a",
            "secret-a",
            "consumer-pc",
            &["management-api:read", "management-api:write"],
        ),
        ClientSpec::service(
            "weft",
            "weft-secret",
            Role::Participant,
            &["management-api:read", "management-api:write"],
        )
        .with_token_exchange(),
        ClientSpec::service(
            "admin",
            "admin-secret",
            Role::Admin,
            &["management-api:admin"],
        ),
    ]
}

async fn start(mode: ClaimMode) -> common::Fixture {
    common::start_with(
        SandboxConfig {
            claim_mode: mode,
            clients: clients(),
            participants: common::participants(),
            ..SandboxConfig::default()
        },
        ApiVersion::V5beta,
    )
    .await
}

#[tokio::test]
async fn jwks_and_discovery_describe_both_keys() {
    let f = start(ClaimMode::Subject).await;
    let urls = f.sb.urls().clone();
    let (status, jwks) = common::call(&f.http, reqwest::Method::GET, &urls.jwks, None, None).await;
    assert_eq!(status, StatusCode::OK);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let es = keys.iter().find(|k| k["alg"] == "ES256").unwrap();
    assert_eq!(es["kty"], "EC");
    assert_eq!(es["crv"], "P-256");
    assert_eq!(es["kid"], f.sb.idp().es256_kid());
    let rs = keys.iter().find(|k| k["alg"] == "RS256").unwrap();
    assert_eq!(rs["kty"], "RSA");
    assert_eq!(rs["kid"], f.sb.idp().rs256_kid());

    let (status, doc) =
        common::call(&f.http, reqwest::Method::GET, &urls.discovery, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["issuer"], urls.issuer);
    assert_eq!(doc["token_endpoint"], urls.token);
    assert_eq!(doc["jwks_uri"], urls.jwks);
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(TOKEN_EXCHANGE_GRANT))
    );
}

#[tokio::test]
async fn client_credentials_in_participant_context_mode() {
    let f = start(ClaimMode::ParticipantContext).await;
    let (status, body) = form(
        &f.http,
        &f.sb.urls().token,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "tenant-a"),
            ("client_secret", "secret-a"),
            ("scope", "management-api:read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "management-api:read");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["participant_context_id"], "consumer-pc");
    assert_eq!(claims["role"], "participant");
    assert_eq!(claims["scope"], "management-api:read");
    assert_eq!(claims["iss"], f.sb.urls().issuer);
    for claim in ["iat", "exp", "jti"] {
        assert!(!claims[claim].is_null(), "{claim} missing: {claims}");
    }
    assert_eq!(header_of(token)["kid"], f.sb.idp().es256_kid());
    assert_eq!(header_of(token)["alg"], "ES256");
    // The control plane accepts it for its own context.
    let (status, _) = f
        .post(
            &f.url(common::CONSUMER, "/assets/request"),
            token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn client_credentials_in_subject_mode_with_basic_auth() {
    let f = start(ClaimMode::Subject).await;
    let basic = STANDARD.encode("tenant-a:secret-a");
    let response = f
        .http
        .post(&f.sb.urls().token)
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "consumer-pc");
    assert!(
        claims.get("role").is_none() && claims.get("participant_context_id").is_none(),
        "{claims}"
    );
    assert_eq!(claims["scope"], "management-api:read management-api:write");
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc6749() {
    let f = start(ClaimMode::Subject).await;
    let url = f.sb.urls().token.clone();
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "tenant-a"),
                ("client_secret", "wrong"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "tenant-a"),
                ("client_secret", "secret-a"),
                ("scope", "management-api:admin"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "tenant-a"),
                ("client_secret", "secret-a"),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", "tenant-a")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (fields, status, error) in cases {
        let (got, body) = form(&f.http, &url, &fields).await;
        assert_eq!(got, status, "{fields:?}: {body}");
        assert_eq!(body["error"], error, "{fields:?}: {body}");
    }
    // A JSON body is not a form.
    let response = f
        .http
        .post(&url)
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn token_exchange_targets_the_resource_context() {
    for mode in [ClaimMode::Subject, ClaimMode::ParticipantContext] {
        let f = start(mode).await;
        let url = f.sb.urls().token.clone();
        let (_, weft) = form(
            &f.http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "weft"),
                ("client_secret", "weft-secret"),
            ],
        )
        .await;
        let subject = weft["access_token"].as_str().unwrap().to_owned();
        // Without client authentication: the subject token's client must be allowed to exchange.
        let (status, body) = form(
            &f.http,
            &url,
            &[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", &subject),
                ("subject_token_type", TOKEN_TYPE_JWT),
                ("resource", "provider-pc"),
                ("scope", "management-api:read"),
                ("audience", "edcv"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        let token = body["access_token"].as_str().unwrap();
        let claims = claims_of(token);
        match mode {
            ClaimMode::Subject => assert_eq!(claims["sub"], "provider-pc"),
            ClaimMode::ParticipantContext => {
                assert_eq!(claims["participant_context_id"], "provider-pc");
                assert_eq!(claims["role"], "participant");
            }
        }
        assert_eq!(claims["scope"], "management-api:read");
        // The exchanged token works on the resource's context and nowhere else.
        let (status, _) = f
            .post(&f.url("provider-pc", "/assets/request"), token, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = f
            .post(&f.url("consumer-pc", "/assets/request"), token, json!({}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // A client not allowed to exchange.
        let (_, tenant) = form(
            &f.http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "tenant-a"),
                ("client_secret", "secret-a"),
            ],
        )
        .await;
        let (status, body) = form(
            &f.http,
            &url,
            &[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", tenant["access_token"].as_str().unwrap()),
                ("resource", "provider-pc"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
        );
        // A subject token from elsewhere.
        let (status, body) = form(
            &f.http,
            &url,
            &[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", "eyJhbGciOiJub25lIn0.e30."),
                ("resource", "provider-pc"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        // Missing resource, and a scope beyond the client's.
        let (status, body) = form(
            &f.http,
            &url,
            &[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", &subject),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        let (status, body) = form(
            &f.http,
            &url,
            &[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", &subject),
                ("resource", "provider-pc"),
                ("scope", "management-api:admin"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_scope"))
        );
    }
}

#[tokio::test]
async fn verification_rejects_bad_tokens() {
    let f = start(ClaimMode::Subject).await;
    let idp = f.sb.idp();
    let good = idp
        .mint(&MintSpec::participant(
            "consumer-pc",
            &["management-api:read"],
        ))
        .unwrap();
    assert_eq!(idp.verify(&good).unwrap().sub(), Some("consumer-pc"));
    let rs = idp
        .mint(&MintSpec {
            algorithm: SigningAlgorithm::Rs256,
            ..MintSpec::participant("consumer-pc", &[])
        })
        .unwrap();
    assert_eq!(header_of(&rs)["alg"], "RS256");
    assert!(idp.verify(&rs).is_ok());

    let mut claims = idp.claims_for(&MintSpec::participant("consumer-pc", &[]));
    claims.insert("exp".into(), json!(1_000));
    claims.insert("iat".into(), json!(900));
    let expired = idp
        .sign(
            &Value::Object(claims.clone()),
            SigningAlgorithm::Es256,
            None,
        )
        .unwrap();
    assert_eq!(idp.verify(&expired), Err(VerifyError::Expired));

    let mut wrong_iss = idp.claims_for(&MintSpec::participant("consumer-pc", &[]));
    wrong_iss.insert("iss".into(), json!("https://evil.example"));
    let wrong_iss = idp
        .sign(&Value::Object(wrong_iss), SigningAlgorithm::Es256, None)
        .unwrap();
    assert_eq!(idp.verify(&wrong_iss), Err(VerifyError::WrongIssuer));

    let unknown_kid = idp
        .sign(
            &Value::Object(idp.claims_for(&MintSpec::default())),
            SigningAlgorithm::Es256,
            Some("nope"),
        )
        .unwrap();
    assert_eq!(
        idp.verify(&unknown_kid),
        Err(VerifyError::UnknownKid("nope".into()))
    );

    let mut no_exp = idp.claims_for(&MintSpec::default());
    no_exp.remove("exp");
    let no_exp = idp
        .sign(&Value::Object(no_exp), SigningAlgorithm::Es256, None)
        .unwrap();
    assert!(idp.verify(&no_exp).is_err());

    // A token from another sandbox's IdP (same issuer URL shape, other keys) is rejected.
    let other = start(ClaimMode::Subject).await;
    let foreign = other
        .sb
        .idp()
        .mint(&MintSpec::participant("consumer-pc", &[]))
        .unwrap();
    assert!(idp.verify(&foreign).is_err());
}

#[tokio::test]
async fn short_lifetime_tokens_expire() {
    let f = start(ClaimMode::Subject).await;
    f.sb.idp().set_token_lifetime(Duration::from_secs(1));
    let (status, body) = form(
        &f.http,
        &f.sb.urls().token,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "tenant-a"),
            ("client_secret", "secret-a"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 1);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        1
    );
    // A zero-lifetime token is rejected as soon as the clock moves past `exp`.
    let token =
        f.sb.idp()
            .mint(&MintSpec {
                lifetime: Some(Duration::ZERO),
                ..MintSpec::participant("consumer-pc", &["management-api:read"])
            })
            .unwrap();
    common::eventually("token expiry", || {
        f.sb.idp().verify(&token) == Err(VerifyError::Expired)
    })
    .await;
    let (status, body) = f
        .post(&f.url("consumer-pc", "/assets/request"), &token, json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn outage_answers_503_until_restored() {
    let f = start(ClaimMode::Subject).await;
    f.sb.idp().set_available(false);
    let (status, body) = form(
        &f.http,
        &f.sb.urls().token,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "tenant-a"),
            ("client_secret", "secret-a"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "temporarily_unavailable");
    let (status, _) =
        common::call(&f.http, reqwest::Method::GET, &f.sb.urls().jwks, None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    f.sb.idp().set_available(true);
    let (status, _) = form(
        &f.http,
        &f.sb.urls().token,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "tenant-a"),
            ("client_secret", "secret-a"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn clients_can_be_added_at_runtime() {
    let f = start(ClaimMode::Subject).await;
    f.sb.register_client(ClientSpec::participant(
        "late",
        "late-secret",
        "provider-pc",
        &["management-api:read"],
    ));
    let token = f.sb.token_for_client("late").unwrap();
    assert_eq!(claims_of(&token)["sub"], "provider-pc");
    assert!(f.sb.token_for_client("missing").is_err());
    assert!(f.sb.idp().remove_client("late"));
    let (status, _) = form(
        &f.http,
        &f.sb.urls().token,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "late"),
            ("client_secret", "late-secret"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
