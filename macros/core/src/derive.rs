//! `#[derive(ExtensionEffect)]`.

use quote::quote;
use syn::{Data, DeriveInput, spanned::Spanned};

pub(crate) fn expand(
    input: &DeriveInput,
    krate: &proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(ExtensionEffect)] works on structs; wrap an enum in a struct",
        ));
    };
    // `#[effect(unordered)]`: pure bookkeeping, no effect order (no frames).
    let mut unordered = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("effect")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("unordered") {
                unordered = true;
                Ok(())
            } else {
                Err(meta.error("expected `unordered`, as in #[effect(unordered)]"))
            }
        })?;
    }
    let ordered = !unordered;
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
            fn ordered(&self) -> bool {
                #ordered
            }
        }
    })
}
