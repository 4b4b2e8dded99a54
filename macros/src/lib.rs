//! Procedural macros of stormchor.
//!
//! - [`choreography!`] writes choreographies in a DSL whose statements mirror the
//!   algebra, checks them while compiling with the algebra's own projection, and
//!   expands to functions that build the `Program`;
//! - `#[derive(ExtensionEffect)]` writes the `ExtensionEffect` trait for a plain data
//!   struct, so nobody writes it by hand.
//!
//! This crate stays thin: it converts tokens, finds the choreography crate and calls
//! `stormchor-macros-core`, where parsing, checking and code generation live (and
//! every soundness rule lives in `stormchor-choreography`).
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro_crate::{FoundCrate, crate_name};
use quote::{format_ident, quote};

/// Where the choreography crate is, as the calling crate names it: directly, or through
/// the `stormchor` facade.
fn choreography_path() -> proc_macro2::TokenStream {
    match crate_name("stormchor-choreography") {
        Ok(FoundCrate::Itself) => quote!(crate),
        Ok(FoundCrate::Name(name)) => {
            let name = format_ident!("{}", name);
            quote!(::#name)
        }
        Err(_) => match crate_name("stormchor") {
            Ok(FoundCrate::Name(name)) => {
                let name = format_ident!("{}", name);
                quote!(::#name::choreography)
            }
            _ => quote!(::stormchor_choreography),
        },
    }
}

/// Derives `ExtensionEffect` for a `Clone + Debug` struct.
///
/// Mark the fields that hold the roles taking part: `#[participant]` on a field holding
/// one role, `#[participants]` on a field holding several (a `Vec`, an `Option`, any
/// collection whose references iterate over roles). With no marked field the effect is
/// global: every role of the program carries it out.
///
/// Effects are *ordered* (docs/choreography.md, effect order): one starts only after
/// the effects before it in the program finished. `#[effect(unordered)]` on the struct
/// marks pure bookkeeping (a phase marker) that needs no such guarantee and costs no
/// frame.
///
/// ```
/// use stormchor_choreography::{Extension, Participation};
/// use stormchor_macros::ExtensionEffect;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator, Worker(u16) }
///
/// #[derive(Clone, Debug, ExtensionEffect)]
/// struct RunWorkload {
///     #[participant]
///     worker: Role,
///     seconds: u32,
/// }
///
/// let effect = Extension::new(RunWorkload { worker: Role::Worker(3), seconds: 30 });
/// assert_eq!(effect.participation::<Role>(), Participation::Roles(vec![Role::Worker(3)]));
/// assert!(effect.is_ordered());
///
/// #[derive(Clone, Debug, ExtensionEffect)]
/// #[effect(unordered)]
/// struct Phase(&'static str);
/// assert!(!Extension::new(Phase("load")).is_ordered());
/// ```
#[proc_macro_derive(ExtensionEffect, attributes(participant, participants, effect))]
pub fn derive_extension_effect(input: TokenStream) -> TokenStream {
    stormchor_macros_core::derive_extension_effect(input.into(), &choreography_path()).into()
}

/// Writes choreographies in a DSL and checks them while compiling.
///
/// One invocation holds an optional role `enum` (emitted with the derives a role type
/// needs) and any number of choreographies, each a Rust function signature returning
/// `Program<Role, Msg>` and a body of statements:
///
/// | statement | meaning |
/// |---|---|
/// | `roles Coordinator, Worker[n];` | the roles (first line); `Worker[n]` is a family of `n` |
/// | `A -> B: msg;` | a send; a broadcast when `B` is a family, a gather when `A` is |
/// | `ext effect;` / `ext effect @ R, Worker;` | an extension effect, on the roles its fields name or on the roles after `@` |
/// | `choice at R { ok => { .. } failed => { .. } }` | `R` picks a branch |
/// | `loop n { .. }` / `loop until R { .. }` | `n` rounds / until `R` decides to stop |
/// | `par { .. } and { .. }` | parts that run concurrently |
/// | `timeout duration at R { .. }` | `R` must finish its share within `duration` |
/// | `call expr;` | a sub-choreography (any `Program` expression, from any crate) |
/// | `for w in Worker { .. }` | the body once per member, `w` bound to it |
/// | `let x = expr;` | plain Rust |
///
/// Inside Rust expressions, role names mean roles: `Coordinator` is `Role::Coordinator`,
/// `Worker[i]` is `Role::Worker(i)` and a bare `Worker` is the `&Family<Role>`.
///
/// Unknown roles, self-sends, empty choices, duplicate labels, zero timeouts, roles
/// that cannot learn a choice and parallel parts racing on a channel are compile
/// errors pointing at the offending tokens. A mistake gives one error: the invocation
/// is parsed item by item and body by body, and the role enum and the signature of
/// every choreography are emitted whatever goes wrong, so the code using them adds no
/// errors of its own. See `docs/dsl.md` for the grammar and the error catalogue.
///
/// ```
/// use stormchor_choreography::{Program, project_all};
/// use stormchor_macros::choreography;
///
/// #[derive(Clone, Debug, PartialEq)]
/// pub enum Msg { Start, Rows(u64) }
///
/// choreography! {
///     pub enum Role { Coordinator, Worker(u16) }
///
///     pub fn round(workers: u16) -> Program<Role, Msg> {
///         roles Coordinator, Worker[workers];
///         Coordinator -> Worker: Msg::Start;
///         Worker -> Coordinator: Msg::Rows(0);
///     }
/// }
///
/// let program = round(3);
/// assert_eq!(program.counts().messages, 6);
/// assert_eq!(project_all(&program).expect("sound").len(), 4);
/// ```
#[proc_macro]
pub fn choreography(input: TokenStream) -> TokenStream {
    stormchor_macros_core::choreography(input.into(), &choreography_path()).into()
}
