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
