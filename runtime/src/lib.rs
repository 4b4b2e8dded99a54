//! The stormchor runtime.
//!
//! Handlers, transports, the interpreter of local programs, the extension registry
//! and the PostgreSQL layer arrive here with the runtime and PostgreSQL issues. For
//! now it re-exports the algebra it will interpret.
#![deny(missing_docs)]

pub use stormchor_choreography as choreography;
