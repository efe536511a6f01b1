//! The certificate document: base64 decoding, the `%PDF-` magic check, the size cap and the
//! SHA-256 kept with every copy (ccm.md §7, §9.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The first bytes of every PDF file.
pub const PDF_MAGIC: &[u8] = b"%PDF-";

/// Default cap on a decoded PDF: certificates are a few pages; a call's memory (64 MiB by
/// default) must hold the base64 text, the JSON around it and the decoded bytes at once.
pub const DEFAULT_MAX_PDF_BYTES: usize = 4 << 20;

/// Hard ceiling for the configurable cap, for the same reason.
pub const MAX_PDF_BYTES_CEILING: usize = 12 << 20;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// No content.
    #[error("document.contentBase64 is empty")]
    Empty,
    /// Larger than the cap.
    #[error("the document is larger than {max} bytes")]
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// Not base64.
    #[error("document.contentBase64 is not valid base64: {0}")]
    NotBase64(String),
    /// Decodes, but is no PDF.
    #[error("the document is not a PDF (it does not start with %PDF-)")]
    NotPdf,
}

impl From<PdfError> for weft_sdk::Error {
    fn from(e: PdfError) -> Self {
        match e {
            PdfError::TooLarge { .. } => weft_sdk::Error::LimitExceeded(e.to_string()),
            other => weft_sdk::Error::Invalid(other.to_string()),
        }
    }
}

/// A decoded, checked PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdf {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Decodes standard base64 (line breaks and spaces allowed), refusing anything that would
/// decode to more than `max` bytes before decoding it, and anything that is not a PDF.
pub fn decode(base64_text: &str, max: usize) -> Result<Pdf, PdfError> {
    let compact: String = base64_text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(PdfError::Empty);
    }
    // Four base64 characters carry three bytes.
    if compact.len() / 4 * 3 > max.saturating_add(3) {
        return Err(PdfError::TooLarge { max });
    }
    let bytes = STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| PdfError::NotBase64(e.to_string()))?;
    if bytes.len() > max {
        return Err(PdfError::TooLarge { max });
    }
    if !bytes.starts_with(PDF_MAGIC) {
        return Err(PdfError::NotPdf);
    }
    let sha256 = sha256_hex(&bytes);
    Ok(Pdf { bytes, sha256 })
}

/// Standard base64 of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal PDF.
    pub(crate) const SAMPLE_PDF: &[u8] = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

    pub(crate) fn sample_pdf_base64() -> String {
        encode(SAMPLE_PDF)
    }

    #[test]
    fn decodes_checks_and_hashes() {
        let pdf = decode(&sample_pdf_base64(), DEFAULT_MAX_PDF_BYTES).unwrap();
        assert_eq!(pdf.bytes, SAMPLE_PDF);
        assert_eq!(pdf.sha256, sha256_hex(SAMPLE_PDF));
        assert_eq!(pdf.sha256.len(), 64);
        // Line-wrapped base64 (as MIME encoders write it) is fine.
        let wrapped: String = sample_pdf_base64()
            .as_bytes()
            .chunks(16)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(
            decode(&wrapped, DEFAULT_MAX_PDF_BYTES).unwrap().bytes,
            SAMPLE_PDF
        );
    }

    #[test]
    fn refuses_non_pdfs_bad_base64_empty_and_oversized() {
        assert_eq!(
            decode(&encode(b"\x89PNG\r\n\x1a\n...."), 1000),
            Err(PdfError::NotPdf)
        );
        assert!(matches!(
            decode("iVBORw0KGgoAAdsfwerTETEfdgd", 1000),
            Err(PdfError::NotBase64(_))
        ));
        assert!(matches!(
            decode("not base64 at all!", 1000),
            Err(PdfError::NotBase64(_))
        ));
        assert_eq!(decode(" \n", 1000), Err(PdfError::Empty));
        let big = encode(&[b"%PDF-".as_slice(), &[b'x'; 2000]].concat());
        assert_eq!(decode(&big, 1000), Err(PdfError::TooLarge { max: 1000 }));
        // Exactly at the cap is allowed.
        let exact = [b"%PDF-".as_slice(), &[b'x'; 995]].concat();
        assert_eq!(decode(&encode(&exact), 1000).unwrap().bytes.len(), 1000);
        let e: weft_sdk::Error = PdfError::TooLarge { max: 1 }.into();
        assert_eq!(e.http_status(), 413);
    }
}
