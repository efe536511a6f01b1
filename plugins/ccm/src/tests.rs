//! Native end-to-end tests: two tenants (a supplier and an OEM) on a scripted dataspace that
//! plays the control plane (assets, policies, catalog with access checks, negotiation with
//! contract checks, transfers driving the DPS hooks) and the data plane (a consumer's
//! `transfer::send` lands in the provider's data entry). Each tenant has its own state,
//! swapped into the SDK's in-memory host while it runs, so isolation is checked too.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};
use weft_sdk::context::Tenant;
use weft_sdk::flows::{DataFlow, Decision, FlowRole, FlowState, TransferMode};
use weft_sdk::http::{ClientRequest, ClientResponse, IncomingBody, Method, Request};
use weft_sdk::management::{self, ProcessKind};
use weft_sdk::{Error, Result, state, testing};

use crate::edc::Connector;
use crate::pdf::tests::{SAMPLE_PDF, sample_pdf_base64};
use crate::{api, data, flows, policy, vocab};

const SUPPLIER: usize = 0;
const OEM: usize = 1;
const S_BPN: &str = "BPNL00000000SUPP";
const O_BPN: &str = "BPNL000000000OEM";
const SITE: &str = "BPNS000000000001";
const ADDRESS: &str = "BPNA000000000002";
/// A body cap for the fake's copies of request and response bodies.
const BODY_CAP: usize = 32 << 20;

struct Party {
    name: &'static str,
    bpnl: &'static str,
    did: String,
    dsp: String,
    member: bool,
    purpose: &'static str,
    state: BTreeMap<String, Vec<u8>>,
    entities: BTreeMap<(String, String), Value>,
}

struct Negotiation {
    state: &'static str,
    agreement: Option<String>,
    error: Option<String>,
}

struct Transfer {
    provider: usize,
    provider_flow: DataFlow,
    consumer_flow: DataFlow,
    state: &'static str,
    error: Option<String>,
}

/// The scripted dataspace.
struct Space {
    parties: RefCell<Vec<Party>>,
    current: Cell<usize>,
    negotiations: RefCell<BTreeMap<String, Negotiation>>,
    /// agreement id → (provider, consumer, asset)
    agreements: RefCell<BTreeMap<String, (usize, usize, String)>>,
    transfers: RefCell<BTreeMap<String, Transfer>>,
    watches: RefCell<Vec<(String, String)>>,
    counter: Cell<u32>,
}

fn party(name: &'static str, bpnl: &'static str) -> Party {
    Party {
        name,
        bpnl,
        did: format!("did:web:{name}.example"),
        dsp: format!("https://cp.example/api/dsp/{name}/2025-1"),
        member: true,
        purpose: vocab::USAGE_PURPOSE,
        state: BTreeMap::new(),
        entities: BTreeMap::new(),
    }
}

impl Space {
    fn new() -> Rc<Space> {
        testing::reset();
        let space = Rc::new(Space {
            parties: RefCell::new(vec![party("supplier", S_BPN), party("oem", O_BPN)]),
            current: Cell::new(SUPPLIER),
            negotiations: RefCell::new(BTreeMap::new()),
            agreements: RefCell::new(BTreeMap::new()),
            transfers: RefCell::new(BTreeMap::new()),
            watches: RefCell::new(Vec::new()),
            counter: Cell::new(0),
        });
        space.load(SUPPLIER);
        space
    }

    fn next(&self, prefix: &str) -> String {
        self.counter.set(self.counter.get() + 1);
        format!("{prefix}-{}", self.counter.get())
    }

    fn config(&self, idx: usize) -> String {
        let parties = self.parties.borrow();
        let other = &parties[1 - idx];
        json!({
            "dspAddress": parties[idx].dsp,
            "partners": {other.bpnl: {"dspAddress": other.dsp, "did": other.did}},
        })
        .to_string()
    }

    fn load(&self, idx: usize) {
        testing::reset();
        let (tenant, stored) = {
            let parties = self.parties.borrow();
            let p = &parties[idx];
            (
                Tenant {
                    participant_context_id: p.name.to_owned(),
                    did: p.did.clone(),
                    bpn: Some(p.bpnl.to_owned()),
                },
                p.state.clone(),
            )
        };
        testing::set_tenant(tenant);
        testing::set_config(self.config(idx));
        for (k, v) in stored {
            state::set(&k, &v).unwrap();
        }
        self.current.set(idx);
    }

    /// Runs `f` as tenant `idx`, then returns to the tenant that was running.
    fn as_party<T>(&self, idx: usize, f: impl FnOnce() -> T) -> T {
        let previous = self.current.get();
        self.parties.borrow_mut()[previous].state = testing::state();
        self.load(idx);
        let out = f();
        self.parties.borrow_mut()[idx].state = testing::state();
        self.load(previous);
        out
    }

    fn state_of(&self, idx: usize) -> BTreeMap<String, Vec<u8>> {
        if self.current.get() == idx {
            testing::state()
        } else {
            self.parties.borrow()[idx].state.clone()
        }
    }

    fn entities(&self, idx: usize, kind: &str) -> Vec<Value> {
        self.parties.borrow()[idx]
            .entities
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A tenant API call: (status, JSON body or the raw bytes as a string).
    fn api(
        self: &Rc<Self>,
        idx: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let me = self.clone();
        self.as_party(idx, move || {
            let mut req = Request::new(method, path);
            if let Some(b) = body {
                req = req.with_body(IncomingBody::from_bytes(b.to_string().into_bytes()));
            }
            let response = api::router(me).handle(req);
            let status = response.status();
            let bytes = response.into_body_bytes(BODY_CAP).unwrap();
            let value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (status, value)
        })
    }

    fn flow(
        &self,
        id: &str,
        role: FlowRole,
        me: usize,
        other: usize,
        agreement: &str,
        asset: &str,
    ) -> DataFlow {
        let parties = self.parties.borrow();
        let consumer = if role == FlowRole::Provider {
            other
        } else {
            me
        };
        DataFlow {
            id: id.to_owned(),
            message_id: self.next("signal"),
            participant_id: parties[me].did.clone(),
            counter_party_id: parties[other].did.clone(),
            dataspace_context: "catena-x".to_owned(),
            agreement_id: agreement.to_owned(),
            dataset_id: asset.to_owned(),
            profile: vocab::TRANSFER_TYPE_HTTP_PULL.to_owned(),
            role,
            mode: TransferMode::Pull,
            state: FlowState::Initialized,
            claims: json!({"BusinessPartnerNumber": parties[consumer].bpnl}).to_string(),
            labels: Vec::new(),
            metadata: "{}".to_owned(),
            data_address: None,
        }
    }

    fn provider_at(&self, address: &str) -> Option<usize> {
        self.parties.borrow().iter().position(|p| p.dsp == address)
    }

    /// Does `policy` hold for party `idx`? Membership, BPN list, purpose; anything else holds.
    fn holds(&self, policy: &Value, idx: usize) -> bool {
        let parties = self.parties.borrow();
        let p = &parties[idx];
        fn walk(v: &Value, ok: &dyn Fn(&str, &Value) -> bool) -> bool {
            match v {
                Value::Object(o) => match (
                    o.get("leftOperand").and_then(Value::as_str),
                    o.get("rightOperand"),
                ) {
                    (Some(left), Some(right)) => ok(left, right),
                    _ => o.values().all(|x| walk(x, ok)),
                },
                Value::Array(items) => items.iter().all(|x| walk(x, ok)),
                _ => true,
            }
        }
        walk(policy, &|left, right| match left {
            "Membership" => p.member,
            "BusinessPartnerNumber" => policy::values(Some(right)).iter().any(|b| b == p.bpnl),
            "UsagePurpose" => policy::values(Some(right)).iter().any(|u| u == p.purpose),
            _ => true,
        })
    }

    fn policy_of(&self, provider: usize, id: &str) -> Value {
        self.parties.borrow()[provider]
            .entities
            .get(&("policydefinitions".to_owned(), id.to_owned()))
            .map(|p| p["policy"].clone())
            .unwrap_or(Value::Null)
    }

    /// The catalog `provider` shows `consumer`: one dataset per asset a contract definition
    /// offers and whose access policy the consumer satisfies.
    fn catalog(&self, provider: usize, consumer: usize, filter: &[Value]) -> Value {
        let definitions = self.entities(provider, "contractdefinitions");
        let mut datasets = Vec::new();
        for cd in definitions {
            if !self.holds(
                &self.policy_of(provider, cd["accessPolicyId"].as_str().unwrap()),
                consumer,
            ) {
                continue;
            }
            let asset_id = cd["assetsSelector"][0]["operandRight"]
                .as_str()
                .unwrap()
                .to_owned();
            let Some(asset) = self.parties.borrow()[provider]
                .entities
                .get(&("assets".to_owned(), asset_id.clone()))
                .cloned()
            else {
                continue;
            };
            let contract = self.policy_of(provider, cd["contractPolicyId"].as_str().unwrap());
            let mut dataset = asset["properties"].as_object().cloned().unwrap();
            dataset.insert("@id".into(), json!(asset_id));
            dataset.insert(
                "hasPolicy".into(),
                json!([{"@id": format!("offer:{}:{asset_id}", cd["@id"].as_str().unwrap()), "@type": "Offer",
                        "permission": contract["permission"], "prohibition": [], "obligation": []}]),
            );
            let raw = Value::Object(dataset.clone());
            let selected = filter.iter().all(|f| {
                let left = f["operandLeft"].as_str().unwrap();
                let right = f["operandRight"].as_str().unwrap();
                if left == vocab::EDC_ID {
                    asset_id == right
                } else {
                    policy::values(raw.get(left)).iter().any(|v| v == right)
                }
            });
            if selected {
                datasets.push(raw);
            }
        }
        let did = self.parties.borrow()[provider].did.clone();
        json!({"@type": "Catalog", "participantId": did, "dataset": datasets})
    }

    fn reply(status: u16, body: Value) -> Result<management::Response> {
        Ok(management::Response {
            status,
            body: if body.is_null() {
                String::new()
            } else {
                body.to_string()
            },
        })
    }

    fn negotiate(&self, consumer: usize, body: &Value) -> Result<management::Response> {
        let provider = self
            .provider_at(body["counterPartyAddress"].as_str().unwrap())
            .unwrap();
        let offer = &body["policy"];
        let parts: Vec<&str> = offer["@id"].as_str().unwrap().split(':').collect();
        let (cd_id, asset) = (parts[1].to_owned(), parts[2].to_owned());
        let cd = self.parties.borrow()[provider]
            .entities
            .get(&("contractdefinitions".to_owned(), cd_id))
            .cloned()
            .unwrap();
        let contract = self.policy_of(provider, cd["contractPolicyId"].as_str().unwrap());
        let access = self.policy_of(provider, cd["accessPolicyId"].as_str().unwrap());
        let id = self.next("negotiation");
        let error = if offer["permission"] != contract["permission"] {
            Some("the offered policy differs from the contract definition's policy")
        } else if !self.holds(&access, consumer) {
            Some("access policy: Membership eq active is not satisfied")
        } else if !self.holds(&contract, consumer) {
            Some("contract policy: UsagePurpose isAnyOf cx.ccm.base:1 is not satisfied")
        } else {
            None
        };
        let negotiation = match error {
            Some(e) => Negotiation {
                state: "TERMINATED",
                agreement: None,
                error: Some(e.to_owned()),
            },
            None => {
                let agreement = self.next("agreement");
                self.agreements
                    .borrow_mut()
                    .insert(agreement.clone(), (provider, consumer, asset));
                Negotiation {
                    state: "FINALIZED",
                    agreement: Some(agreement),
                    error: None,
                }
            }
        };
        self.negotiations
            .borrow_mut()
            .insert(id.clone(), negotiation);
        Self::reply(200, json!({"@id": id}))
    }

    fn transfer(&self, consumer: usize, body: &Value) -> Result<management::Response> {
        let agreement_id = body["contractId"].as_str().unwrap().to_owned();
        let Some((provider, c, asset)) = self.agreements.borrow().get(&agreement_id).cloned()
        else {
            return Self::reply(400, json!([{"message": "Contract agreement not found"}]));
        };
        assert_eq!(c, consumer);
        assert_eq!(body["transferType"], vocab::TRANSFER_TYPE_HTTP_PULL);
        let tp = self.next("tp");
        let consumer_flow = self.flow(
            &tp,
            FlowRole::Consumer,
            consumer,
            provider,
            &agreement_id,
            &asset,
        );
        let provider_flow = self.flow(
            &format!("p{tp}"),
            FlowRole::Provider,
            provider,
            consumer,
            &agreement_id,
            &asset,
        );
        assert_eq!(
            flows::on_prepare(&consumer_flow).unwrap(),
            Decision::Accept(None)
        );
        let pf = provider_flow.clone();
        let decision = self
            .as_party(provider, move || flows::on_start(&pf))
            .unwrap();
        let (state, error) = match decision {
            Decision::Accept(_) => {
                flows::on_started(&consumer_flow).unwrap();
                ("STARTED", None)
            }
            Decision::Reject(reason) => ("TERMINATED", Some(reason)),
            Decision::Pending => ("REQUESTED", None),
        };
        self.transfers.borrow_mut().insert(
            tp.clone(),
            Transfer {
                provider,
                provider_flow,
                consumer_flow,
                state,
                error,
            },
        );
        Self::reply(200, json!({"@id": tp}))
    }
}

impl Connector for Space {
    fn management(&self, request: &management::Request) -> Result<management::Response> {
        let me = self.current.get();
        let body: Value = request
            .body
            .as_deref()
            .map(|b| serde_json::from_str(b).unwrap())
            .unwrap_or(Value::Null);
        let segments: Vec<&str> = request.path.split('/').collect();
        use management::Method::*;
        match (request.method, segments.as_slice()) {
            (Post, ["catalog", "request"]) => {
                let provider = self.provider_at(body["counterPartyAddress"].as_str().unwrap());
                let Some(provider) = provider else {
                    return Self::reply(
                        502,
                        json!([{"message": "counter-party cannot be reached"}]),
                    );
                };
                let filter = body["querySpec"]["filterExpression"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                Self::reply(200, self.catalog(provider, me, &filter))
            }
            (Post, ["contractnegotiations"]) => self.negotiate(me, &body),
            (Get, ["contractnegotiations", id]) => match self.negotiations.borrow().get(*id) {
                Some(n) => Self::reply(
                    200,
                    json!({"@id": id, "state": n.state,
                    "contractAgreementId": n.agreement, "errorDetail": n.error}),
                ),
                None => Self::reply(404, Value::Null),
            },
            (Post, ["transferprocesses"]) => self.transfer(me, &body),
            (Get, ["transferprocesses", id]) => match self.transfers.borrow().get(*id) {
                Some(t) => Self::reply(
                    200,
                    json!({"@id": id, "state": t.state, "errorDetail": t.error}),
                ),
                None => Self::reply(404, Value::Null),
            },
            (Post, ["transferprocesses", id, "terminate"]) => {
                assert_eq!(body["@type"], "TerminateTransfer");
                let (provider, pf, cf) = {
                    let mut transfers = self.transfers.borrow_mut();
                    let t = transfers.get_mut(*id).unwrap();
                    t.state = "TERMINATED";
                    (t.provider, t.provider_flow.clone(), t.consumer_flow.clone())
                };
                self.as_party(provider, move || flows::on_end(&pf)).unwrap();
                flows::on_end(&cf).unwrap();
                Self::reply(204, Value::Null)
            }
            (Post, [kind]) => {
                let id = body["@id"].as_str().unwrap().to_owned();
                let mut parties = self.parties.borrow_mut();
                let entities = &mut parties[me].entities;
                let key = ((*kind).to_owned(), id.clone());
                if entities.contains_key(&key) {
                    return Self::reply(409, json!([{"message": format!("{id} already exists")}]));
                }
                entities.insert(key, body);
                Self::reply(200, json!({"@type": "IdResponse", "@id": id}))
            }
            (Put, [kind]) | (Put, [kind, _]) => {
                let id = body["@id"].as_str().unwrap().to_owned();
                let mut parties = self.parties.borrow_mut();
                let key = ((*kind).to_owned(), id);
                match parties[me].entities.get_mut(&key) {
                    Some(e) => {
                        *e = body;
                        Self::reply(204, Value::Null)
                    }
                    None => Self::reply(404, Value::Null),
                }
            }
            (Get, [kind, id]) => match self.parties.borrow()[me]
                .entities
                .get(&((*kind).to_owned(), (*id).to_owned()))
            {
                Some(e) => Self::reply(200, e.clone()),
                None => Self::reply(404, Value::Null),
            },
            (Delete, [kind, id]) => {
                if *kind == "assets"
                    && self
                        .agreements
                        .borrow()
                        .values()
                        .any(|(p, _, a)| *p == me && a == id)
                {
                    return Self::reply(
                        409,
                        json!([{"message": "referenced by a contract agreement"}]),
                    );
                }
                let removed = self.parties.borrow_mut()[me]
                    .entities
                    .remove(&((*kind).to_owned(), (*id).to_owned()));
                Self::reply(if removed.is_some() { 204 } else { 404 }, Value::Null)
            }
            other => panic!("unexpected management call {other:?}"),
        }
    }

    fn wait_for_state(
        &self,
        kind: ProcessKind,
        id: &str,
        states: &[&str],
        _timeout: Duration,
    ) -> Result<String> {
        let state = match kind {
            ProcessKind::ContractNegotiation => self.negotiations.borrow().get(id).map(|n| n.state),
            ProcessKind::TransferProcess => self.transfers.borrow().get(id).map(|t| t.state),
        };
        match state {
            Some(s) if states.contains(&s) => Ok(s.to_owned()),
            other => Err(Error::Unavailable(format!("{id} is {other:?}"))),
        }
    }

    fn watch(&self, _kind: ProcessKind, id: &str, correlation: &str) -> Result<()> {
        self.watches
            .borrow_mut()
            .push((id.to_owned(), correlation.to_owned()));
        Ok(())
    }

    fn send(&self, flow_id: &str, request: ClientRequest) -> Result<ClientResponse> {
        let (provider, provider_flow) = {
            let transfers = self.transfers.borrow();
            let t = transfers.get(flow_id).expect("a started transfer");
            assert_eq!(t.state, "STARTED", "send on a flow that is not started");
            (t.provider, t.provider_flow.id.clone())
        };
        let body = request.body.into_bytes(BODY_CAP)?;
        let req = Request::new(request.method, &request.path_and_query)
            .with_body(IncomingBody::from_bytes(body));
        let response = self.as_party(provider, || data::handle(self, &provider_flow, req));
        let (status, headers, body) = response.into_parts();
        Ok(ClientResponse {
            status,
            headers,
            body: IncomingBody::from_bytes(body.into_bytes(BODY_CAP)?),
        })
    }
}

fn certificate(type_code: &str, sites: &[&str]) -> Value {
    json!({
        "businessPartnerNumber": S_BPN,
        "type": {"certificateType": type_code, "certificateVersion": "2015"},
        "registrationNumber": "12 198 54182 TMS",
        "enclosedSites": sites.iter().map(|s| json!({"enclosedSiteBpn": s})).collect::<Vec<_>>(),
        "validFrom": "2023-01-25",
        "validUntil": "9999-12-31",
        "trustLevel": "none",
        "issuer": {"issuerName": "TÜV"},
        "document": {
            "documentID": format!("doc-{type_code}"),
            "creationDate": "2024-08-23T13:19:00.280+02:00",
            "contentType": "application/pdf",
            "contentBase64": sample_pdf_base64()
        }
    })
}

fn bootstrapped() -> Rc<Space> {
    let space = Space::new();
    for idx in [SUPPLIER, OEM] {
        let (status, report) = space.api(idx, Method::Post, "/bootstrap", None);
        assert_eq!(status, 200, "{report}");
    }
    space
}

fn upload_and_publish(space: &Rc<Space>, type_code: &str, sites: &[&str]) -> (String, String) {
    let (status, cert) = space.api(
        SUPPLIER,
        Method::Post,
        "/certificates",
        Some(certificate(type_code, sites)),
    );
    assert_eq!(status, 201, "{cert}");
    let id = cert["id"].as_str().unwrap().to_owned();
    let (status, published) = space.api(
        SUPPLIER,
        Method::Post,
        &format!("/certificates/{id}/publish"),
        None,
    );
    assert_eq!(status, 201, "{published}");
    (id, published["assetId"].as_str().unwrap().to_owned())
}

fn share_state(space: &Rc<Space>, cert: &str) -> Value {
    let (status, shares) = space.api(
        SUPPLIER,
        Method::Get,
        &format!("/shares?certificateId={cert}"),
        None,
    );
    assert_eq!(status, 200);
    shares[0].clone()
}

fn feedback(space: &Rc<Space>, document: &str, status: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"providerBpn": S_BPN, "documentId": document, "status": status});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    space.api(OEM, Method::Post, "/feedback", Some(body))
}

#[test]
fn bootstrap_is_idempotent_and_creates_the_ccm_resources() {
    let space = bootstrapped();
    for idx in [SUPPLIER, OEM] {
        assert_eq!(space.entities(idx, "policydefinitions").len(), 2);
        assert_eq!(space.entities(idx, "assets").len(), 1);
        assert_eq!(space.entities(idx, "contractdefinitions").len(), 1);
    }
    let before = space.parties.borrow()[SUPPLIER].entities.clone();
    let (status, again) = space.api(SUPPLIER, Method::Post, "/bootstrap", None);
    assert_eq!(status, 200);
    let outcomes: Vec<&str> = again["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["exists"; 4]);
    assert_eq!(
        space.parties.borrow()[SUPPLIER].entities,
        before,
        "a re-run changes nothing"
    );
    let asset = &space.entities(SUPPLIER, "assets")[0];
    assert_eq!(asset["properties"], policy::ccmapi_properties());
}

#[test]
fn publish_pull_and_feedback_move_the_share_to_active() {
    let space = bootstrapped();
    let (cert, asset) = upload_and_publish(&space, "ISO9001", &[SITE, ADDRESS]);
    // Publishing again changes nothing.
    let (status, again) = space.api(
        SUPPLIER,
        Method::Post,
        &format!("/certificates/{cert}/publish"),
        None,
    );
    assert_eq!(
        (status, again["assetId"].as_str()),
        (200, Some(asset.as_str()))
    );
    let stored = space
        .entities(SUPPLIER, "assets")
        .into_iter()
        .find(|a| a["@id"] == asset.as_str())
        .unwrap();
    assert_eq!(
        stored["properties"],
        policy::certificate_properties("iso9001", &[SITE.into(), ADDRESS.into()])
    );

    // The OEM finds it by subject + type (+ sites) and pulls it.
    let (status, pulled) = space.api(
        OEM,
        Method::Post,
        "/pull",
        Some(
            json!({"providerBpn": S_BPN, "certificateType": "iso9001", "enclosedSites": [ADDRESS]}),
        ),
    );
    assert_eq!(status, 200, "{pulled}");
    let received = &pulled["received"][0];
    assert_eq!(received["assetId"], asset.as_str());
    assert_eq!(received["source"], "pull");
    assert_eq!(
        received["pdf"]["sha256"],
        crate::pdf::sha256_hex(SAMPLE_PDF)
    );
    assert_eq!(
        received["certificate"]["type"]["certificateType"],
        "iso9001"
    );
    let (_, upload) = space.api(
        SUPPLIER,
        Method::Get,
        &format!("/certificates/{cert}"),
        None,
    );
    assert_eq!(received["pdf"]["sha256"], upload["pdf"]["sha256"]);
    let (status, pdf) = space.api(
        OEM,
        Method::Get,
        &format!("/received/{S_BPN}/{asset}/document"),
        None,
    );
    assert_eq!(
        (status, pdf.as_str().map(str::as_bytes)),
        (200, Some(SAMPLE_PDF))
    );
    assert_eq!(share_state(&space, &cert)["state"], "Offered");

    // RECEIVED then ACCEPTED: Pending → Active; ACCEPTED again is a 200 no-op.
    assert_eq!(feedback(&space, &asset, "RECEIVED", json!({})).0, 200);
    assert_eq!(share_state(&space, &cert)["state"], "Pending");
    let (status, accepted) = feedback(&space, &asset, "ACCEPTED", json!({}));
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["partner"]["body"]["changed"], true);
    assert_eq!(share_state(&space, &cert)["state"], "Active");
    let (status, repeat) = feedback(&space, &asset, "ACCEPTED", json!({}));
    assert_eq!(
        (status, &repeat["partner"]["body"]["changed"]),
        (200, &json!(false))
    );
    // Moving back is refused by the provider (409), surfaced as 502 with its answer.
    let (status, back) = feedback(&space, &asset, "RECEIVED", json!({}));
    assert_eq!(
        (status, &back["partnerStatus"]),
        (502, &json!(409)),
        "{back}"
    );
    assert!(
        back["partnerAnswer"]["message"]
            .as_str()
            .unwrap()
            .contains("Active")
    );
    assert_eq!(share_state(&space, &cert)["state"], "Active");

    // A second pull reuses the cached agreement and stores no copy.
    let (status, _) = space.api(
        OEM,
        Method::Post,
        "/pull",
        Some(json!({"providerBpn": S_BPN, "documentId": asset})),
    );
    assert_eq!(status, 200);
    let (_, all) = space.api(OEM, Method::Get, "/received", None);
    assert_eq!(all.as_array().unwrap().len(), 1);

    // Unpublish stops the offer; the asset stays while an agreement references it.
    let (status, gone) = space.api(
        SUPPLIER,
        Method::Post,
        &format!("/certificates/{cert}/unpublish"),
        None,
    );
    assert_eq!(
        (
            status,
            &gone["contractDefinitionDeleted"],
            &gone["assetDeleted"]
        ),
        (200, &json!(true), &json!(false))
    );
    let (status, _) = space.api(
        OEM,
        Method::Post,
        "/pull",
        Some(json!({"providerBpn": S_BPN, "certificateType": "iso9001"})),
    );
    assert_eq!(status, 404);
}

#[test]
fn the_request_flow_goes_rejected_then_202_then_completed() {
    let space = bootstrapped();
    let request = json!({"providerBpn": S_BPN, "certificateType": "IATF16949", "locationBpns": [SITE], "pull": true});
    let (status, first) = space.api(OEM, Method::Post, "/requests", Some(request.clone()));
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["request"]["status"], "REJECTED");
    assert!(
        first["request"]["answer"]["requestErrors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("iatf16949")
    );

    let (status, cert) = space.api(
        SUPPLIER,
        Method::Post,
        "/certificates",
        Some(certificate("iatf16949", &[SITE])),
    );
    assert_eq!(status, 201);
    let (_, second) = space.api(OEM, Method::Post, "/requests", Some(request.clone()));
    assert_eq!(
        (
            second["request"]["status"].as_str(),
            second["request"]["providerStatus"].as_u64()
        ),
        (Some("IN_PROGRESS"), Some(202))
    );

    let id = cert["id"].as_str().unwrap();
    let (_, published) = space.api(
        SUPPLIER,
        Method::Post,
        &format!("/certificates/{id}/publish"),
        None,
    );
    let (_, third) = space.api(OEM, Method::Post, "/requests", Some(request));
    assert_eq!(third["request"]["status"], "COMPLETED");
    assert_eq!(third["request"]["documentId"], published["assetId"]);
    assert_eq!(third["pulled"]["assetId"], published["assetId"]);

    let (_, inbound) = space.api(SUPPLIER, Method::Get, "/inbound-requests", None);
    let statuses: Vec<&str> = inbound
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 3);
    for s in ["REJECTED", "IN_PROGRESS", "COMPLETED"] {
        assert!(statuses.contains(&s), "{statuses:?}");
    }
    let (_, outbound) = space.api(OEM, Method::Get, "/requests", None);
    assert_eq!(outbound.as_array().unwrap().len(), 3);
}

#[test]
fn a_push_is_stored_once_and_rejected_with_reasons_kept() {
    let space = bootstrapped();
    let (status, cert) = space.api(
        SUPPLIER,
        Method::Post,
        "/certificates",
        Some(certificate("iso14001", &[SITE])),
    );
    assert_eq!(status, 201);
    let id = cert["id"].as_str().unwrap();
    let push = |space: &Rc<Space>| {
        space.api(
            SUPPLIER,
            Method::Post,
            &format!("/certificates/{id}/push"),
            Some(json!({"receiverBpn": O_BPN})),
        )
    };
    let (status, pushed) = push(&space);
    assert_eq!(status, 200, "{pushed}");
    assert_eq!(pushed["partner"]["body"]["stored"], "created");
    let (status, again) = push(&space);
    assert_eq!(
        (status, &again["partner"]["body"]["stored"]),
        (200, &json!("unchanged"))
    );
    let (_, received) = space.api(OEM, Method::Get, "/received", None);
    assert_eq!(
        received.as_array().unwrap().len(),
        1,
        "a duplicate push creates no copy"
    );
    assert_eq!(received[0]["source"], "push");
    let document = received[0]["documentId"].as_str().unwrap();

    let reasons = json!({"certificateErrors": [{"message": "Certificate was revoked"}],
        "locationErrors": [{"bpn": SITE, "locationErrors": [{"message": "Site BPNS000000000001 is missing"}]}]});
    let (status, rejected) = feedback(&space, document, "REJECTED", reasons);
    assert_eq!(status, 200, "{rejected}");
    let share = share_state(&space, id);
    assert_eq!(share["state"], "Revoked");
    assert_eq!(
        share["certificateErrors"][0]["message"],
        "Certificate was revoked"
    );
    assert_eq!(
        share["locationErrors"][0]["locationErrors"][0]["message"],
        "Site BPNS000000000001 is missing"
    );
    // Feedback on a push relates to the push.
    assert_eq!(
        share["history"].as_array().unwrap().last().unwrap()["cause"],
        "REJECTED"
    );
    let (_, oem_view) = space.api(
        OEM,
        Method::Get,
        &format!("/received/{S_BPN}/{document}"),
        None,
    );
    assert_eq!(oem_view["feedback"]["status"], "REJECTED");
}

#[test]
fn an_available_notice_triggers_a_pull_when_the_negotiation_ends() {
    let space = bootstrapped();
    let (cert, asset) = upload_and_publish(&space, "iso45001", &[SITE]);
    let (status, sent) = space.api(
        SUPPLIER,
        Method::Post,
        &format!("/certificates/{cert}/available"),
        Some(json!({"receiverBpn": O_BPN})),
    );
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["partner"]["body"]["pull"], "negotiating");
    let (negotiation, correlation) = space.watches.borrow()[0].clone();
    let event = weft_sdk::events::Event {
        id: "ev-1".into(),
        kind: weft_sdk::events::EventKind::ProcessStateChanged("FINALIZED".into()),
        subject: negotiation,
        correlation: Some(correlation),
        payload: "{}".into(),
        attempt: 1,
    };
    let me = space.clone();
    space
        .as_party(OEM, || crate::consumer::on_event(&*me, &event))
        .unwrap();
    // Redelivery changes nothing.
    space
        .as_party(OEM, || crate::consumer::on_event(&*me, &event))
        .unwrap();
    let (_, notices) = space.api(OEM, Method::Get, "/notices", None);
    assert_eq!(notices[0]["status"], "pulled", "{notices}");
    let (status, received) = space.api(
        OEM,
        Method::Get,
        &format!("/received/{S_BPN}/{asset}"),
        None,
    );
    assert_eq!((status, &received["assetId"]), (200, &json!(asset)));
}

/// Opens a notification flow on the OEM's CCMAPI as if the supplier had negotiated it.
fn oem_notification_flow(space: &Rc<Space>) -> String {
    let flow = space.flow(
        "inbound-1",
        FlowRole::Provider,
        OEM,
        SUPPLIER,
        "agreement-x",
        vocab::CCMAPI_ASSET_ID,
    );
    let decision = space.as_party(OEM, || flows::on_start(&flow)).unwrap();
    assert_eq!(decision, Decision::Accept(None));
    flow.id
}

fn deliver(space: &Rc<Space>, flow: &str, kind: &str, body: Value) -> (u16, Value) {
    let me = space.clone();
    space.as_party(OEM, || {
        let req = Request::new(Method::Post, &format!("/companycertificate/{kind}"))
            .with_body(IncomingBody::from_bytes(body.to_string().into_bytes()));
        let r = data::handle(&*me, flow, req);
        let status = r.status();
        let bytes = r.into_body_bytes(BODY_CAP).unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

fn push_message(receiver: &str, content: Value) -> Value {
    let header = crate::message::Header::new(
        crate::message::Kind::Push,
        S_BPN,
        receiver,
        None,
        Some("https://cp.example/api/dsp/supplier/2025-1"),
    );
    json!({"header": header, "content": content})
}

#[test]
fn bad_pushes_wrong_receivers_and_reused_ids_are_refused() {
    let space = bootstrapped();
    let flow = oem_notification_flow(&space);

    let mut not_pdf = certificate("iso9001", &[SITE]);
    not_pdf["document"]["contentBase64"] = json!(crate::pdf::encode(b"\x89PNG\r\n\x1a\nnot a pdf"));
    let (status, body) = deliver(&space, &flow, "push", push_message(O_BPN, not_pdf));
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not a PDF"));

    let (status, body) = deliver(
        &space,
        &flow,
        "push",
        push_message("BPNL0000000OTHER", certificate("iso9001", &[SITE])),
    );
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is not this participant"),
        "{body}"
    );

    // The context must match the route.
    let (status, _) = deliver(
        &space,
        &flow,
        "status",
        push_message(O_BPN, certificate("iso9001", &[SITE])),
    );
    assert_eq!(status, 400);

    // The same messageId for a different message is refused; the same message is a no-op.
    let good = push_message(O_BPN, certificate("iso9001", &[SITE]));
    assert_eq!(deliver(&space, &flow, "push", good.clone()).0, 200);
    let (status, dup) = deliver(&space, &flow, "push", good.clone());
    assert_eq!((status, &dup["duplicate"]), (200, &json!(true)));
    let mut reused = json!({"header": good["header"].clone(), "content": {"documentId": "x", "certificateType": "iso9001"}});
    reused["header"]["context"] = json!(crate::message::Kind::Available.context());
    assert_eq!(deliver(&space, &flow, "available", reused).0, 409);

    // A sender that is not the authenticated counterparty is refused.
    let mut forged = push_message(O_BPN, certificate("iso9001", &[SITE]));
    forged["header"]["senderBpn"] = json!("BPNL0000000FORGE");
    assert_eq!(deliver(&space, &flow, "push", forged).0, 403);

    // Nothing leaks: the OEM holds no provider records, the supplier none of the OEM's.
    let oem = space.state_of(OEM);
    let supplier = space.state_of(SUPPLIER);
    assert!(oem.keys().any(|k| k.starts_with("recv/")));
    assert!(!oem.keys().any(|k| k.starts_with("cert/")));
    assert!(
        !supplier
            .keys()
            .any(|k| k.starts_with("recv/") || k.starts_with("seen/"))
    );
}

#[test]
fn without_membership_or_with_the_wrong_purpose_nothing_can_be_negotiated() {
    let space = bootstrapped();
    let (_, asset) = upload_and_publish(&space, "iso9001", &[SITE]);
    space.parties.borrow_mut()[OEM].member = false;
    let (status, body) = space.api(
        OEM,
        Method::Post,
        "/pull",
        Some(json!({"providerBpn": S_BPN, "documentId": asset})),
    );
    assert_eq!(
        status, 404,
        "the offer is invisible without membership: {body}"
    );

    space.parties.borrow_mut()[OEM].member = true;
    space.parties.borrow_mut()[OEM].purpose = "cx.core.industrycore:1";
    let (status, body) = space.api(
        OEM,
        Method::Post,
        "/pull",
        Some(json!({"providerBpn": S_BPN, "documentId": asset})),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("TERMINATED"));
    let (_, received) = space.api(OEM, Method::Get, "/received", None);
    assert_eq!(received, json!([]));
}

#[test]
fn an_offer_under_another_policy_is_not_negotiated() {
    let space = bootstrapped();
    let (_, asset) = upload_and_publish(&space, "iso9001", &[SITE]);
    // The supplier's usage policy drifts to another purpose.
    {
        let mut parties = space.parties.borrow_mut();
        let usage = parties[SUPPLIER]
            .entities
            .get_mut(&(
                "policydefinitions".to_owned(),
                vocab::USAGE_POLICY_ID.to_owned(),
            ))
            .unwrap();
        usage["policy"]["permission"][0]["constraint"]["and"][1]["rightOperand"] =
            json!("cx.other:1");
    }
    space.parties.borrow_mut()[OEM].purpose = "cx.other:1";
    let (status, body) = space.api(
        OEM,
        Method::Post,
        "/pull",
        Some(json!({"providerBpn": S_BPN, "documentId": asset})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not the CCM policy")
    );
    assert!(
        space.negotiations.borrow().is_empty(),
        "no negotiation was started"
    );
}

#[test]
fn uploads_are_validated() {
    let space = bootstrapped();
    let mut bad = certificate("iso9001", &["BPNL000000000001"]);
    bad["validFrom"] = json!("2030-01-01");
    bad["validUntil"] = json!("2029-01-01");
    let (status, body) = space.api(SUPPLIER, Method::Post, "/certificates", Some(bad));
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("enclosedSites[0]") && message.contains("after validUntil"),
        "{message}"
    );

    let mut big = certificate("iso9001", &[SITE]);
    big["document"]["contentBase64"] = json!(crate::pdf::encode(
        &[
            b"%PDF-".as_slice(),
            &vec![b'x'; crate::pdf::DEFAULT_MAX_PDF_BYTES]
        ]
        .concat()
    ));
    assert_eq!(
        space
            .api(SUPPLIER, Method::Post, "/certificates", Some(big))
            .0,
        413
    );

    let (status, cert) = space.api(
        SUPPLIER,
        Method::Post,
        "/certificates",
        Some(certificate("ISO 9001", &[SITE])),
    );
    assert_eq!(status, 201);
    assert_eq!(cert["certificate"]["type"]["certificateType"], "iso9001");
    assert!(
        cert["certificate"]["document"]
            .get("contentBase64")
            .is_none()
    );
    let id = cert["id"].as_str().unwrap();
    let (status, pdf) = space.api(
        SUPPLIER,
        Method::Get,
        &format!("/certificates/{id}/document"),
        None,
    );
    assert_eq!(
        (status, pdf.as_str().map(str::as_bytes)),
        (200, Some(SAMPLE_PDF))
    );
    assert_eq!(
        space
            .api(
                SUPPLIER,
                Method::Delete,
                &format!("/certificates/{id}"),
                None
            )
            .0,
        204
    );
    assert_eq!(
        space
            .api(SUPPLIER, Method::Get, &format!("/certificates/{id}"), None)
            .0,
        404
    );
    assert!(
        !space
            .state_of(SUPPLIER)
            .keys()
            .any(|k| k.starts_with("pdf/"))
    );
}
