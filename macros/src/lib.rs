//! Procedural macros of stormchor.
//!
//! The `choreography!` DSL and `#[derive(ExtensionEffect)]` live here (tracked in the
//! DSL issue); this crate stays thin and calls into `stormchor-choreography` for all
//! checks, so the rules are written once.
#![deny(missing_docs)]
