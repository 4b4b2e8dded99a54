//! The syntax tree of the `choreography!` DSL and its parser.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, ItemEnum, Lit, LitStr, Signature, Token, Visibility, braced};

/// Everything one `choreography!` invocation holds, and the syntax errors met on the
/// way. The parser recovers per item: a mistake in one choreography's body costs that
/// body only, and the role enum and every signature are still there to emit.
pub(crate) struct Input {
    /// An optional role enum, emitted with the derives roles need.
    pub role_enum: Option<ItemEnum>,
    /// The choreographies whose signature parsed, with their body or its syntax error.
    pub functions: Vec<Choreography>,
    /// Syntax errors outside the bodies: tokens that are no item, an item that does not
    /// parse, a second role enum.
    pub errors: Vec<syn::Error>,
}

/// One choreography: a Rust function signature and the DSL body.
pub(crate) struct Choreography {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    /// The body, or the syntax error that stopped its parse.
    pub body: syn::Result<Body>,
}

/// The body of a choreography: its `roles` line and its statements.
pub(crate) struct Body {
    pub roles: Vec<RoleDecl>,
    pub stmts: Vec<Stmt>,
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
        /// The span of its `;`: errors about the whole statement cover `span..end`.
        end: Span,
        from: RoleRef,
        to: RoleRef,
        msg: Expr,
    },
    /// `ext effect;`, `ext effect @ R, S;`, or with `=> SLOT` after the effect; with
    /// `start` after `ext` and `as h` at the end, the start of an effect finished
    /// later by `ext finish h;`.
    Ext {
        span: Span,
        /// The span of its `;`.
        end: Span,
        effect: Expr,
        at: Option<Vec<RoleRef>>,
        /// `ext start .. as h`: the handle.
        start: Option<Ident>,
    },
    /// `ext finish h;` or `ext finish h @ R, S;` (the roles must be the start's).
    Finish {
        span: Span,
        end: Span,
        handle: Ident,
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
    syn::custom_keyword!(start);
    syn::custom_keyword!(finish);
    syn::custom_keyword!(choice);
    syn::custom_keyword!(at);
    syn::custom_keyword!(until);
    syn::custom_keyword!(par);
    syn::custom_keyword!(and);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(call);
}

/// What the top level of an invocation says when it holds something else.
const EXPECTED_ITEM: &str = "expected `fn name(..) -> Program<Role, Msg> { .. }` or a role `enum`";

impl Parse for Input {
    /// Splits the invocation into items before parsing any of them (an item ends with
    /// the first top-level `{ .. }` after its `fn` or `enum`), then parses each item,
    /// and each choreography's body, on its own: an error in one leaves the others
    /// whole.
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut parsed = Input {
            role_enum: None,
            functions: Vec::new(),
            errors: Vec::new(),
        };
        while !input.is_empty() {
            let mut tokens = Vec::new();
            let mut keyword = false;
            while !input.is_empty() {
                let tree: TokenTree = input.parse()?;
                let ends = keyword
                    && matches!(&tree, TokenTree::Group(group) if group.delimiter() == Delimiter::Brace);
                keyword |=
                    matches!(&tree, TokenTree::Ident(ident) if ident == "fn" || ident == "enum");
                tokens.push(tree);
                if ends {
                    break;
                }
            }
            parsed.item(tokens);
        }
        Ok(parsed)
    }
}

impl Input {
    /// Parses the tokens of one item; what comes before its first token (attributes,
    /// visibility, qualifiers of the `fn`) is reported once, as one error.
    fn item(&mut self, mut tokens: Vec<TokenTree>) {
        let start = item_start(&tokens);
        if start > 0 {
            let garbage: TokenStream = tokens.drain(..start).collect();
            self.errors
                .push(syn::Error::new_spanned(garbage, EXPECTED_ITEM));
        }
        if tokens.is_empty() {
            return;
        }
        let tokens: TokenStream = tokens.into_iter().collect();
        match Parser::parse2(parse_item, tokens) {
            Ok(Item::Enum(item)) => {
                if self.role_enum.is_some() {
                    self.errors.push(syn::Error::new(
                        item.ident.span(),
                        "one role enum per choreography! invocation",
                    ));
                } else {
                    self.role_enum = Some(item);
                }
            }
            Ok(Item::Fn {
                attrs,
                vis,
                sig,
                body,
            }) => {
                let body = Parser::parse2(
                    |input: ParseStream| {
                        let content;
                        braced!(content in input);
                        let roles = parse_roles(&content, &sig)?;
                        let stmts = parse_stmts(&content)?;
                        Ok(Body { roles, stmts })
                    },
                    TokenStream::from(TokenTree::Group(body)),
                );
                self.functions.push(Choreography {
                    attrs,
                    vis,
                    sig,
                    body,
                });
            }
            Err(error) => self.errors.push(error),
        }
    }
}

/// Where the item in `tokens` starts: its attributes, visibility and `fn` qualifiers
/// before its first `fn` or `enum`; `tokens.len()` when there is none.
fn item_start(tokens: &[TokenTree]) -> usize {
    let is_ident = |tree: &TokenTree, names: &[&str]| matches!(tree, TokenTree::Ident(ident) if names.iter().any(|name| ident == name));
    let Some(keyword) = tokens
        .iter()
        .position(|tree| is_ident(tree, &["fn", "enum"]))
    else {
        return tokens.len();
    };
    let mut start = keyword;
    // `const`, `async`, `unsafe`, `extern "abi"` before `fn`; `pub` or `pub(..)`.
    while start > 0 {
        let before = &tokens[start - 1];
        let qualifier = is_ident(before, &["const", "async", "unsafe", "extern", "pub"])
            || matches!(before, TokenTree::Literal(_))
            || (matches!(before, TokenTree::Group(group) if group.delimiter() == Delimiter::Parenthesis)
                && start >= 2
                && is_ident(&tokens[start - 2], &["pub"]));
        if !qualifier {
            break;
        }
        start -= 1;
    }
    // Outer attributes: `#` `[..]`.
    while start >= 2
        && matches!(&tokens[start - 1], TokenTree::Group(group) if group.delimiter() == Delimiter::Bracket)
        && matches!(&tokens[start - 2], TokenTree::Punct(punct) if punct.as_char() == '#')
    {
        start -= 2;
    }
    start
}

/// One top-level item, its body not parsed yet.
enum Item {
    Enum(ItemEnum),
    Fn {
        attrs: Vec<Attribute>,
        vis: Visibility,
        sig: Signature,
        body: Group,
    },
}

fn parse_item(input: ParseStream) -> syn::Result<Item> {
    let attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    if input.peek(Token![enum]) {
        let mut item: ItemEnum = input.parse()?;
        item.attrs = attrs;
        item.vis = vis;
        return Ok(Item::Enum(item));
    }
    if !input.peek(Token![fn])
        && !input.peek(Token![const])
        && !input.peek(Token![async])
        && !input.peek(Token![unsafe])
        && !input.peek(Token![extern])
    {
        return Err(input.error(EXPECTED_ITEM));
    }
    let sig: Signature = input.parse()?;
    if !input.peek(syn::token::Brace) {
        return Err(input.error("expected the body of the choreography: `{ roles ..; .. }`"));
    }
    let TokenTree::Group(body) = input.parse::<TokenTree>()? else {
        return Err(input.error("expected the body of the choreography: `{ roles ..; .. }`"));
    };
    Ok(Item::Fn {
        attrs,
        vis,
        sig,
        body,
    })
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
        let mut last = name.span();
        let size = if input.peek(syn::token::Bracket) {
            let content;
            let bracket = syn::bracketed!(content in input);
            last = bracket.span.close();
            Some(content.parse::<Expr>()?)
        } else {
            None
        };
        roles.push(RoleDecl { name, size });
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            return Ok(roles);
        }
        if !input.peek(Token![,]) {
            return Err(syn::Error::new(
                last,
                "expected `,` and more roles, or the `;` that ends the roles line, after this role",
            ));
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

/// The `;` that ends the statement begun at `start` whose last part is `last`, and its
/// span. Without it, the error covers the statement, not the next one's first token.
fn semicolon(input: ParseStream, start: Span, last: Span) -> syn::Result<Span> {
    if input.peek(Token![;]) {
        return Ok(input.parse::<Token![;]>()?.span);
    }
    Err(error_between(
        start,
        last,
        "expected `;` at the end of this statement",
    ))
}

/// `@ R, S` after an effect, if there.
fn parse_at(input: ParseStream) -> syn::Result<Option<Vec<RoleRef>>> {
    if !input.peek(Token![@]) {
        return Ok(None);
    }
    input.parse::<Token![@]>()?;
    let mut roles = vec![parse_role(input)?];
    while input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        roles.push(parse_role(input)?);
    }
    Ok(Some(roles))
}

/// The span of a role reference's last token.
fn role_last_span(role: &RoleRef) -> Span {
    match &role.index {
        Some(index) => last_span(index, role.name.span()),
        None => role.name.span(),
    }
}

/// The span of the last token of `tokens`, or `fallback` when there is none.
fn last_span(tokens: &impl ToTokens, fallback: Span) -> Span {
    tokens
        .to_token_stream()
        .into_iter()
        .last()
        .map_or(fallback, |tree| tree.span())
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
        // `ext finish h ..;`: the finish of an effect started as `h`.
        if input.peek(kw::finish) && input.peek2(Ident) {
            input.parse::<kw::finish>()?;
            let handle: Ident = input.parse()?;
            let at = parse_at(input)?;
            let last = match at.as_ref().and_then(|roles| roles.last()) {
                Some(role) => role_last_span(role),
                None => handle.span(),
            };
            let end = semicolon(input, start, last)?;
            return Ok(Stmt::Finish {
                span: start,
                end,
                handle,
                at,
            });
        }
        // `ext start effect .. as h;`: the start of an effect finished later.
        let starting = input.peek(kw::start) && input.peek2(Ident);
        if starting {
            input.parse::<kw::start>()?;
        }
        let mut effect: Expr = input.parse()?;
        let mut handle = None;
        // Without `@`, `effect as h` parses as a cast: take the handle back.
        if starting {
            if let Expr::Cast(cast) = &effect {
                if let syn::Type::Path(path) = &*cast.ty {
                    if let Some(ident) = path.path.get_ident() {
                        handle = Some(ident.clone());
                        effect = (*cast.expr).clone();
                    }
                }
            }
        }
        // `ext effect => SLOT`: the effect's output becomes the value of SLOT, which
        // messages carry on (`SLOT.carry()`); the effect's type provides `into_slot`.
        if input.peek(Token![=>]) {
            input.parse::<Token![=>]>()?;
            let mut slot: Expr = input.parse()?;
            if starting && handle.is_none() {
                if let Expr::Cast(cast) = &slot {
                    if let syn::Type::Path(path) = &*cast.ty {
                        if let Some(ident) = path.path.get_ident() {
                            handle = Some(ident.clone());
                            slot = (*cast.expr).clone();
                        }
                    }
                }
            }
            effect = syn::parse_quote_spanned!(start=> (#effect).into_slot(#slot));
        }
        let at = if input.peek(kw::at) {
            return Err(input.error(
                "expected `@` before the roles of an effect: `ext effect @ R, S;` (`at` is for `choice` and `timeout`)",
            ));
        } else {
            parse_at(input)?
        };
        if starting && handle.is_none() {
            if input.peek(Token![as]) {
                input.parse::<Token![as]>()?;
                handle = Some(input.parse()?);
            } else {
                return Err(input.error(
                    "expected `as` and a handle after a started effect: `ext start effect @ R as h;`, finished later by `ext finish h;`",
                ));
            }
        }
        let last = match (&handle, at.as_ref().and_then(|roles| roles.last())) {
            (Some(handle), _) => handle.span(),
            (None, Some(role)) => role_last_span(role),
            (None, None) => last_span(&effect, start),
        };
        let end = semicolon(input, start, last)?;
        return Ok(Stmt::Ext {
            span: start,
            end,
            effect,
            at,
            start: handle,
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
        semicolon(input, start, last_span(&program, start))?;
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
        let end = semicolon(input, start, last_span(&msg, start))?;
        return Ok(Stmt::Send {
            span: start,
            end,
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

/// An error covering the tokens from `start` to `end`: syn spans a compile error
/// from its first token to its last, so two stand-in tokens carry the two ends.
pub(crate) fn error_between(start: Span, end: Span, message: impl std::fmt::Display) -> syn::Error {
    let mut first = proc_macro2::Punct::new('<', proc_macro2::Spacing::Alone);
    first.set_span(start);
    let mut last = proc_macro2::Punct::new('>', proc_macro2::Spacing::Alone);
    last.set_span(end);
    let tokens: TokenStream = [
        proc_macro2::TokenTree::Punct(first),
        proc_macro2::TokenTree::Punct(last),
    ]
    .into_iter()
    .collect();
    syn::Error::new_spanned(tokens, message)
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
