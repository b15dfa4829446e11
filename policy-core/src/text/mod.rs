//! The canonical text form of a rule: what the lock file stores and what an
//! administrator reads in a diff.
//!
//! [`print`](mod@print) writes it (also reachable as `Rule`'s `Display`), [`parse`] reads it
//! back; `parse(print(rule)) == rule` for every rule the type checker accepts.
//!
//! ```text
//! source.country == "JP" and device.tpm.enabled == true
//! destination.domain in_zone "deepseek.com"
//! destination.domain subdomain_of "example.net"
//! source.ip in_cidr ["203.0.113.0/24"]
//! device.os.family == "macos" -> device.disk.encrypted == true and device.disk.method == "filevault"
//! time of_day [09:00, 18:00) and time weekday [mon, tue, wed, thu, fri]
//! device.location within 5 km of (35.681, 139.767)
//! not (user.groups contains "管理者")
//! ```
//!
//! Grammar (precedence from loosest to tightest: `->`, `or`, `and`, `not`):
//!
//! ```text
//! rule      := or_expr ( "->" or_expr )?
//! or_expr   := and_expr ( "or" and_expr )*
//! and_expr  := unary ( "and" unary )*
//! unary     := "not" unary | "(" rule ")" | condition
//! condition := ATTRIBUTE "==" literal
//!            | ATTRIBUTE "in" "[" literal ( "," literal )* "]"
//!            | ATTRIBUTE "contains" STRING
//!            | ATTRIBUTE ( "<" | "<=" | ">" | ">=" ) literal
//!            | ATTRIBUTE "in_cidr" "[" STRING ( "," STRING )* "]"
//!            | ATTRIBUTE ( "in_zone" | "subdomain_of" | "email_domain" ) STRING
//!            | ATTRIBUTE "within" NUMBER "km" "of" "(" NUMBER "," NUMBER ")"
//!            | ATTRIBUTE "of_day" "[" HH:MM "," HH:MM ")"
//!            | ATTRIBUTE "weekday" "[" DAY ( "," DAY )* "]"
//! literal   := STRING | NUMBER | "true" | "false"
//! ```
//!
//! A literal's meaning comes from its attribute's type: `"JP"` is a country code for
//! `source.country`, `"10.0.22631"` a version for `device.os.version`.

pub mod parse;
pub mod print;

pub use parse::{parse_rule, ParseError};
pub use print::print_rule;
