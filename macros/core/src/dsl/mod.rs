//! The `choreography!` DSL: parsing, name resolution, compile-time checks (through the
//! algebra's own projection) and code generation.

mod check;
mod expand;
mod parse;

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Fields, Ident, Type};

use parse::{Body, Choreography, Input, RoleRef};

/// Expands one `choreography!` invocation; `krate` is the path of the choreography
/// crate in the generated code.
///
/// Whatever goes wrong, the role enum and the signature of every choreography are
/// emitted (a rejected choreography gets a [`stub`]), so that one mistake gives one
/// error and not a trail of unknown names wherever the choreographies are used.
pub(crate) fn expand(input: TokenStream, krate: &TokenStream) -> TokenStream {
    let input: Input = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let krate = krate.clone();
    let mut errors: Vec<syn::Error> = input.errors;
    let mut items = Vec::new();
    if let Some(role_enum) = &input.role_enum {
        items.push(quote! {
            #[derive(
                ::std::clone::Clone, ::std::marker::Copy, ::std::fmt::Debug,
                ::std::cmp::PartialEq, ::std::cmp::Eq, ::std::hash::Hash,
                ::std::cmp::PartialOrd, ::std::cmp::Ord
            )]
            #role_enum
        });
    }
    for function in &input.functions {
        let body = match &function.body {
            Ok(body) => body,
            Err(error) => {
                errors.push(error.clone());
                items.push(stub(function));
                continue;
            }
        };
        let role_type = match role_type(function) {
            Ok(role_type) => role_type,
            Err(error) => {
                errors.push(error);
                items.push(stub(function));
                continue;
            }
        };
        let mut problems = match &input.role_enum {
            Some(role_enum) => check_against_enum(body, role_enum, &role_type),
            None => Vec::new(),
        };
        match Scope::new(body) {
            Ok(scope) => match check::check(&scope, &body.stmts) {
                Ok(()) if problems.is_empty() => {
                    items.push(expand::function(
                        &krate,
                        &role_type,
                        &scope,
                        function,
                        &body.stmts,
                    ));
                }
                Ok(()) => items.push(stub(function)),
                Err(error) => {
                    problems.push(error);
                    items.push(stub(function));
                }
            },
            Err(error) => {
                problems.push(error);
                items.push(stub(function));
            }
        }
        errors.extend(problems);
    }
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote! {
        #(#items)*
        #(#errors)*
    }
}

/// The function of a choreography the macro rejected: its signature with a body that
/// never runs (the crate does not compile), so that callers do not pile more errors on
/// the one that matters.
fn stub(function: &Choreography) -> TokenStream {
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    quote! {
        #(#attrs)*
        #[allow(unused_variables)]
        #vis #sig {
            ::core::unreachable!("choreography! rejected this choreography")
        }
    }
}

/// The role type `R` of a choreography returning `Program<R, M>`.
fn role_type(function: &Choreography) -> syn::Result<Type> {
    let complain = || {
        syn::Error::new_spanned(
            &function.sig,
            "a choreography returns `Program<Role, Msg>`: name its role and message types",
        )
    };
    let syn::ReturnType::Type(_, output) = &function.sig.output else {
        return Err(complain());
    };
    let Type::Path(path) = &**output else {
        return Err(complain());
    };
    let Some(last) = path.path.segments.last() else {
        return Err(complain());
    };
    let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return Err(complain());
    };
    match arguments.args.first() {
        Some(syn::GenericArgument::Type(role)) if arguments.args.len() == 2 => Ok(role.clone()),
        _ => Err(complain()),
    }
}

/// When the invocation declares the role enum, each role of a choreography over it
/// must be one of its variants: a unit variant for a single role, a one-field tuple
/// variant for a family.
fn check_against_enum(body: &Body, role_enum: &syn::ItemEnum, role_type: &Type) -> Vec<syn::Error> {
    let Type::Path(path) = role_type else {
        return Vec::new();
    };
    if !path.path.is_ident(&role_enum.ident) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for role in &body.roles {
        let variant = role_enum.variants.iter().find(|v| v.ident == role.name);
        let message = match (variant.map(|v| &v.fields), &role.size) {
            (None, _) => Some(format!(
                "`{}` is not a variant of the role enum `{}`",
                role.name, role_enum.ident
            )),
            (Some(Fields::Unit), Some(_)) => Some(format!(
                "`{}` is declared as a family here but is a unit variant of `{}`: make it `{}(u16)`",
                role.name, role_enum.ident, role.name
            )),
            (Some(Fields::Unnamed(fields)), None) if fields.unnamed.len() == 1 => Some(format!(
                "`{}` is a family variant of `{}`: declare it with its size, `{}[n]`",
                role.name, role_enum.ident, role.name
            )),
            (Some(Fields::Unit), None) => None,
            (Some(Fields::Unnamed(fields)), Some(_)) if fields.unnamed.len() == 1 => None,
            (Some(_), _) => Some(format!(
                "the variant `{}` of `{}` must be a unit variant (a role) or hold one index (a family)",
                role.name, role_enum.ident
            )),
        };
        if let Some(message) = message {
            errors.push(syn::Error::new(role.name.span(), message));
        }
    }
    errors
}

/// What a role name means in one choreography.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleKind {
    Single,
    Family,
}

/// The roles a choreography declared, for name resolution.
pub(crate) struct Scope {
    /// Declared roles in declaration order, with their kind and (families) size.
    pub roles: Vec<(Ident, RoleKind, Option<Expr>)>,
    kinds: HashMap<String, RoleKind>,
}

/// A role reference after name resolution.
pub(crate) enum Resolved<'a> {
    /// A single role.
    Single(&'a Ident),
    /// One member of a family, by index expression.
    Member(&'a Ident, &'a Expr),
    /// A whole family.
    Family(&'a Ident),
    /// A `for` variable: one member, decided when the program is built.
    Var(&'a Ident),
}

impl Scope {
    fn new(body: &Body) -> syn::Result<Self> {
        let mut kinds = HashMap::new();
        let mut roles = Vec::new();
        for role in &body.roles {
            let kind = if role.size.is_some() {
                RoleKind::Family
            } else {
                RoleKind::Single
            };
            if kinds.insert(role.name.to_string(), kind).is_some() {
                return Err(syn::Error::new(
                    role.name.span(),
                    format!("the role `{}` is declared twice", role.name),
                ));
            }
            roles.push((role.name.clone(), kind, role.size.clone()));
        }
        Ok(Scope { roles, kinds })
    }

    pub fn kind(&self, name: &str) -> Option<RoleKind> {
        self.kinds.get(name).copied()
    }

    fn known(&self) -> String {
        self.roles
            .iter()
            .map(|(name, kind, _)| match kind {
                RoleKind::Single => name.to_string(),
                RoleKind::Family => format!("{name}[..]"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Resolves a role reference; `vars` are the `for` variables in scope.
    pub fn resolve<'a>(&self, role: &'a RoleRef, vars: &[Ident]) -> syn::Result<Resolved<'a>> {
        let name = role.name.to_string();
        if vars.contains(&role.name) {
            if role.index.is_some() {
                return Err(syn::Error::new(
                    role.span(),
                    format!("`{name}` is already one member; it takes no index"),
                ));
            }
            return Ok(Resolved::Var(&role.name));
        }
        match (self.kind(&name), &role.index) {
            (Some(RoleKind::Single), None) => Ok(Resolved::Single(&role.name)),
            (Some(RoleKind::Single), Some(_)) => Err(syn::Error::new(
                role.span(),
                format!("`{name}` is a single role, not a family: it takes no index"),
            )),
            (Some(RoleKind::Family), Some(index)) => Ok(Resolved::Member(&role.name, index)),
            (Some(RoleKind::Family), None) => Ok(Resolved::Family(&role.name)),
            (None, _) => Err(syn::Error::new(
                role.name.span(),
                format!(
                    "unknown role `{name}`: the roles of this choreography are {}",
                    self.known()
                ),
            )),
        }
    }

    /// Resolves a reference that must name exactly one role.
    pub fn resolve_one<'a>(
        &self,
        role: &'a RoleRef,
        vars: &[Ident],
        what: &str,
    ) -> syn::Result<Resolved<'a>> {
        let resolved = self.resolve(role, vars)?;
        if let Resolved::Family(name) = resolved {
            return Err(syn::Error::new(
                role.span(),
                format!(
                    "{what} one role, but `{name}` is a family: name one member, e.g. `{name}[0]`"
                ),
            ));
        }
        Ok(resolved)
    }
}
