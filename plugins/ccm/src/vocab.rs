//! The fixed vocabulary of CX-0135 v2.4.0: IRIs, message contexts, policy terms and the ids
//! this plugin gives its bootstrap resources (ccm.md §3–§5).

/// The EDC Management API JSON-LD context (edcv.md §1.1).
pub const MANAGEMENT_CONTEXT: &str = "https://w3id.org/edc/connector/management/v2";
/// The Catena-X ODRL profile (CX-0152) that defines the policy left operands.
pub const CX_POLICY_ODRL_CONTEXT: &str = "https://w3id.org/catenax/2025/9/policy/odrl.jsonld";
/// The Catena-X policy context (CX-0152).
pub const CX_POLICY_CONTEXT: &str = "https://w3id.org/catenax/2025/9/policy/context.jsonld";

/// EDC's vocabulary.
pub const EDC_NS: &str = "https://w3id.org/edc/v0.0.1/ns/";
/// The asset id as a filter operand.
pub const EDC_ID: &str = "https://w3id.org/edc/v0.0.1/ns/id";
/// Dublin Core terms.
pub const DCT_NS: &str = "http://purl.org/dc/terms/";
/// The Catena-X taxonomy.
pub const CX_TAXO_NS: &str = "https://w3id.org/catenax/taxonomy#";
/// The Catena-X common ontology.
pub const CX_COMMON_NS: &str = "https://w3id.org/catenax/ontology/common#";
/// The AAS semantics namespace PURIS and the Tractus-X SDK use for `aas:semanticId`.
pub const AAS_SEMANTICS_NS: &str = "https://admin-shell.io/aas/3/0/HasSemantics/";
/// ODRL.
pub const ODRL_NS: &str = "http://www.w3.org/ns/odrl/2/";

/// `dct:type`.
pub const DCT_TYPE: &str = "http://purl.org/dc/terms/type";
/// `dct:subject`.
pub const DCT_SUBJECT: &str = "http://purl.org/dc/terms/subject";
/// `dct:certificateType` (a CX-0135 extension of the `dct` namespace).
pub const DCT_CERTIFICATE_TYPE: &str = "http://purl.org/dc/terms/certificateType";
/// `dct:enclosedSites` (a CX-0135 extension of the `dct` namespace).
pub const DCT_ENCLOSED_SITES: &str = "http://purl.org/dc/terms/enclosedSites";
/// `cx-common:version`.
pub const CX_VERSION: &str = "https://w3id.org/catenax/ontology/common#version";
/// `aas:semanticId`.
pub const AAS_SEMANTIC_ID: &str = "https://admin-shell.io/aas/3/0/HasSemantics/semanticId";

/// `cx-taxo:CCMAPI`: the type of the notification API asset (§4.1).
pub const TAXO_CCMAPI: &str = "https://w3id.org/catenax/taxonomy#CCMAPI";
/// `cx-taxo:CompanyCertificateManagementNotificationApi`: its subject (and, in the reference
/// app, its type).
pub const TAXO_NOTIFICATION_API: &str =
    "https://w3id.org/catenax/taxonomy#CompanyCertificateManagementNotificationApi";
/// `cx-taxo:Submodel`: the type of a certificate asset (§4.2).
pub const TAXO_SUBMODEL: &str = "https://w3id.org/catenax/taxonomy#Submodel";
/// `cx-taxo:CompanyCertificate`: the subject of a certificate asset (and, in the reference
/// app, its type).
pub const TAXO_COMPANY_CERTIFICATE: &str = "https://w3id.org/catenax/taxonomy#CompanyCertificate";
/// The semantic id of the payload, BusinessPartnerCertificate 3.1.0.
pub const BPC_SEMANTIC_ID: &str =
    "urn:samm:io.catenax.business_partner_certificate:3.1.0#BusinessPartnerCertificate";
/// `cx-common:version` of both asset kinds.
pub const ASSET_VERSION: &str = "3.0";

/// The version this plugin writes into message headers.
pub const HEADER_VERSION: &str = "3.1.0";

/// The access policy every CCM offer uses.
pub const ACCESS_POLICY_ID: &str = "ccm-access";
/// The usage (contract) policy every CCM offer uses.
pub const USAGE_POLICY_ID: &str = "ccm-usage";
/// The one notification API asset of the tenant's BPNL.
pub const CCMAPI_ASSET_ID: &str = "ccm-notification-api";
/// Its contract definition.
pub const CCMAPI_CONTRACT_DEFINITION_ID: &str = "ccm-notification-api-cd";
/// Prefix of a certificate asset's contract definition id (followed by the asset id).
pub const CERTIFICATE_CONTRACT_DEFINITION_PREFIX: &str = "ccm-cd-";

/// Membership constraint value.
pub const MEMBERSHIP_ACTIVE: &str = "active";
/// The framework agreement every CCM usage policy names.
pub const FRAMEWORK_AGREEMENT: &str = "DataExchangeGovernance:1.0";
/// The usage purpose of CCM.
pub const USAGE_PURPOSE: &str = "cx.ccm.base:1";

/// The DPS HTTP pull profile.
pub const PROFILE_HTTP_PULL: &str = "https://w3id.org/dspace-sig/profile/http-pull";
/// The EDC transfer type for an HTTP pull.
pub const TRANSFER_TYPE_HTTP_PULL: &str = "HttpData-PULL";
/// Profiles and transfer types accepted as an HTTP pull on a flow.
pub const PULL_PROFILES: [&str; 3] = [PROFILE_HTTP_PULL, TRANSFER_TYPE_HTTP_PULL, "http-pull"];
/// The profiles written into every asset's `dataplaneMetadata.profiles`.
pub const ASSET_PROFILES: [&str; 2] = [PROFILE_HTTP_PULL, TRANSFER_TYPE_HTTP_PULL];

/// Default DSP protocol string of catalog, negotiation and transfer requests.
pub const DEFAULT_PROTOCOL: &str = "dataspace-protocol-http:2025-1";

/// Prefixes expanded by [`expand`].
const PREFIXES: [(&str, &str); 7] = [
    ("dct:", DCT_NS),
    ("cx-taxo:", CX_TAXO_NS),
    ("cx-common:", CX_COMMON_NS),
    ("aas:", AAS_SEMANTICS_NS),
    ("aas-semantics:", AAS_SEMANTICS_NS),
    ("edc:", EDC_NS),
    ("odrl:", ODRL_NS),
];

/// Expands a compact IRI with one of the CCM prefixes; anything else is returned as is.
pub fn expand(term: &str) -> String {
    for (prefix, ns) in PREFIXES {
        if let Some(rest) = term.strip_prefix(prefix) {
            return format!("{ns}{rest}");
        }
    }
    term.to_owned()
}

/// The compact forms under which a property IRI may appear in compacted JSON-LD.
pub fn compact_forms(iri: &str) -> Vec<String> {
    let mut out = vec![iri.to_owned()];
    for (prefix, ns) in PREFIXES {
        if let Some(rest) = iri.strip_prefix(ns) {
            out.push(format!("{prefix}{rest}"));
            if ns == EDC_NS {
                out.push(rest.to_owned());
            }
        }
    }
    out
}

/// The local name of a term: what follows the last `/`, `#` or `:`.
pub fn local_name(term: &str) -> &str {
    term.rsplit(['/', '#', ':']).next().unwrap_or(term)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_expand_and_compact() {
        assert_eq!(expand("cx-taxo:CCMAPI"), TAXO_CCMAPI);
        assert_eq!(expand("dct:type"), DCT_TYPE);
        assert_eq!(expand("aas:semanticId"), AAS_SEMANTIC_ID);
        assert_eq!(expand("urn:samm:x"), "urn:samm:x");
        assert!(compact_forms(DCT_SUBJECT).contains(&"dct:subject".to_owned()));
        assert!(compact_forms(EDC_ID).contains(&"id".to_owned()));
        assert_eq!(
            local_name("https://w3id.org/catenax/2025/9/policy/UsagePurpose"),
            "UsagePurpose"
        );
        assert_eq!(local_name("odrl:eq"), "eq");
    }
}
