//! `transfer`: reach a flow's counterparty, and report asynchronous flow outcomes.

use super::http::TransferTarget;
use crate::bindings::weft::plugin::transfer::Host;
use crate::bindings::weft::plugin::types::{DataAddress, Error};
use crate::call::HostState;
use crate::services::FlowReport;
use wasmtime::component::Resource;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler::Host as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};

impl HostState {
    fn check_flow_entry(&self, flow_id: &str) -> Result<(), Error> {
        if flow_id.is_empty() {
            return Err(Error::Invalid("flow id must not be empty".into()));
        }
        Ok(())
    }

    async fn report(
        &mut self,
        flow_id: String,
        report: FlowReport,
    ) -> wasmtime::Result<Result<(), Error>> {
        if let Err(e) = self.check_flow_entry(&flow_id) {
            return Ok(Err(e));
        }
        Ok(self
            .services
            .transfer
            .report(&self.call, &flow_id, report)
            .await)
    }
}

/// Splits an endpoint URL into scheme, authority and path prefix.
fn split_endpoint(endpoint: &str) -> Result<(Scheme, String, String), Error> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| Error::Invalid(format!("counterparty endpoint {endpoint:?} is not a URL")))?;
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ => {
            return Err(Error::Invalid(format!(
                "counterparty endpoint {endpoint:?} is not http(s)"
            )));
        }
    };
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| Error::Invalid(format!("counterparty endpoint {endpoint:?} has no host")))?;
    let path = uri.path().trim_end_matches('/').to_string();
    Ok((scheme, authority, path))
}

impl Host for HostState {
    async fn send(
        &mut self,
        flow_id: String,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<wasmtime_wasi_http::RequestOptions>>,
    ) -> wasmtime::Result<Result<Resource<HostFutureIncomingResponse>, Error>> {
        if let Err(e) = self.check_flow_entry(&flow_id) {
            return Ok(Err(e));
        }
        let counterparty = match self
            .services
            .transfer
            .counterparty(&self.call, &flow_id)
            .await
        {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Ok(Err(Error::NotFound(format!(
                    "flow {flow_id} has no counterparty address"
                ))));
            }
            Err(e) => return Ok(Err(e)),
        };
        let (scheme, authority, prefix) = match split_endpoint(&counterparty.endpoint) {
            Ok(parts) => parts,
            Err(e) => return Ok(Err(e)),
        };
        {
            let req = self.table.get_mut(&request)?;
            let suffix = req.path_with_query.take().unwrap_or_default();
            let suffix = if suffix.is_empty() || suffix.starts_with('?') || suffix.starts_with('/')
            {
                suffix
            } else {
                format!("/{suffix}")
            };
            req.scheme = Some(scheme);
            req.authority = Some(authority.clone());
            req.path_with_query = Some(format!("{prefix}{suffix}"));
        }
        self.outbound.transfer_target = Some(TransferTarget {
            authority,
            authorization: counterparty.authorization,
        });
        let result = self.http().handle(request, options);
        self.outbound.transfer_target = None;
        match result {
            Ok(response) => Ok(Ok(response)),
            Err(e) => match e.downcast() {
                Ok(code) => Ok(Err(Error::Unavailable(format!(
                    "counterparty request failed: {code:?}"
                )))),
                Err(trap) => Err(trap),
            },
        }
    }

    async fn counterparty_address(
        &mut self,
        flow_id: String,
    ) -> wasmtime::Result<Result<Option<DataAddress>, Error>> {
        if let Err(e) = self.check_flow_entry(&flow_id) {
            return Ok(Err(e));
        }
        Ok(self
            .services
            .transfer
            .counterparty(&self.call, &flow_id)
            .await
            .map(|c| c.map(|c| c.public)))
    }

    async fn prepared(
        &mut self,
        flow_id: String,
        address: Option<DataAddress>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.report(flow_id, FlowReport::Prepared(address)).await
    }

    async fn started(
        &mut self,
        flow_id: String,
        address: Option<DataAddress>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.report(flow_id, FlowReport::Started(address)).await
    }

    async fn completed(&mut self, flow_id: String) -> wasmtime::Result<Result<(), Error>> {
        self.report(flow_id, FlowReport::Completed).await
    }

    async fn errored(
        &mut self,
        flow_id: String,
        reason: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.report(flow_id, FlowReport::Errored(reason)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split() {
        let (s, a, p) = split_endpoint("https://provider.example:8443/public/").unwrap();
        assert!(matches!(s, Scheme::Https));
        assert_eq!(a, "provider.example:8443");
        assert_eq!(p, "/public");
        assert!(split_endpoint("ftp://x").is_err());
        assert!(split_endpoint("not a url").is_err());
    }
}
