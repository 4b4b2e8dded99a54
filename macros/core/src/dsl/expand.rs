//! Code generation: each choreography becomes a function that builds its `Program`
//! with the builder, statement by statement.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::Type;

use super::parse::{Choreography, LoopSpec, RoleRef, Stmt};
use super::{Resolved, RoleKind, Scope};

struct Generator<'a> {
    krate: &'a TokenStream,
    role_type: &'a Type,
    scope: &'a Scope,
    /// `for` variables in scope.
    vars: Vec<Ident>,
}

/// The function of one choreography.
pub(super) fn function(
    krate: &TokenStream,
    role_type: &Type,
    scope: &Scope,
    function: &Choreography,
    body: &[Stmt],
) -> TokenStream {
    let mut generator = Generator {
        krate,
        role_type,
        scope,
        vars: Vec::new(),
    };
    let mut families = Vec::new();
    let mut declarations = Vec::new();
    for (name, kind, size) in &scope.roles {
        match kind {
            RoleKind::Single => declarations.push(quote!(.role(#role_type::#name))),
            RoleKind::Family => {
                let variable = family_variable(name);
                let text = name.to_string();
                families.push(quote! {
                    let #variable = #krate::Family::indexed(#text, #size, #role_type::#name);
                });
                declarations.push(quote!(.family(&#variable)));
            }
        }
    }
    let statements = generator.statements(body);
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    quote! {
        #(#attrs)*
        #[allow(non_snake_case, unused_mut, clippy::let_and_return)]
        #vis #sig {
            #(#families)*
            let mut __stormchor_program = #krate::Program::new() #(#declarations)*;
            #statements
            __stormchor_program
        }
    }
}

/// The local variable holding a family while the program is built.
fn family_variable(name: &Ident) -> Ident {
    format_ident!("__stormchor_family_{}", name)
}

impl Generator<'_> {
    /// A block expression that builds the program of `stmts`.
    fn block(&mut self, stmts: &[Stmt]) -> TokenStream {
        let krate = self.krate;
        let statements = self.statements(stmts);
        quote!({
            let mut __stormchor_program = #krate::Program::new();
            #statements
            __stormchor_program
        })
    }

    fn statements(&mut self, stmts: &[Stmt]) -> TokenStream {
        let mut out = TokenStream::new();
        for stmt in stmts {
            out.extend(self.statement(stmt));
        }
        out
    }

    /// The expression of a role; a whole family becomes a `&Family`. Names that do
    /// not resolve were reported by the check; they expand to the name itself.
    fn role(&self, role: &RoleRef) -> TokenStream {
        let role_type = self.role_type;
        match self.scope.resolve(role, &self.vars) {
            Ok(Resolved::Single(name)) => quote!(#role_type::#name),
            Ok(Resolved::Member(name, index)) => {
                let index = self.rust(index);
                quote!(#role_type::#name(#index))
            }
            Ok(Resolved::Family(name)) => {
                let variable = family_variable(name);
                quote!(&#variable)
            }
            Ok(Resolved::Var(var)) => quote!(#var),
            Err(_) => role.name.to_token_stream(),
        }
    }

    fn is_family(&self, role: &RoleRef) -> bool {
        matches!(
            self.scope.resolve(role, &self.vars),
            Ok(Resolved::Family(_))
        )
    }

    fn statement(&mut self, stmt: &Stmt) -> TokenStream {
        let krate = self.krate;
        let span = stmt_span(stmt);
        let call = match stmt {
            Stmt::Send { from, to, msg, .. } => {
                let msg = self.rust(msg);
                let (from_tokens, to_tokens) = (self.role(from), self.role(to));
                match (self.is_family(from), self.is_family(to)) {
                    (false, true) => quote!(.broadcast(#from_tokens, #to_tokens, #msg)),
                    (true, false) => quote!(.gather(#from_tokens, #to_tokens, #msg)),
                    _ => quote!(.send(#from_tokens, #to_tokens, #msg)),
                }
            }
            Stmt::Ext {
                span,
                effect,
                at,
                start,
                ..
            } => {
                let effect = self.rust(effect);
                let effect = match at {
                    None => effect,
                    Some(roles) => {
                        let pushes = roles.iter().map(|role| {
                            let tokens = self.role(role);
                            if self.is_family(role) {
                                quote!(__stormchor_roles.extend((#tokens).members().iter().copied());)
                            } else {
                                quote!(__stormchor_roles.push(#tokens);)
                            }
                        });
                        quote!(#krate::At::new(#effect, {
                            let mut __stormchor_roles = ::std::vec::Vec::new();
                            #(#pushes)*
                            __stormchor_roles
                        }))
                    }
                };
                // The statement's line, for failure messages: `line!()` spanned at
                // the statement names its line.
                let source =
                    quote::quote_spanned!(*span=> .with_source(::core::file!(), ::core::line!()));
                match start {
                    Some(handle) => {
                        let name = handle.to_string();
                        quote!(.ext_shared(#krate::Extension::start(#effect, #name) #source))
                    }
                    None => quote!(.ext_shared(#krate::Extension::new(#effect) #source)),
                }
            }
            Stmt::Finish { span, handle, .. } => {
                let name = handle.to_string();
                let source =
                    quote::quote_spanned!(*span=> .with_source(::core::file!(), ::core::line!()));
                quote!(.ext_shared(#krate::Extension::finish(#name) #source))
            }
            Stmt::Choice { at, branches, .. } => {
                let at = self.role(at);
                if branches.is_empty() {
                    let role_type = self.role_type;
                    quote!(.choice(#at, ::std::iter::empty::<(&'static str, #krate::Program<#role_type, _>)>()))
                } else {
                    let branches: Vec<TokenStream> = branches
                        .iter()
                        .map(|branch| {
                            let label = &branch.label;
                            let body = self.block(&branch.body);
                            quote!((#label, #body))
                        })
                        .collect();
                    quote!(.choice(#at, [#(#branches),*]))
                }
            }
            Stmt::Loop { spec, body, .. } => {
                let body = self.block(body);
                match spec {
                    LoopSpec::Count(count) => {
                        let count = self.rust(count);
                        quote!(.loop_n(#count, #body))
                    }
                    LoopSpec::Until(decider) => {
                        let decider = self.role(decider);
                        quote!(.loop_until(#decider, #body))
                    }
                }
            }
            Stmt::Par { parts, .. } => {
                let parts: Vec<TokenStream> =
                    parts.iter().map(|(_, part)| self.block(part)).collect();
                quote!(.par([#(#parts),*]))
            }
            Stmt::Timeout {
                duration,
                role,
                body,
                ..
            } => {
                let duration = self.rust(duration);
                let role = self.role(role);
                let body = self.block(body);
                quote!(.timeout(#role, #duration, #body))
            }
            Stmt::Call { program, .. } => {
                let program = self.rust(program);
                quote!(.then(#program))
            }
            Stmt::Let(statement) => return self.rust(&**statement),
            Stmt::For {
                var, family, body, ..
            } => {
                let variable = family_variable(family);
                self.vars.push(var.clone());
                let body = self.block(body);
                self.vars.pop();
                return quote_spanned! {span=>
                    for &#var in #variable.members() {
                        __stormchor_program = __stormchor_program.then(#body);
                    }
                };
            }
        };
        quote_spanned!(span=> __stormchor_program = __stormchor_program #call;)
    }

    /// A Rust expression or statement of the user, with role names turned into roles:
    /// `Coordinator` into `Role::Coordinator`, `Worker[i]` into `Role::Worker(i)` and a
    /// bare family `Worker` into a `&Family<Role>`.
    fn rust(&self, tokens: &impl ToTokens) -> TokenStream {
        self.rewrite(tokens.to_token_stream())
    }

    fn rewrite(&self, tokens: TokenStream) -> TokenStream {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = TokenStream::new();
        let mut i = 0;
        while i < trees.len() {
            let tree = &trees[i];
            match tree {
                TokenTree::Group(group) => {
                    let mut rewritten = Group::new(group.delimiter(), self.rewrite(group.stream()));
                    rewritten.set_span(group.span());
                    out.extend([TokenTree::Group(rewritten)]);
                }
                TokenTree::Ident(ident) if self.is_role_position(&trees, i) => {
                    let role_type = self.role_type;
                    match self.scope.kind(&ident.to_string()) {
                        Some(RoleKind::Single) => out.extend(quote!(#role_type::#ident)),
                        Some(RoleKind::Family) => match trees.get(i + 1) {
                            Some(TokenTree::Group(index))
                                if index.delimiter() == Delimiter::Bracket =>
                            {
                                let index = self.rewrite(index.stream());
                                out.extend(quote!(#role_type::#ident(#index)));
                                i += 1;
                            }
                            _ => {
                                let variable = family_variable(ident);
                                out.extend(quote!((&#variable)));
                            }
                        },
                        None => out.extend([tree.clone()]),
                    }
                }
                _ => out.extend([tree.clone()]),
            }
            i += 1;
        }
        out
    }

    /// Whether the identifier at `i` is a role name used as a value: not a path
    /// segment, field, method, macro, struct field or tuple-variant call.
    fn is_role_position(&self, trees: &[TokenTree], i: usize) -> bool {
        let TokenTree::Ident(ident) = &trees[i] else {
            return false;
        };
        if self.scope.kind(&ident.to_string()).is_none() || self.vars.contains(ident) {
            return false;
        }
        let punct = |at: Option<&TokenTree>, ch: char| matches!(at, Some(TokenTree::Punct(p)) if p.as_char() == ch);
        let before = |back: usize| i.checked_sub(back).and_then(|j| trees.get(j));
        // `a.Name`, `path::Name`
        if punct(before(1), '.') || (punct(before(1), ':') && punct(before(2), ':')) {
            return false;
        }
        // `Name::path`, `Name: value` (a struct field), `Name!(..)`
        let after = trees.get(i + 1);
        if punct(after, ':') || punct(after, '!') {
            return false;
        }
        !matches!(after, Some(TokenTree::Group(g)) if matches!(g.delimiter(), Delimiter::Parenthesis | Delimiter::Brace))
    }
}

fn stmt_span(stmt: &Stmt) -> Span {
    match stmt {
        Stmt::Send { span, .. }
        | Stmt::Ext { span, .. }
        | Stmt::Finish { span, .. }
        | Stmt::Choice { span, .. }
        | Stmt::Loop { span, .. }
        | Stmt::Par { span, .. }
        | Stmt::Timeout { span, .. }
        | Stmt::Call { span, .. }
        | Stmt::For { span, .. } => *span,
        Stmt::Let(_) => Span::call_site(),
    }
}
