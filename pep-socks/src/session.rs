//! One client connection: SOCKS5 handshake with RFC 1929 credentials, the
//! decision before connecting, the access record, then the relay.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use fast_socks5::server::{
    AuthMethodSuccessState as _, PasswordAuthentication, Socks5ServerProtocol, SocksServerError,
};
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::{ReplyError, Socks5Command};
use pep_client::login::Subject;
use pep_client::policy::denial;
use pep_client::record::AccessRecord;
use pep_client::subject::LoginError;
use policy_core::context::Request;
use policy_core::decision::{Decision, Effect};
use policy_core::lock::CompiledPolicy;
use policy_core::policy::Mode;
use policy_core::value::Domain;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::gateway::Shared;
use crate::relay::{relay, RelayEnd};

/// The enforcement point's name in access records.
pub const PEP: &str = "socks";

type Commanded = Socks5ServerProtocol<TcpStream, fast_socks5::server::states::CommandRead>;

/// Why a session ended before relaying.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("handshake: {0}")]
    Protocol(#[from] SocksServerError),
    #[error("login refused for {user:?}: {why}")]
    Login { user: String, why: LoginError },
}

/// Runs the SOCKS5 part of a connection whose first byte was 5.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    // Everything up to the request must finish in time: a slow or silent client
    // (slowloris) is cut off, never holds a task forever.
    let handshake = tokio::time::timeout(
        shared.config.handshake_timeout(),
        handshake(&shared, stream, peer),
    );
    let (proto, cmd, target, subject, user) = tokio::select! {
        r = handshake => match r {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "SOCKS session ended");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "SOCKS handshake timed out");
                return;
            }
        },
        _ = shutdown.changed() => return,
    };
    if cmd != Socks5Command::TCPConnect {
        // BIND and UDP ASSOCIATE are not implemented: refuse, and say so in the log.
        let name = match cmd {
            Socks5Command::TCPBind => "BIND",
            _ => "UDP ASSOCIATE",
        };
        let d = denial(
            "socks.command_not_supported",
            format!("SOCKS の {name} には対応していないため拒否"),
        );
        let req = access_request(&subject, &user, peer);
        let _ = record(&shared, &req, &target_text(&target), &d);
        let _ = proto.reply_error(&ReplyError::CommandNotSupported).await;
        return;
    }
    connect(shared, proto, target, subject, user, peer, shutdown).await;
}

/// Method negotiation (username/password only), the credential check and the
/// request.
async fn handshake(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
) -> Result<(Commanded, Socks5Command, TargetAddr, Subject, String), SessionError> {
    let (user, secret, auth) = Socks5ServerProtocol::start(stream)
        .negotiate_auth(&[PasswordAuthentication])
        .await?
        .read_username_password()
        .await?;
    let subject = match shared
        .clients
        .subjects
        .login(&user, &secret, Some(peer.ip()))
        .await
    {
        Ok(s) => s,
        Err(why) => {
            let (code, message) = match &why {
                LoginError::Rejected => (
                    "socks.login_failed",
                    "ユーザー名またはプロキシトークンが正しくないため拒否".to_string(),
                ),
                LoginError::Disabled => (
                    "user.disabled",
                    "ユーザーが無効化されているため拒否".to_string(),
                ),
                LoginError::Unavailable(_) => (
                    "pep.pdp_unavailable",
                    "認証情報を確認できないため拒否".to_string(),
                ),
            };
            let req = access_request(&Subject::default(), &user, peer);
            let _ = record(shared, &req, "(login)", &denial(code, message));
            auth.reject().await?;
            return Err(SessionError::Login { user, why });
        }
    };
    let proto = auth.accept().await?.finish_auth();
    let (proto, cmd, target) = proto.read_command().await?;
    Ok((proto, cmd, target, subject, user))
}

/// Decides, records, and for an allowed request connects and relays.
async fn connect(
    shared: Arc<Shared>,
    proto: Commanded,
    target: TargetAddr,
    subject: Subject,
    user: String,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let target_name = target_text(&target);
    let (domain, port, resolved) = match &target {
        TargetAddr::Ip(addr) => (None, addr.port(), Some(*addr)),
        TargetAddr::Domain(name, port) => {
            // Resolved before deciding, so rules on destination.ip see the address
            // that will be used, and only that address is connected (no second
            // lookup that could answer differently).
            let lookup = tokio::time::timeout(
                shared.config.connect_timeout(),
                tokio::net::lookup_host((name.as_str(), *port)),
            )
            .await;
            let addr = match lookup {
                Ok(Ok(mut addrs)) => addrs.next(),
                _ => None,
            };
            (Some(name.clone()), *port, addr)
        }
    };

    let mut req = access_request(&subject, &user, peer);
    req.destination.port = Some(port);
    req.destination.ip = resolved.map(|a| a.ip());
    let mut decision = match domain.map(|d| d.parse::<Domain>().map_err(|_| d)) {
        Some(Err(name)) => denial(
            "socks.invalid_domain",
            format!("宛先「{name}」はドメイン名として正しくないため拒否"),
        ),
        parsed => {
            req.destination.domain = parsed.and_then(Result::ok);
            shared.decide(&mut req)
        }
    };
    // The per-user limit is checked only for what the policy allows.
    let slot = match decision.effect {
        Effect::Allow => match shared.limits.acquire(&user) {
            Some(slot) => Some(slot),
            None => {
                decision = denial(
                    "socks.too_many_connections",
                    format!(
                        "同時接続数の上限（{}）に達したため拒否",
                        shared.config.max_connections_per_user
                    ),
                );
                None
            }
        },
        Effect::Deny => None,
    };
    if let Err(e) = record(&shared, &req, &target_name, &decision) {
        // No access without its record.
        tracing::error!(error = %e, "access refused: the access log cannot take it");
        let _ = proto.reply_error(&ReplyError::GeneralFailure).await;
        return;
    }
    if decision.effect == Effect::Deny {
        tracing::info!(%user, target = %target_name, reasons = ?codes(&decision), "SOCKS connection denied");
        let _ = proto.reply_error(&ReplyError::ConnectionNotAllowed).await;
        return;
    }
    let Some(addr) = resolved else {
        let _ = proto.reply_error(&ReplyError::HostUnreachable).await;
        return;
    };
    let upstream =
        match tokio::time::timeout(shared.config.connect_timeout(), TcpStream::connect(addr)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let reply = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => ReplyError::ConnectionRefused,
                    _ => ReplyError::HostUnreachable,
                };
                let _ = proto.reply_error(&reply).await;
                return;
            }
            Err(_) => {
                let _ = proto.reply_error(&ReplyError::TtlExpired).await;
                return;
            }
        };
    let _ = upstream.set_nodelay(true);
    let bound = upstream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let Ok(client) = proto.reply_success(bound).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let end = tokio::select! {
        end = relay(client, upstream, shared.config.idle_timeout()) => end,
        _ = shutdown.changed() => RelayEnd::Error,
    };
    drop(slot);
    tracing::debug!(%user, target = %target_name, ?end, "SOCKS relay ended");
}

fn codes(d: &Decision) -> Vec<&str> {
    d.reasons.iter().map(|r| r.code.as_ref()).collect()
}

fn target_text(t: &TargetAddr) -> String {
    match t {
        TargetAddr::Ip(a) => a.to_string(),
        TargetAddr::Domain(d, p) => format!("{d}:{p}"),
    }
}

/// The context of one access by `subject` (logged in as `user`) from `peer`: what
/// is decided and what is recorded.
fn access_request(subject: &Subject, user: &str, peer: SocketAddr) -> Request {
    let mut req = subject.request();
    req.user.id.get_or_insert_with(|| user.to_string());
    req.source.ip.get_or_insert(peer.ip());
    req
}

/// Queues the access record of `req`; an error means the access must be refused.
fn record(
    shared: &Shared,
    req: &Request,
    target: &str,
    decision: &Decision,
) -> Result<(), pep_client::log::LogError> {
    shared.clients.log.record(AccessRecord::new(
        PEP,
        target.to_string(),
        req,
        decision,
        Utc::now(),
    ))
}

/// The app governing the gateway in `rules`: the configured one, else the only
/// app with `mode = "socks"`.
pub(crate) fn gateway_app<'a>(
    configured: Option<&'a str>,
    rules: &'a CompiledPolicy,
) -> Result<&'a str, Decision> {
    if let Some(app) = configured {
        return Ok(app);
    }
    let mut socks = rules
        .apps
        .iter()
        .filter(|(_, (mode, _))| *mode == Mode::Socks)
        .map(|(name, _)| name.as_str());
    match (socks.next(), socks.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(denial(
            "socks.no_app",
            "ポリシーに mode = \"socks\" のアプリがないため拒否".to_string(),
        )),
        (Some(_), Some(_)) => Err(denial(
            "socks.ambiguous_app",
            "mode = \"socks\" のアプリが複数あり、どれを使うか設定されていないため拒否".to_string(),
        )),
    }
}
