//! The logic of stormchor's macros, as a plain library over `proc-macro2`.
//!
//! `stormchor-macros` is the proc-macro crate users depend on; it only turns the
//! compiler's token streams into `proc_macro2` ones, says where the choreography crate
//! is, and calls this crate. Everything else lives here, where ordinary tests and
//! benchmarks can call it:
//!
//! - [`choreography`]: the `choreography!` DSL: parse (`dsl::parse`, recovering per
//!   item so one mistake gives one error), name resolution (`dsl`), the compile-time
//!   check through the algebra's own projection (`dsl::check`) and code generation
//!   (`dsl::expand`);
//! - [`derive_extension_effect`]: `#[derive(ExtensionEffect)]` (`derive`).
//!
//! Both return tokens, never an `Err`: problems become `compile_error!` invocations
//! spanned on the offending tokens, next to whatever could still be generated.
#![deny(missing_docs)]

mod derive;
mod dsl;

use proc_macro2::TokenStream;

/// Expands the body of one `choreography!` invocation. `krate` is the path under which
/// the generated code names the choreography crate (`::stormchor_choreography`, or
/// `::stormchor::choreography` through the facade).
///
/// ```
/// use quote::quote;
///
/// let input = quote! {
///     pub enum Role { Client, Server }
///     pub fn ping() -> Program<Role, Msg> {
///         roles Client, Server;
///         Client -> Server: Msg::Ping;
///     }
/// };
/// let output = stormchor_macros_core::choreography(input, &quote!(::stormchor_choreography));
/// let text = output.to_string();
/// assert!(text.contains("pub enum Role"));
/// assert!(text.contains(". send"));
/// assert!(!text.contains("compile_error"));
/// ```
pub fn choreography(input: TokenStream, krate: &TokenStream) -> TokenStream {
    dsl::expand(input, krate)
}

/// Expands `#[derive(ExtensionEffect)]` on the item `input`; `krate` is the path of the
/// choreography crate, as for [`choreography`].
///
/// ```
/// use quote::quote;
///
/// let input = quote! {
///     struct Vacuum { #[participant] node: Role }
/// };
/// let output = stormchor_macros_core::derive_extension_effect(input, &quote!(::stormchor_choreography));
/// let text = output.to_string();
/// assert!(text.contains("impl :: stormchor_choreography :: ExtensionEffect for Vacuum"));
/// assert!(!text.contains("compile_error"));
/// ```
pub fn derive_extension_effect(input: TokenStream, krate: &TokenStream) -> TokenStream {
    let input: syn::DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    match derive::expand(&input, krate) {
        Ok(tokens) => tokens,
        Err(error) => error.to_compile_error(),
    }
}
