//! The syntax tree of the `choreography!` DSL and its parser.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, ItemEnum, Lit, LitStr, Signature, Token, Visibility, braced};

/// Everything one `choreography!` invocation holds.
pub(crate) struct Input {
    /// An optional role enum, emitted with the derives roles need.
    pub role_enum: Option<ItemEnum>,
    /// The choreographies.
    pub functions: Vec<Choreography>,
}

/// One choreography: a Rust function signature and the DSL body.
pub(crate) struct Choreography {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub roles: Vec<RoleDecl>,
    pub body: Vec<Stmt>,
}

/// `Name` or `Name[size]` in the `roles` line.
pub(crate) struct RoleDecl {
    pub name: Ident,
    pub size: Option<Expr>,
}

/// A role as a statement names it: `Coordinator`, `Worker[expr]`, `Worker` or a
/// variable bound by `for`.
#[derive(Clone)]
pub(crate) struct RoleRef {
    pub name: Ident,
    pub index: Option<Expr>,
}

impl RoleRef {
    pub fn span(&self) -> Span {
        match &self.index {
            Some(index) => self
                .name
                .span()
                .join(index.span())
                .unwrap_or_else(|| self.name.span()),
            None => self.name.span(),
        }
    }
}

/// One branch of a choice.
pub(crate) struct Branch {
    pub label: String,
    pub label_span: Span,
    pub body: Vec<Stmt>,
}

/// How a loop ends.
pub(crate) enum LoopSpec {
    Count(Expr),
    Until(RoleRef),
}

/// One statement of a choreography body.
pub(crate) enum Stmt {
    /// `A -> B: msg;` (a broadcast when `B` is a family, a gather when `A` is).
    Send {
        span: Span,
        from: RoleRef,
        to: RoleRef,
        msg: Expr,
    },
    /// `ext effect;` or `ext effect @ R, S;`.
    Ext {
        span: Span,
        effect: Expr,
        at: Option<Vec<RoleRef>>,
    },
    /// `choice at R { label => { .. } .. }`.
    Choice {
        span: Span,
        at: RoleRef,
        branches: Vec<Branch>,
    },
    /// `loop n { .. }` or `loop until R { .. }`.
    Loop {
        span: Span,
        spec: LoopSpec,
        body: Vec<Stmt>,
    },
    /// `par { .. } and { .. }`.
    Par {
        span: Span,
        parts: Vec<(Span, Vec<Stmt>)>,
    },
    /// `timeout duration at R { .. }`.
    Timeout {
        span: Span,
        duration: Expr,
        role: RoleRef,
        body: Vec<Stmt>,
    },
    /// `call expr;`: a sub-choreography.
    Call { span: Span, program: Expr },
    /// `for w in Family { .. }`: the body once per member, `w` bound to the member.
    For {
        span: Span,
        var: Ident,
        family: Ident,
        body: Vec<Stmt>,
    },
    /// A plain Rust `let` statement.
    Let(Box<syn::Stmt>),
}

mod kw {
    syn::custom_keyword!(roles);
    syn::custom_keyword!(ext);
    syn::custom_keyword!(choice);
    syn::custom_keyword!(at);
    syn::custom_keyword!(until);
    syn::custom_keyword!(par);
    syn::custom_keyword!(and);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(call);
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut role_enum = None;
        let mut functions = Vec::new();
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            let vis: Visibility = input.parse()?;
            if input.peek(Token![enum]) {
                let mut item: ItemEnum = input.parse()?;
                if role_enum.is_some() {
                    return Err(syn::Error::new(
                        item.ident.span(),
                        "one role enum per choreography! invocation",
                    ));
                }
                item.attrs = attrs;
                item.vis = vis;
                role_enum = Some(item);
            } else if input.peek(Token![fn]) {
                let sig: Signature = input.parse()?;
                let content;
                braced!(content in input);
                let roles = parse_roles(&content, &sig)?;
                let body = parse_stmts(&content)?;
                functions.push(Choreography {
                    attrs,
                    vis,
                    sig,
                    roles,
                    body,
                });
            } else {
                return Err(input.error(
                    "expected `fn name(..) -> Program<Role, Msg> { .. }` or a role `enum`",
                ));
            }
        }
        Ok(Input {
            role_enum,
            functions,
        })
    }
}

fn parse_roles(input: ParseStream, sig: &Signature) -> syn::Result<Vec<RoleDecl>> {
    if !input.peek(kw::roles) {
        return Err(syn::Error::new(
            sig.ident.span(),
            "a choreography starts with its roles: `roles Coordinator, Worker[n];`",
        ));
    }
    input.parse::<kw::roles>()?;
    let mut roles = Vec::new();
    loop {
        let name: Ident = input.parse()?;
        let size = if input.peek(syn::token::Bracket) {
            let content;
            syn::bracketed!(content in input);
            Some(content.parse::<Expr>()?)
        } else {
            None
        };
        roles.push(RoleDecl { name, size });
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            return Ok(roles);
        }
        input.parse::<Token![,]>()?;
    }
}

fn parse_block(input: ParseStream) -> syn::Result<Vec<Stmt>> {
    let content;
    braced!(content in input);
    parse_stmts(&content)
}

fn parse_stmts(input: ParseStream) -> syn::Result<Vec<Stmt>> {
    let mut stmts = Vec::new();
    while !input.is_empty() {
        stmts.push(parse_stmt(input)?);
    }
    Ok(stmts)
}

/// Whether the next tokens start a send (`Name ->` or `Name[..] ->`) rather than a
/// keyword statement, so that a role may be called like a keyword.
fn starts_send(input: ParseStream) -> bool {
    input.peek2(Token![->]) || input.peek2(syn::token::Bracket)
}

fn parse_role(input: ParseStream) -> syn::Result<RoleRef> {
    let name: Ident = input.parse()?;
    let index = if input.peek(syn::token::Bracket) {
        let content;
        syn::bracketed!(content in input);
        Some(content.parse::<Expr>()?)
    } else {
        None
    };
    Ok(RoleRef { name, index })
}

fn parse_stmt(input: ParseStream) -> syn::Result<Stmt> {
    let start = input.span();
    if input.peek(Token![let]) {
        let stmt: syn::Stmt = input.parse()?;
        return Ok(Stmt::Let(Box::new(stmt)));
    }
    if input.peek(kw::ext) && !starts_send(input) {
        input.parse::<kw::ext>()?;
        let effect: Expr = input.parse()?;
        let at = if input.peek(Token![@]) {
            input.parse::<Token![@]>()?;
            let mut roles = vec![parse_role(input)?];
            while input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
                roles.push(parse_role(input)?);
            }
            Some(roles)
        } else {
            None
        };
        input.parse::<Token![;]>()?;
        return Ok(Stmt::Ext {
            span: start,
            effect,
            at,
        });
    }
    if input.peek(kw::choice) && !starts_send(input) {
        input.parse::<kw::choice>()?;
        input.parse::<kw::at>()?;
        let at = parse_role(input)?;
        let content;
        braced!(content in input);
        let mut branches = Vec::new();
        while !content.is_empty() {
            let (label, label_span) = if content.peek(LitStr) {
                let text: LitStr = content.parse()?;
                (text.value(), text.span())
            } else if content.peek(Ident) {
                let ident: Ident = content.parse()?;
                (ident.to_string(), ident.span())
            } else {
                return Err(content.error("expected a branch label (a name or a string)"));
            };
            content.parse::<Token![=>]>()?;
            let body = parse_block(&content)?;
            branches.push(Branch {
                label,
                label_span,
                body,
            });
            if content.peek(Token![,]) {
                content.parse::<Token![,]>()?;
            }
        }
        return Ok(Stmt::Choice {
            span: start,
            at,
            branches,
        });
    }
    if input.peek(Token![loop]) {
        input.parse::<Token![loop]>()?;
        let spec = if input.peek(kw::until) && input.peek2(Ident) {
            input.parse::<kw::until>()?;
            LoopSpec::Until(parse_role(input)?)
        } else {
            LoopSpec::Count(Expr::parse_without_eager_brace(input)?)
        };
        let body = parse_block(input)?;
        return Ok(Stmt::Loop {
            span: start,
            spec,
            body,
        });
    }
    if input.peek(kw::par) && !starts_send(input) {
        input.parse::<kw::par>()?;
        let mut parts = vec![(start, parse_block(input)?)];
        while input.peek(kw::and) {
            let and: kw::and = input.parse()?;
            parts.push((and.span, parse_block(input)?));
        }
        return Ok(Stmt::Par { span: start, parts });
    }
    if input.peek(kw::timeout) && !starts_send(input) {
        input.parse::<kw::timeout>()?;
        let duration: Expr = input.parse()?;
        input.parse::<kw::at>()?;
        let role = parse_role(input)?;
        let body = parse_block(input)?;
        return Ok(Stmt::Timeout {
            span: start,
            duration,
            role,
            body,
        });
    }
    if input.peek(kw::call) && !starts_send(input) {
        input.parse::<kw::call>()?;
        let program: Expr = input.parse()?;
        input.parse::<Token![;]>()?;
        return Ok(Stmt::Call {
            span: start,
            program,
        });
    }
    if input.peek(Token![for]) {
        input.parse::<Token![for]>()?;
        let var: Ident = input.parse()?;
        input.parse::<Token![in]>()?;
        let family: Ident = input.parse()?;
        let body = parse_block(input)?;
        return Ok(Stmt::For {
            span: start,
            var,
            family,
            body,
        });
    }
    if input.peek(Ident) {
        let from = parse_role(input)?;
        input.parse::<Token![->]>()?;
        let to = parse_role(input)?;
        input.parse::<Token![:]>()?;
        let msg: Expr = input.parse()?;
        input.parse::<Token![;]>()?;
        return Ok(Stmt::Send {
            span: start,
            from,
            to,
            msg,
        });
    }
    Err(input.error(
        "expected a statement: `A -> B: msg;`, `ext ..;`, `choice at R { .. }`, `loop .. { .. }`, \
         `par { .. } and { .. }`, `timeout .. at R { .. }`, `call ..;`, `for w in Family { .. }` or `let`",
    ))
}

/// The integer a literal index expression holds, if it is one.
pub(crate) fn literal_index(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(int) => int.base10_parse().ok(),
            _ => None,
        },
        Expr::Paren(inner) => literal_index(&inner.expr),
        _ => None,
    }
}

/// An expression's tokens as text, the same for the same tokens.
pub(crate) fn text(tokens: &impl ToTokens) -> String {
    let stream: TokenStream = tokens.to_token_stream();
    stream.to_string()
}
