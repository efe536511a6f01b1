//! End-to-end checks of token validation against a JWKS served on 127.0.0.1:0.

use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use weft_auth::testing::{TestIssuer, admin_claims, now_secs, participant_claims, subject_claims};
use weft_auth::{
    AuthConfig, AuthError, Authenticator, ClaimMode, ConfigError, PUBLIC_MESSAGE, Role,
};

const PC_A: &str = "3f0e7b8c2a9d4e6f8a1b2c3d4e5f6a7b";

fn claims() -> serde_json::Value {
    participant_claims(PC_A, &["management-api:read", "weft:apps"])
}

/// Asserts the exact failure and that the public text reveals nothing about it.
async fn rejects(auth: &Authenticator, token: &str, expected: AuthError) {
    let err = auth
        .authenticate(token)
        .await
        .expect_err("token must be rejected");
    assert_eq!(err, expected, "token {token}");
    assert_eq!(err.public_message(), PUBLIC_MESSAGE);
}

#[tokio::test]
async fn valid_es256_and_rs256_tokens_give_a_participant() {
    let idp = TestIssuer::new();
    let (auth, _) = idp.authenticator().await;
    for token in [idp.mint(claims()), idp.mint_rs256(claims())] {
        let p = auth.authenticate(&token).await.unwrap();
        assert_eq!(p.role, Role::Participant);
        assert_eq!(p.participant_context_id.as_deref(), Some(PC_A));
        assert_eq!(p.subject, PC_A);
        assert!(p.has_scope("weft:apps"));
        assert!(p.has_scope("management-api:read"));
        assert!(!p.has_scope("management-api:write"));
        assert!(p.token_id.is_some());
        assert!(!p.is_admin());
        assert!(p.can_act_for(PC_A));
        assert!(!p.can_act_for("other"));
    }
    // Through the header helper as the server will call it.
    let p = auth
        .authenticate_header(Some(&format!("Bearer {}", idp.mint(claims()))))
        .await
        .unwrap();
    assert_eq!(p.participant_context_id.as_deref(), Some(PC_A));
}

#[tokio::test]
async fn missing_and_malformed_tokens_are_rejected() {
    let idp = TestIssuer::new();
    let (auth, fetches) = idp.authenticator().await;
    rejects(&auth, "", AuthError::MissingToken).await;
    assert_eq!(
        auth.authenticate_header(None).await.unwrap_err(),
        AuthError::MissingToken
    );
    assert_eq!(
        auth.authenticate_header(Some("Basic YTpi"))
            .await
            .unwrap_err(),
        AuthError::NotBearer
    );
    for bad in [
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        "e30.e30.sig",
        "bm90IGpzb24.e30.sig",
        "W10.e30.sig",
    ] {
        let err = auth.authenticate(bad).await.unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)), "{bad}: {err:?}");
        assert_eq!(err.public_message(), PUBLIC_MESSAGE);
    }
    // Validly signed, but the payload is not a JSON object.
    let key = idp.es256_key();
    for payload in [&b"not json"[..], b"[1,2]", b"\"str\""] {
        let token = key.sign_compact(&json!({"alg": "ES256", "kid": key.kid()}), payload);
        let err = auth.authenticate(&token).await.unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)), "{err:?}");
    }
    // Garbage payload with a signature that cannot match: the signature check comes first.
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": idp.es256_kid()}).to_string());
    rejects(
        &auth,
        &format!("{header}.%%%.c2ln"),
        AuthError::BadSignature,
    )
    .await;
    // Valid shape but no signature.
    let err = auth
        .authenticate(&format!("{header}.e30."))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Malformed(_)), "{err:?}");
    let huge = "a".repeat(weft_auth::MAX_TOKEN_BYTES + 1);
    rejects(
        &auth,
        &huge,
        AuthError::TooLarge {
            max: weft_auth::MAX_TOKEN_BYTES,
        },
    )
    .await;
    // Only the last two got as far as looking up a key.
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn every_bad_token_fixture_is_rejected_with_its_reason() {
    let idp = TestIssuer::new();
    let (auth, _) = idp.authenticator().await;
    rejects(
        &auth,
        &idp.token_bad_signature(claims()),
        AuthError::BadSignature,
    )
    .await;
    rejects(
        &auth,
        &idp.token_alg_none(claims()),
        AuthError::AlgorithmNotAllowed("none".into()),
    )
    .await;
    rejects(
        &auth,
        &idp.token_hs256_with_public_key(claims()),
        AuthError::AlgorithmNotAllowed("HS256".into()),
    )
    .await;
    rejects(&auth, &idp.token_expired(claims()), AuthError::Expired).await;
    rejects(
        &auth,
        &idp.token_not_yet_valid(claims()),
        AuthError::NotYetValid,
    )
    .await;
    rejects(
        &auth,
        &idp.token_wrong_issuer(claims()),
        AuthError::WrongIssuer,
    )
    .await;
    rejects(
        &auth,
        &idp.token_without_kid(claims()),
        AuthError::MissingKid,
    )
    .await;
    let unknown = idp.token_unknown_kid(claims());
    let err = auth.authenticate(&unknown).await.unwrap_err();
    assert!(
        matches!(err, AuthError::UnknownKid(ref k) if k.starts_with("unknown-")),
        "{err:?}"
    );
    // A good token still passes on the same authenticator.
    auth.authenticate(&idp.mint(claims())).await.unwrap();
}

#[tokio::test]
async fn public_message_never_names_the_check() {
    let errors = [
        AuthError::Expired,
        AuthError::UnknownKid("k".into()),
        AuthError::BadSignature,
        AuthError::WrongIssuer,
        AuthError::JwksUnavailable("down".into()),
        AuthError::Malformed("x".into()),
    ];
    for e in errors {
        assert_eq!(e.public_message(), "invalid or missing token");
        assert_ne!(e.to_string(), e.public_message());
    }
}

#[tokio::test]
async fn exp_is_required_nbf_is_optional() {
    let idp = TestIssuer::new();
    let (auth, _) = idp.authenticator().await;
    let mut c = claims();
    c["exp"] = serde_json::Value::Null;
    rejects(&auth, &idp.mint(c), AuthError::MissingClaim("exp".into())).await;
    let mut c = claims();
    c["iss"] = serde_json::Value::Null;
    rejects(&auth, &idp.mint(c), AuthError::MissingClaim("iss".into())).await;
    let mut c = claims();
    c["nbf"] = json!(now_secs() - 60);
    auth.authenticate(&idp.mint(c)).await.unwrap();
    // An exp that is not a number counts as no exp.
    let mut c = claims();
    c["exp"] = json!("tomorrow");
    rejects(&auth, &idp.mint(c), AuthError::MissingClaim("exp".into())).await;
    let mut c = claims();
    c["iat"] = json!(now_secs() + 10_000);
    c["exp"] = json!(now_secs() + 100);
    let err = auth.authenticate(&idp.mint(c)).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidClaim { ref claim, .. } if claim == "iat"),
        "{err:?}"
    );
}

#[tokio::test]
async fn leeway_applies_to_exp_and_nbf() {
    let idp = TestIssuer::new();
    let expired_recently = {
        let mut c = claims();
        c["exp"] = json!(now_secs() - 10);
        c["iat"] = json!(now_secs() - 100);
        idp.mint(c)
    };
    let starts_soon = {
        let mut c = claims();
        c["nbf"] = json!(now_secs() + 10);
        idp.mint(c)
    };
    let (lenient, _) = idp.authenticator_with(|c| c.leeway_secs = 120).await;
    lenient.authenticate(&expired_recently).await.unwrap();
    lenient.authenticate(&starts_soon).await.unwrap();
    let (strict, _) = idp.authenticator_with(|c| c.leeway_secs = 0).await;
    rejects(&strict, &expired_recently, AuthError::Expired).await;
    rejects(&strict, &starts_soon, AuthError::NotYetValid).await;
}

#[tokio::test]
async fn audience_is_checked_only_when_configured() {
    let idp = TestIssuer::new();
    let mut c = claims();
    c["aud"] = json!("someone-else");
    let wrong_aud = idp.mint(c);
    let mut c = claims();
    c["aud"] = json!(["account", "weft"]);
    let right_aud = idp.mint(c);
    let no_aud = idp.mint(claims());

    let (unchecked, _) = idp.authenticator().await;
    for t in [&wrong_aud, &right_aud, &no_aud] {
        unchecked.authenticate(t).await.unwrap();
    }
    let (checked, _) = idp
        .authenticator_with(|c| c.audience = Some("weft".into()))
        .await;
    checked.authenticate(&right_aud).await.unwrap();
    rejects(&checked, &wrong_aud, AuthError::WrongAudience).await;
    rejects(&checked, &no_aud, AuthError::MissingClaim("aud".into())).await;
}

#[tokio::test]
async fn only_configured_algorithms_are_accepted() {
    let idp = TestIssuer::new();
    let (es_only, _) = idp
        .authenticator_with(|c| c.algorithms = vec!["ES256".into()])
        .await;
    es_only.authenticate(&idp.mint(claims())).await.unwrap();
    rejects(
        &es_only,
        &idp.mint_rs256(claims()),
        AuthError::AlgorithmNotAllowed("RS256".into()),
    )
    .await;

    // A header naming an allowed algorithm that the kid's key cannot verify.
    let (auth, _) = idp
        .authenticator_with(|c| c.algorithms = vec!["ES256".into(), "ES384".into(), "PS256".into()])
        .await;
    let forged = |alg: &str, kid: &str| {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid}).to_string());
        let p = URL_SAFE_NO_PAD.encode(idp.complete_claims(claims()).to_string());
        format!("{h}.{p}.c2lnbmF0dXJl")
    };
    for (alg, kid, shown) in [
        ("ES384", idp.es256_kid(), "ES384"),
        ("PS256", idp.rs256_kid(), "PS256"),
    ] {
        rejects(
            &auth,
            &forged(alg, kid),
            AuthError::KeyAlgorithmMismatch {
                kid: kid.to_owned(),
                alg: shown.to_owned(),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn header_tricks_are_ignored_or_refused() {
    let idp = TestIssuer::new();
    let (auth, _) = idp.authenticator().await;
    // Embedded attacker key (`jwk`) and `jku`: never trusted; the kid's JWKS key decides.
    let attacker = TestIssuer::new();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(idp.es256_kid().to_owned());
    header.jwk = Some(serde_json::from_value(attacker.es256_key().public_jwk().clone()).unwrap());
    header.jku = Some("http://127.0.0.1:9/evil".into());
    let token = attacker
        .es256_key()
        .sign(&header, &idp.complete_claims(claims()));
    rejects(&auth, &token, AuthError::BadSignature).await;
    // `crit` extensions are not understood, so the token must be refused (RFC 7515 4.1.11).
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(idp.es256_kid().to_owned());
    header.crit = Some(vec!["exp".into()]);
    let token = idp
        .es256_key()
        .sign(&header, &idp.complete_claims(claims()));
    rejects(&auth, &token, AuthError::UnsupportedCritical).await;
    // Another issuer's properly signed token with the same kid name is still a bad signature.
    let mut c = attacker.complete_claims(claims());
    c["iss"] = json!(idp.issuer());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(idp.es256_kid().to_owned());
    rejects(
        &auth,
        &attacker.es256_key().sign(&header, &c),
        AuthError::BadSignature,
    )
    .await;
}

#[tokio::test]
async fn participant_context_mode_roles() {
    let idp = TestIssuer::new();
    let (auth, _) = idp.authenticator().await;

    let admin = auth.authenticate(&idp.mint(admin_claims())).await.unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert!(admin.is_admin());
    assert!(admin.can_act_for(PC_A) && admin.can_act_for("any"));
    assert_eq!(admin.participant_context_id, None);
    assert_eq!(admin.subject, "admin");

    let prov = auth
        .authenticate(&idp.mint(
            json!({"sub": "provisioner", "role": "provisioner", "scope": "management-api:write"}),
        ))
        .await
        .unwrap();
    assert_eq!(prov.role, Role::Provisioner);
    assert!(!prov.can_act_for(PC_A));

    // Keycloak client-credentials tokens: subject falls back to azp when sub is absent.
    let p = auth
        .authenticate(&idp.mint(
            json!({"azp": "client-7", "participant_context_id": PC_A, "role": "participant",
            "scope": ["weft:apps"]}),
        ))
        .await
        .unwrap();
    assert_eq!(p.subject, "client-7");
    assert!(p.has_scope("weft:apps"));

    let mut c = claims();
    c["role"] = json!("superuser");
    rejects(
        &auth,
        &idp.mint(c),
        AuthError::UnknownRole("superuser".into()),
    )
    .await;
    let mut c = claims();
    c["role"] = serde_json::Value::Null;
    rejects(&auth, &idp.mint(c), AuthError::MissingClaim("role".into())).await;
    let mut c = claims();
    c["role"] = json!("Admin");
    rejects(&auth, &idp.mint(c), AuthError::UnknownRole("Admin".into())).await;
    let mut c = claims();
    c["participant_context_id"] = serde_json::Value::Null;
    rejects(
        &auth,
        &idp.mint(c),
        AuthError::MissingClaim("participant_context_id".into()),
    )
    .await;
    let mut c = claims();
    c["participant_context_id"] = json!(42);
    let err = auth.authenticate(&idp.mint(c)).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidClaim { ref claim, .. } if claim == "participant_context_id")
    );
    // The admin scope alone does not make a participant an admin in this mode.
    let p = auth
        .authenticate(&idp.mint(participant_claims(PC_A, &["weft:admin"])))
        .await
        .unwrap();
    assert_eq!(p.role, Role::Participant);
    assert!(!p.can_act_for("other"));
}

#[tokio::test]
async fn subject_mode_roles_come_from_scopes() {
    let idp = TestIssuer::new();
    let (auth, _) = idp
        .authenticator_with(|c| {
            c.claim_mode = ClaimMode::Subject;
            c.provisioner_scope = Some("weft:provision".into());
        })
        .await;

    let p = auth
        .authenticate(&idp.mint(subject_claims(PC_A, &["management-api:read", "weft:apps"])))
        .await
        .unwrap();
    assert_eq!(p.role, Role::Participant);
    assert_eq!(p.participant_context_id.as_deref(), Some(PC_A));
    assert!(p.can_act_for(PC_A) && !p.can_act_for("other"));

    // role / participant_context_id claims are ignored in this mode.
    let mut c = subject_claims(PC_A, &["weft:apps"]);
    c["role"] = json!("admin");
    c["participant_context_id"] = json!("other");
    let p = auth.authenticate(&idp.mint(c)).await.unwrap();
    assert_eq!(p.role, Role::Participant);
    assert_eq!(p.participant_context_id.as_deref(), Some(PC_A));

    for scope in ["management-api:admin", "weft:admin"] {
        let a = auth
            .authenticate(&idp.mint(subject_claims("admin-subject", &[scope])))
            .await
            .unwrap();
        assert_eq!(a.role, Role::Admin, "{scope}");
        assert_eq!(a.participant_context_id, None);
        assert!(a.can_act_for(PC_A));
    }
    let prov = auth
        .authenticate(&idp.mint(subject_claims("cfm", &["weft:provision"])))
        .await
        .unwrap();
    assert_eq!(prov.role, Role::Provisioner);

    let mut c = subject_claims(PC_A, &["weft:apps"]);
    c["sub"] = serde_json::Value::Null;
    rejects(&auth, &idp.mint(c), AuthError::MissingClaim("sub".into())).await;

    // The EDC elevation scope can be switched off.
    let (strict, _) = idp
        .authenticator_with(|c| {
            c.claim_mode = ClaimMode::Subject;
            c.extra_admin_scopes = vec![];
            c.admin_scope = "csp:operator".into();
        })
        .await;
    let p = strict
        .authenticate(&idp.mint(subject_claims(
            PC_A,
            &["management-api:admin", "weft:admin"],
        )))
        .await
        .unwrap();
    assert_eq!(p.role, Role::Participant);
    let a = strict
        .authenticate(&idp.mint(subject_claims("op", &["csp:operator"])))
        .await
        .unwrap();
    assert!(a.is_admin());
    assert_eq!(strict.admin_scope(), "csp:operator");
    assert_eq!(strict.apps_scope(), "weft:apps");
}

#[tokio::test]
async fn jwks_is_cached() {
    let idp = TestIssuer::new();
    let (auth, fetches) = idp
        .authenticator_with(|c| c.jwks_min_refresh_secs = 3600)
        .await;
    for _ in 0..25 {
        auth.authenticate(&idp.mint(claims())).await.unwrap();
        auth.authenticate(&idp.mint_rs256(claims())).await.unwrap();
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Clones share the cache.
    auth.clone()
        .authenticate(&idp.mint(claims()))
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_start_fetches_once() {
    let idp = TestIssuer::new();
    let (auth, fetches) = idp.authenticator().await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let auth = auth.clone();
            let token = idp.mint(claims());
            tokio::spawn(async move { auth.authenticate(&token).await })
        })
        .collect();
    for r in futures::future::join_all(tasks).await {
        r.unwrap().unwrap();
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_kid_flood_is_bounded_by_min_refresh() {
    let idp = TestIssuer::new();
    let (auth, fetches) = idp
        .authenticator_with(|c| c.jwks_min_refresh_secs = 3600)
        .await;
    auth.authenticate(&idp.mint(claims())).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    for _ in 0..50 {
        let err = auth
            .authenticate(&idp.token_unknown_kid(claims()))
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::UnknownKid(_)));
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "a flood of unknown kids must not reach the IdP"
    );

    // Control: without the interval each unknown kid triggers a refetch, so the counter
    // above really measures what the interval prevents.
    let (eager, eager_fetches) = idp
        .authenticator_with(|c| c.jwks_min_refresh_secs = 0)
        .await;
    eager.authenticate(&idp.mint(claims())).await.unwrap();
    for _ in 0..5 {
        eager
            .authenticate(&idp.token_unknown_kid(claims()))
            .await
            .unwrap_err();
    }
    assert_eq!(eager_fetches.load(Ordering::SeqCst), 6);
}

/// All requests start while the first fetch is in flight: they share it. (One poll of
/// `join_all` polls every future before any I/O can complete, so this is deterministic.)
#[tokio::test(flavor = "current_thread")]
async fn concurrent_unknown_kids_share_one_fetch() {
    const N: usize = 16; // below join_all's small-set threshold: all polled in one pass
    let idp = TestIssuer::new();
    let (auth, fetches) = idp
        .authenticator_with(|c| c.jwks_min_refresh_secs = 0)
        .await;
    let tokens: Vec<String> = (0..N).map(|_| idp.token_unknown_kid(claims())).collect();
    let results = futures::future::join_all(tokens.iter().map(|t| auth.authenticate(t))).await;
    for r in results {
        assert!(matches!(r, Err(AuthError::UnknownKid(_))), "{r:?}");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rotated_key_is_accepted_after_refresh() {
    let idp = TestIssuer::new();
    let (auth, fetches) = idp.authenticator().await;
    auth.authenticate(&idp.mint(claims())).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    let next = idp.new_key();
    let token = idp.mint_with_kid(&next, claims());
    assert_eq!(
        auth.authenticate(&token).await.unwrap_err(),
        AuthError::UnknownKid(next.clone())
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    idp.publish_key(&next);
    let p = auth.authenticate(&token).await.unwrap();
    assert_eq!(p.participant_context_id.as_deref(), Some(PC_A));
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
    // Old and new keys both work from the cache now.
    auth.authenticate(&idp.mint(claims())).await.unwrap();
    auth.authenticate(&idp.mint_with_kid(&next, claims()))
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 3);

    // rotate() publishes at once.
    let third = idp.rotate();
    auth.authenticate(&idp.mint_with_kid(&third, claims()))
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn retired_key_is_refused_after_cache_expiry() {
    let idp = TestIssuer::new();
    let (auth, fetches) = idp
        .authenticator_with(|c| {
            c.jwks_cache_ttl_secs = 0;
            c.jwks_min_refresh_secs = 0;
        })
        .await;
    let token = idp.mint(claims());
    auth.authenticate(&token).await.unwrap();
    idp.unpublish_key(idp.es256_kid());
    rejects(
        &auth,
        &token,
        AuthError::UnknownKid(idp.es256_kid().to_owned()),
    )
    .await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "ttl 0 refetches every time"
    );
}

#[tokio::test]
async fn idp_outage() {
    let idp = TestIssuer::new();
    idp.set_jwks_failing(true);
    let (auth, fetches) = idp
        .authenticator_with(|c| c.jwks_min_refresh_secs = 3600)
        .await;
    for _ in 0..10 {
        let err = auth.authenticate(&idp.mint(claims())).await.unwrap_err();
        assert!(err.is_idp_unavailable(), "{err:?}");
        assert_eq!(err.public_message(), PUBLIC_MESSAGE);
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "failed fetches are rate-limited too"
    );

    // With keys cached, an outage at refresh time keeps the stale keys working.
    let idp = TestIssuer::new();
    let (auth, fetches) = idp
        .authenticator_with(|c| {
            c.jwks_cache_ttl_secs = 0;
            c.jwks_min_refresh_secs = 0;
        })
        .await;
    auth.authenticate(&idp.mint(claims())).await.unwrap();
    idp.set_jwks_failing(true);
    auth.authenticate(&idp.mint(claims())).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn jwks_unreachable_is_unavailable() {
    let idp = TestIssuer::new();
    // Bind and drop to get a closed port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth = Authenticator::new(
        idp.config(&format!("http://127.0.0.1:{port}/jwks")),
        reqwest::Client::new(),
    )
    .unwrap();
    let err = auth.authenticate(&idp.mint(claims())).await.unwrap_err();
    assert!(err.is_idp_unavailable(), "{err:?}");
}

#[test]
fn config_rejects_symmetric_and_unknown_algorithms() {
    let base = AuthConfig::new("https://idp/realms/x", "https://idp/certs");
    let with = |algs: &[&str]| {
        let mut c = base.clone();
        c.algorithms = algs.iter().map(|s| s.to_string()).collect();
        Authenticator::new(c, reqwest::Client::new()).map(|_| ())
    };
    assert_eq!(
        with(&["HS256"]),
        Err(ConfigError::ForbiddenAlgorithm("HS256".into()))
    );
    assert_eq!(
        with(&["RS256", "hs512"]),
        Err(ConfigError::ForbiddenAlgorithm("hs512".into()))
    );
    assert_eq!(
        with(&["none"]),
        Err(ConfigError::ForbiddenAlgorithm("none".into()))
    );
    assert_eq!(
        with(&["RS1"]),
        Err(ConfigError::UnknownAlgorithm("RS1".into()))
    );
    assert_eq!(with(&[]), Err(ConfigError::NoAlgorithms));
    for ok in [
        "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
    ] {
        assert_eq!(with(&[ok]), Ok(()), "{ok}");
    }
}

#[test]
fn config_checks_urls_and_values() {
    let mk = |iss: &str, url: &str| {
        Authenticator::new(AuthConfig::new(iss, url), reqwest::Client::new()).map(|_| ())
    };
    assert_eq!(mk("", "https://idp/certs"), Err(ConfigError::EmptyIssuer));
    assert!(matches!(
        mk("i", "not a url"),
        Err(ConfigError::InvalidJwksUrl(_))
    ));
    assert!(matches!(
        mk("i", "ftp://idp/certs"),
        Err(ConfigError::InvalidJwksUrl(_))
    ));
    assert!(matches!(
        mk("i", "http://keycloak:8080/certs"),
        Err(ConfigError::InsecureJwksUrl(_))
    ));
    for ok in [
        "http://127.0.0.1:1/certs",
        "http://localhost/c",
        "http://[::1]:8/c",
        "https://idp/certs",
    ] {
        assert_eq!(mk("i", ok), Ok(()), "{ok}");
    }
    let mut c = AuthConfig::new("i", "http://keycloak:8080/certs");
    c.allow_insecure_jwks_url = true;
    assert!(Authenticator::new(c, reqwest::Client::new()).is_ok());
    let mut c = AuthConfig::new("i", "https://idp/certs");
    c.leeway_secs = weft_auth::MAX_LEEWAY_SECS + 1;
    assert!(matches!(
        Authenticator::new(c, reqwest::Client::new()),
        Err(ConfigError::LeewayTooLarge { .. })
    ));
    let mut c = AuthConfig::new("i", "https://idp/certs");
    c.apps_scope = " ".into();
    assert_eq!(
        Authenticator::new(c, reqwest::Client::new()).unwrap_err(),
        ConfigError::EmptyValue("apps_scope")
    );
}

#[test]
fn config_from_toml() {
    let cfg: AuthConfig = toml::from_str(
        r#"
        issuer = "http://keycloak:8080/realms/edcv"
        jwks-url = "https://keycloak/realms/edcv/protocol/openid-connect/certs"
        claim-mode = "subject"
        algorithms = ["ES256"]
        audience = "weft"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.claim_mode, ClaimMode::Subject);
    assert_eq!(cfg.leeway_secs, weft_auth::DEFAULT_LEEWAY_SECS);
    assert_eq!(cfg.admin_scope, "weft:admin");
    assert_eq!(cfg.apps_scope, "weft:apps");
    assert_eq!(
        cfg.extra_admin_scopes,
        vec!["management-api:admin".to_owned()]
    );
    assert_eq!(cfg.audience.as_deref(), Some("weft"));
    assert_eq!(cfg, {
        let mut d = AuthConfig::new(cfg.issuer.clone(), cfg.jwks_url.clone());
        d.claim_mode = ClaimMode::Subject;
        d.algorithms = vec!["ES256".into()];
        d.audience = Some("weft".into());
        d
    });
    let defaults: AuthConfig = toml::from_str("issuer = \"i\"\njwks-url = \"https://x\"").unwrap();
    assert_eq!(defaults.claim_mode, ClaimMode::ParticipantContext);
    assert!(
        toml::from_str::<AuthConfig>("issuer = \"i\"\njwks-url = \"https://x\"\nissuers = 1")
            .is_err()
    );
    assert!(
        toml::from_str::<AuthConfig>(
            "issuer = \"i\"\njwks-url = \"https://x\"\nclaim_mode = \"sub\""
        )
        .is_err()
    );
}

#[test]
fn test_issuer_jwks_lists_both_keys() {
    let idp = TestIssuer::new();
    let jwks = idp.jwks_json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![idp.es256_kid(), idp.rs256_kid()]);
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none()),
        "no private parts"
    );
}

/// A verified token is remembered (no second signature check is observable from outside),
/// but only within its lifetime: once `exp` passes, the same token is refused.
#[tokio::test]
async fn remembered_token_still_expires() {
    let idp = TestIssuer::new();
    let (auth, fetches) = idp.authenticator_with(|c| c.leeway_secs = 0).await;
    let exp = now_secs() + 1;
    let mut c = claims();
    c["exp"] = json!(exp);
    let token = idp.mint(c);
    let first = auth.authenticate(&token).await.unwrap();
    let again = auth.authenticate(&token).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    while now_secs() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    rejects(&auth, &token, AuthError::Expired).await;
}
