//! Helpers for Weft's end-to-end tests: a running sandbox stack and an HTTP client that
//! speaks to it the way a tenant, the operator or a control plane would.

use serde_json::Value;

/// A started stack in a temporary data directory.
pub struct TestStack {
    pub stack: weft::sandbox::Stack,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestStack {
    /// Starts the sandbox stack on free ports in a fresh directory.
    pub async fn start() -> anyhow::Result<TestStack> {
        let dir = tempfile::tempdir()?;
        let stack =
            weft::sandbox::Stack::start(weft::sandbox::StackOptions::new(dir.path())).await?;
        Ok(TestStack {
            stack,
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    /// `sandbox.json` as written to disk.
    pub fn description(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            &self.stack.description_file,
        )?)?)
    }

    /// The ready token of a demo tenant.
    pub fn token(&self, tenant: &str) -> String {
        self.stack.description["tenants"][tenant]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Sends a request with a bearer token and returns status and JSON (or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.stack.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    pub async fn shutdown(self) {
        self.stack.shutdown().await;
    }
}

impl TestStack {
    /// Calls a tenant's app with the tenant's own token:
    /// `{method} /tenants/{tenant}/apps/{app}{path}`.
    pub async fn app(
        &self,
        tenant: &str,
        app: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let token = self.token(tenant);
        self.call(
            method,
            &format!("/tenants/{tenant}/apps/{app}{path}"),
            &token,
            body,
        )
        .await
    }

    /// Calls the stand-in's Management API of a tenant directly (not through Weft), with
    /// the tenant's token: `{method} {managementApi}/{path}`.
    pub async fn management(
        &self,
        tenant: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let base = self.stack.description["tenants"][tenant]["managementApi"]
            .as_str()
            .unwrap_or_default();
        let mut req = self
            .http
            .request(method, format!("{base}/{path}"))
            .bearer_auth(self.token(tenant));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// The ids of a tenant's resources of one kind (`assets`, `policydefinitions`,
    /// `contractdefinitions`) as its Management API lists them.
    pub async fn resource_ids(&self, tenant: &str, kind: &str) -> anyhow::Result<Vec<String>> {
        let (status, body) = self
            .management(
                tenant,
                reqwest::Method::POST,
                &format!("{kind}/request"),
                Some(&serde_json::json!({
                    "@context": ["https://w3id.org/edc/connector/management/v2"],
                    "@type": "QuerySpec",
                    "limit": 1000
                })),
            )
            .await?;
        anyhow::ensure!(status == 200, "listing {kind} of {tenant}: {status} {body}");
        let mut ids: Vec<String> = body
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["@id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        Ok(ids)
    }
}

/// A small but well-formed one-page PDF (header, objects, cross-reference table with the
/// right offsets, trailer) showing `text`, so tests exchange a real document.
pub fn pdf(text: &str) -> Vec<u8> {
    let text: String = text
        .chars()
        .filter(|c| c.is_ascii() && !matches!(c, '(' | ')' | '\\'))
        .collect();
    let stream = format!("BT /F1 18 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Standard base64 of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64.
pub fn unbase64(text: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
}

/// Longest wait for a negotiation or transfer of the stand-in to settle: generous, since
/// tests must not depend on timing; a healthy stack settles in well under a second.
pub const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Pause between two polls of a process state.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

/// The DSP protocol the stand-in speaks.
pub const DSP_PROTOCOL: &str = "dataspace-protocol-http:2025-1";

/// A started HTTP-pull transfer as its consumer sees it: the provider's data endpoint and
/// the bearer token the provider's data plane minted.
#[derive(Debug, Clone)]
pub struct PullAccess {
    pub transfer_id: String,
    pub endpoint: String,
    pub authorization: String,
}

impl TestStack {
    /// `consumer` reads `provider`'s catalog through its own Management API (DSP against the
    /// stand-in), filtered by `filter` (EDC criteria on expanded IRIs).
    pub async fn catalog(
        &self,
        consumer: &str,
        provider: &str,
        filter: Value,
    ) -> anyhow::Result<Value> {
        let tenants = &self.stack.description["tenants"];
        let (status, body) = self
            .management(
                consumer,
                reqwest::Method::POST,
                "catalog/request",
                Some(&serde_json::json!({
                    "@context": ["https://w3id.org/edc/connector/management/v2"],
                    "@type": "CatalogRequest",
                    "counterPartyAddress": tenants[provider]["dsp"],
                    "counterPartyId": tenants[provider]["did"],
                    "protocol": DSP_PROTOCOL,
                    "querySpec": {"filterExpression": filter},
                })),
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "catalog of {provider} for {consumer}: {status} {body}"
        );
        Ok(body)
    }

    /// Polls `{kind}/{id}/state` of `tenant` until it is one of `states`; returns it.
    pub async fn wait_for_state(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        states: &[&str],
    ) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let (status, body) = self
                .management(
                    tenant,
                    reqwest::Method::GET,
                    &format!("{kind}/{id}/state"),
                    None,
                )
                .await?;
            anyhow::ensure!(status == 200, "{kind}/{id}/state: {status} {body}");
            let state = body["state"].as_str().unwrap_or_default().to_string();
            if states.contains(&state.as_str()) {
                return Ok(state);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{kind} {id} of {tenant} still {state} after {SETTLE_TIMEOUT:?}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `consumer` negotiates `offer` (a catalog offer) of `provider`'s dataset `dataset_id`;
    /// returns the final state and the negotiation as the consumer's control plane shows it.
    pub async fn negotiate(
        &self,
        consumer: &str,
        provider: &str,
        dataset_id: &str,
        offer: &Value,
    ) -> anyhow::Result<(String, Value)> {
        let tenants = &self.stack.description["tenants"];
        let mut policy = offer.clone();
        policy["assigner"] = tenants[provider]["did"].clone();
        policy["target"] = Value::String(dataset_id.to_string());
        let (status, body) = self
            .management(
                consumer,
                reqwest::Method::POST,
                "contractnegotiations",
                Some(&serde_json::json!({
                    "@context": ["https://w3id.org/edc/connector/management/v2"],
                    "@type": "ContractRequest",
                    "counterPartyAddress": tenants[provider]["dsp"],
                    "counterPartyId": tenants[provider]["did"],
                    "protocol": DSP_PROTOCOL,
                    "policy": policy,
                })),
            )
            .await?;
        anyhow::ensure!(status == 200, "negotiation request: {status} {body}");
        let id = body["@id"].as_str().unwrap_or_default().to_string();
        let state = self
            .wait_for_state(
                consumer,
                "contractnegotiations",
                &id,
                &["FINALIZED", "TERMINATED"],
            )
            .await?;
        let (_, negotiation) = self
            .management(
                consumer,
                reqwest::Method::GET,
                &format!("contractnegotiations/{id}"),
                None,
            )
            .await?;
        Ok((state, negotiation))
    }

    /// `consumer` starts an HTTP pull under `agreement_id` with `provider` and waits until it
    /// is STARTED; returns the endpoint and token the provider's data plane handed out.
    pub async fn start_pull(
        &self,
        consumer: &str,
        provider: &str,
        agreement_id: &str,
    ) -> anyhow::Result<PullAccess> {
        let tenants = &self.stack.description["tenants"];
        let (status, body) = self
            .management(
                consumer,
                reqwest::Method::POST,
                "transferprocesses",
                Some(&serde_json::json!({
                    "@context": ["https://w3id.org/edc/connector/management/v2"],
                    "@type": "TransferRequest",
                    "counterPartyAddress": tenants[provider]["dsp"],
                    "counterPartyId": tenants[provider]["did"],
                    "protocol": DSP_PROTOCOL,
                    "contractId": agreement_id,
                    "transferType": "HttpData-PULL",
                })),
            )
            .await?;
        anyhow::ensure!(status == 200, "transfer request: {status} {body}");
        let id = body["@id"].as_str().unwrap_or_default().to_string();
        let state = self
            .wait_for_state(
                consumer,
                "transferprocesses",
                &id,
                &["STARTED", "TERMINATED", "COMPLETED"],
            )
            .await?;
        anyhow::ensure!(state == "STARTED", "transfer {id} ended {state}");
        let address = self
            .stack
            .dataspace
            .control_plane()
            .transfer(&id)
            .and_then(|t| t.data_address)
            .ok_or_else(|| anyhow::anyhow!("transfer {id} has no data address"))?;
        let property = |name: &str| -> Option<String> {
            address["endpointProperties"]
                .as_array()?
                .iter()
                .find(|p| p["name"].as_str().is_some_and(|n| n.ends_with(name)))
                .and_then(|p| p["value"].as_str().map(String::from))
        };
        let endpoint = address["endpoint"]
            .as_str()
            .map(String::from)
            .or_else(|| property("endpoint"))
            .ok_or_else(|| anyhow::anyhow!("no endpoint in {address}"))?;
        let authorization = property("authorization")
            .ok_or_else(|| anyhow::anyhow!("no authorization in {address}"))?;
        Ok(PullAccess {
            transfer_id: id,
            endpoint,
            authorization,
        })
    }
}
