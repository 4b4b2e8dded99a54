//! The `choreography!` expansion after mistakes: one error per mistake, and the role
//! enum and every choreography's signature still generated, so that the code using
//! them adds no errors of its own. (`macros/tests/ui/dsl_fail_*.rs` shows the same
//! through the compiler, with spans.)
#![allow(missing_docs)]

use std::str::FromStr;

use proc_macro2::{TokenStream, TokenTree};

/// The expansion of `source`, as text.
fn expand(source: &str) -> String {
    let tokens = TokenStream::from_str(source).expect("the test source tokenizes");
    let krate = TokenStream::from_str("::stormchor_choreography").expect("a path");
    stormchor_macros_core::choreography(tokens, &krate).to_string()
}

/// The messages of the `compile_error!`s in an expansion.
fn errors(expansion: &str) -> Vec<String> {
    let tokens = TokenStream::from_str(expansion).expect("the expansion tokenizes");
    let mut messages = Vec::new();
    collect_errors(tokens, &mut messages);
    messages
}

fn collect_errors(tokens: TokenStream, messages: &mut Vec<String>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) if ident == "compile_error" => {
                let Some(TokenTree::Group(arguments)) = trees.get(i + 2) else {
                    panic!("compile_error without arguments");
                };
                let message: syn::LitStr =
                    syn::parse2(arguments.stream()).expect("a compile_error holds a string");
                messages.push(message.value());
            }
            TokenTree::Group(group) => collect_errors(group.stream(), messages),
            _ => {}
        }
    }
}

const ENUM: &str = "pub enum Role { Coordinator, Backup, Worker(u16) }";

const FIRST: &str = "pub fn first(n: u16) -> Program<Role, Msg> {
    roles Coordinator, Worker[n];
    Coordinator -> Worker: Msg::Start;
}";

/// Whether the expansion holds the real function `name` (not a stub).
fn generated(expansion: &str, name: &str) -> bool {
    let Some(at) = expansion.find(&format!("fn {name} (")) else {
        return false;
    };
    let rest = &expansion[at..];
    let body = &rest[..rest.find("pub fn").unwrap_or(rest.len())];
    body.contains("__stormchor_program") && !body.contains("rejected this choreography")
}

/// Whether the expansion holds a stub with the signature of `name`.
fn stubbed(expansion: &str, name: &str) -> bool {
    let Some(at) = expansion.find(&format!("fn {name} (")) else {
        return false;
    };
    let rest = &expansion[at..];
    let body = &rest[..rest.find("pub fn").unwrap_or(rest.len())];
    body.contains("rejected this choreography")
}

#[test]
fn a_correct_invocation_has_no_error() {
    let out = expand(&format!("{ENUM} {FIRST}"));
    assert_eq!(errors(&out), Vec::<String>::new());
    assert!(out.contains("pub enum Role"));
    assert!(generated(&out, "first"));
}

#[test]
fn a_syntax_error_in_the_second_choreography_costs_only_its_body() {
    let out = expand(&format!(
        "{ENUM} {FIRST}
        pub fn second(n: u16) -> Program<Role, Msg> {{
            roles Coordinator, Backup;
            Coordinator -> Backup Msg::Start;
        }}"
    ));
    assert_eq!(errors(&out), ["expected `:`"]);
    assert!(out.contains("pub enum Role"));
    assert!(generated(&out, "first"));
    assert!(stubbed(&out, "second"));
}

#[test]
fn a_syntax_error_in_the_first_choreography_leaves_the_second_whole() {
    let out = expand(&format!(
        "{ENUM}
        pub fn zeroth(n: u16) -> Program<Role, Msg> {{
            roles Coordinator, Backup;
            Coordinator => Backup: Msg::Start;
        }}
        {FIRST}"
    ));
    assert_eq!(errors(&out), ["expected `->`"]);
    assert!(stubbed(&out, "zeroth"));
    assert!(generated(&out, "first"));
}

#[test]
fn at_for_the_roles_of_an_effect_says_to_write_the_at_sign() {
    let out = expand(&format!(
        "{ENUM}
        pub fn effects(n: u16) -> Program<Role, Msg> {{
            roles Coordinator, Worker[n];
            ext Vacuum at Worker;
        }}"
    ));
    let errors = errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("expected `@` before the roles of an effect"));
    assert!(out.contains("pub enum Role"));
    assert!(stubbed(&out, "effects"));
}

#[test]
fn a_missing_semicolon_is_one_error() {
    for body in [
        "Coordinator -> Worker: Msg::Start Worker -> Coordinator: Msg::Stop;",
        "Coordinator -> Worker: Msg::Start",
        "ext Vacuum @ Worker",
        "call first(n)",
    ] {
        let out = expand(&format!(
            "{ENUM}
            pub fn broken(n: u16) -> Program<Role, Msg> {{
                roles Coordinator, Worker[n];
                {body}
            }}
            {FIRST}"
        ));
        assert_eq!(
            errors(&out),
            ["expected `;` at the end of this statement"],
            "{body}"
        );
        assert!(stubbed(&out, "broken"), "{body}");
        assert!(generated(&out, "first"), "{body}");
    }
}

#[test]
fn a_roles_line_without_its_semicolon_is_one_error() {
    for roles in ["Coordinator, Worker[n]", "Coordinator Worker[n];"] {
        let out = expand(&format!(
            "{ENUM}
            pub fn broken(n: u16) -> Program<Role, Msg> {{
                roles {roles}
                Coordinator -> Worker: Msg::Start;
            }}"
        ));
        let found = errors(&out);
        assert_eq!(found.len(), 1, "{roles}: {found:?}");
        assert!(
            found[0].starts_with("expected `,` and more roles, or the `;`"),
            "{roles}: {found:?}"
        );
        assert!(stubbed(&out, "broken"), "{roles}");
    }
}

#[test]
fn tokens_that_are_no_item_are_one_error_and_the_items_around_them_stay() {
    for garbage in [";", "roles Coordinator;", "struct S;", "#[test]"] {
        let out = expand(&format!(
            "{ENUM} {garbage} {FIRST} {garbage}
            pub fn second(n: u16) -> Program<Role, Msg> {{
                roles Coordinator, Worker[n];
                Worker -> Coordinator: Msg::Stop;
            }}"
        ));
        let errors = errors(&out);
        // `#[test]` sticks to the item after it: then it is no error at all.
        let expected = if garbage.starts_with('#') { 0 } else { 2 };
        assert_eq!(errors.len(), expected, "{garbage}: {errors:?}");
        assert!(
            errors
                .iter()
                .all(|e| e.starts_with("expected `fn name(..)")),
            "{garbage}: {errors:?}"
        );
        assert!(out.contains("pub enum Role"), "{garbage}");
        assert!(generated(&out, "first"), "{garbage}");
        assert!(generated(&out, "second"), "{garbage}");
    }
}

#[test]
fn trailing_tokens_are_one_error() {
    for trailing in ["pub fn", "Coordinator -> Worker: Msg::Start;"] {
        let out = expand(&format!("{ENUM} {FIRST} {trailing}"));
        let found = errors(&out);
        assert_eq!(found.len(), 1, "{trailing}: {found:?}");
        assert!(generated(&out, "first"), "{trailing}");
    }
}

#[test]
fn a_broken_signature_costs_only_its_choreography() {
    let out = expand(&format!(
        "{ENUM}
        pub fn broken(n) -> Program<Role, Msg> {{
            roles Coordinator;
        }}
        {FIRST}"
    ));
    assert_eq!(errors(&out), ["expected `:`"]);
    assert!(!out.contains("fn broken"));
    assert!(generated(&out, "first"));
}

#[test]
fn a_wrong_return_type_still_leaves_its_signature() {
    let out = expand(&format!(
        "{ENUM}
        pub fn listed(n: u16) -> Vec<Role> {{
            roles Coordinator;
        }}
        {FIRST}"
    ));
    let found = errors(&out);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("a choreography returns `Program<Role, Msg>`"));
    assert!(stubbed(&out, "listed"));
    assert!(generated(&out, "first"));
}

#[test]
fn a_broken_enum_costs_only_the_enum() {
    let out = expand(&format!("pub enum Role {{ Coordinator = }} {FIRST}"));
    assert_eq!(errors(&out).len(), 1, "{out}");
    assert!(!out.contains("enum Role"));
    assert!(out.contains("fn first"));
}

#[test]
fn a_second_role_enum_is_one_error() {
    let out = expand(&format!("{ENUM} pub enum Other {{ A }} {FIRST}"));
    assert_eq!(errors(&out), ["one role enum per choreography! invocation"]);
    assert!(out.contains("pub enum Role"));
    assert!(!out.contains("enum Other"));
    assert!(generated(&out, "first"));
}

#[test]
fn qualifiers_and_attributes_belong_to_their_item() {
    let out = expand(&format!(
        "{ENUM}
        /// Documented.
        #[allow(dead_code)]
        pub(crate) const fn second(n: u16) -> Program<Role, Msg> {{
            roles Coordinator, Worker[n];
            Worker -> Coordinator: Msg::Stop;
        }}
        {FIRST}"
    ));
    assert_eq!(errors(&out), Vec::<String>::new());
    assert!(out.contains("# [allow (dead_code)] # [allow (non_snake_case"));
    assert!(out.contains("pub (crate) const fn second"));
    assert!(generated(&out, "first"));
}

#[test]
fn check_errors_are_the_algebras_messages() {
    let out = expand(&format!(
        "{ENUM}
        pub fn self_send(n: u16) -> Program<Role, Msg> {{
            roles Coordinator, Backup;
            Backup -> Backup: Msg::Stop;
        }}
        pub fn labels(n: u16) -> Program<Role, Msg> {{
            roles Coordinator, Backup;
            choice at Coordinator {{
                go => {{ Coordinator -> Backup: Msg::Start; }}
                go => {{ Coordinator -> Backup: Msg::Stop; }}
            }}
        }}"
    ));
    assert_eq!(
        errors(&out),
        [
            "Backup sends a message to itself",
            "the choice at Coordinator has two branches labelled \"go\"",
        ]
    );
    assert!(stubbed(&out, "self_send"));
    assert!(stubbed(&out, "labels"));
}
