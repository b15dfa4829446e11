//! # pep-socks
//!
//! The RZTS SOCKS5 gateway: employees set it as the SOCKS5 proxy of their browser
//! or device, and every outbound connection is checked against the gateway app's
//! 必須条件 and 拒否条件 before it is made, then logged.
//!
//! ```no_run
//! # async fn run(clients: pep_socks::Clients) -> Result<(), pep_socks::GatewayError> {
//! use pep_socks::{Gateway, SocksConfig};
//! let gateway = Gateway::start(SocksConfig::default(), clients).await?;
//! println!("SOCKS5 on {} (PAC: http://{}/proxy.pac)", gateway.addr(), gateway.addr());
//! gateway.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! - RFC 1928 SOCKS5 (built on fast-socks5) with RFC 1929 username/password: the
//!   user id and the user's proxy token (`rzts user proxy-token ID`), checked by
//!   the decision server ([`pep_client::subject`]).
//! - Decisions are local, from the signed bundle ([`pep_client::policy`]); the
//!   request context has the user, groups, device (the user's device reporting
//!   the client's address), source address and country, destination domain (for
//!   hostname requests), address and port, and the time. A denial answers 0x02.
//! - Only CONNECT: BIND and UDP ASSOCIATE answer 0x07.
//! - Every decision is an access record shipped through [`pep_client::log`]; when
//!   the log cannot take it, the connection is refused.
//! - The PAC file is served on the same port (`/proxy.pac`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
mod gateway;
pub mod limits;
pub mod pac;
pub mod relay;
mod session;

pub use config::SocksConfig;
pub use gateway::{Clients, Gateway, GatewayError, RunningGateway};
pub use session::PEP;
