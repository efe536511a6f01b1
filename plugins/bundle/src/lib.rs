//! weft-bundle
