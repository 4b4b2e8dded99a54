//! Procedural macros of stormchor.
//!
//! - `#[derive(ExtensionEffect)]` writes the `ExtensionEffect` trait for a plain data
//!   struct, so nobody writes it by hand;
//! - the `choreography!` DSL (tracked in the DSL issue) will live here too. This crate
//!   stays thin and calls into `stormchor-choreography` for all checks.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro_crate::{FoundCrate, crate_name};
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, parse_macro_input, spanned::Spanned};

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
/// ```ignore
/// #[derive(Clone, Debug, ExtensionEffect)]
/// struct RunWorkload {
///     #[participant]
///     worker: Role,
///     seconds: u32,
/// }
/// ```
#[proc_macro_derive(ExtensionEffect, attributes(participant, participants))]
pub fn derive_extension_effect(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(ExtensionEffect)] works on structs; wrap an enum in a struct",
        ));
    };
    let mut pushes = Vec::new();
    for (index, field) in data.fields.iter().enumerate() {
        let access = match &field.ident {
            Some(name) => quote!(self.#name),
            None => {
                let index = syn::Index::from(index);
                quote!(self.#index)
            }
        };
        let single = field.attrs.iter().any(|a| a.path().is_ident("participant"));
        let many = field
            .attrs
            .iter()
            .any(|a| a.path().is_ident("participants"));
        match (single, many) {
            (true, true) => {
                return Err(syn::Error::new(field.span(), "a field is either #[participant] or #[participants], not both"));
            }
            (true, false) => pushes.push(quote! {
                roles.push(::std::boxed::Box::new(::std::clone::Clone::clone(&#access)) as ::std::boxed::Box<dyn ::std::any::Any>);
            }),
            (false, true) => pushes.push(quote! {
                for role in ::std::iter::IntoIterator::into_iter(&#access) {
                    roles.push(::std::boxed::Box::new(::std::clone::Clone::clone(role)) as ::std::boxed::Box<dyn ::std::any::Any>);
                }
            }),
            (false, false) => {}
        }
    }
    let krate = choreography_path();
    let name = &input.ident;
    let name_text = name.to_string();
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    where_clause.predicates.push(syn::parse_quote!(
        Self: ::std::clone::Clone + ::std::fmt::Debug + ::std::marker::Send + ::std::marker::Sync + 'static
    ));
    // Roles are cloned out of the fields and boxed as `Any`: type parameters must allow it.
    for parameter in input.generics.type_params() {
        let parameter = &parameter.ident;
        where_clause
            .predicates
            .push(syn::parse_quote!(#parameter: ::std::clone::Clone + 'static));
    }
    Ok(quote! {
        impl #impl_generics #krate::ExtensionEffect for #name #type_generics #where_clause {
            fn effect_type_id(&self) -> ::std::any::TypeId {
                ::std::any::TypeId::of::<Self>()
            }
            fn type_name(&self) -> &'static str {
                #name_text
            }
            fn participating_role_ids(&self) -> ::std::vec::Vec<::std::boxed::Box<dyn ::std::any::Any>> {
                #[allow(unused_mut)]
                let mut roles: ::std::vec::Vec<::std::boxed::Box<dyn ::std::any::Any>> = ::std::vec::Vec::new();
                #(#pushes)*
                roles
            }
            fn as_any(&self) -> &dyn ::std::any::Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn ::std::any::Any {
                self
            }
            fn clone_box(&self) -> ::std::boxed::Box<dyn #krate::ExtensionEffect> {
                ::std::boxed::Box::new(::std::clone::Clone::clone(self))
            }
        }
    })
}
