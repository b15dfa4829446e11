//! Alert e-mail for suspicious accesses (SMTP, lettre).
//!
//! One message per suspicious access: `To:` the user, `Bcc:` the administrators
//! (so the user's mailbox, which may be the compromised thing, does not learn the
//! administrators' addresses; the body says they were told). Subject
//! 「【RZTS】不審なアクセスを検知しました」, a UTF-8 plain-text body with what was
//! seen (time in Japan time, target, source IP, country in Japanese, device,
//! decision) and why it looked suspicious (each finding's explanation), and the
//! decision ID for the helpdesk, also in the `X-RZTS-Decision-Id` header.
//!
//! The connection is plain SMTP by default (a local relay); `starttls = true`
//! upgrades with STARTTLS (required, typically port 587) and `tls = true` speaks
//! TLS from the start (typically port 465); certificates are checked against the
//! bundled Web PKI roots.

use std::time::Duration;

use chrono::FixedOffset;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use crate::detector::{country_name, Assessment};
use crate::model::AccessRecord;

/// The alert mail's subject.
pub const SUBJECT: &str = "【RZTS】不審なアクセスを検知しました";

/// SMTP settings (the `[smtp]` table of the server's TOML config).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name or address.
    pub host: String,
    /// Relay port (default 25).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Sender address, optionally with a name: `RZTS <rzts@example.co.jp>`.
    pub from: String,
    /// Administrators who get every alert (Bcc).
    #[serde(default)]
    pub admins: Vec<String>,
    /// Upgrade the connection with STARTTLS (required once asked for).
    #[serde(default)]
    pub starttls: bool,
    /// Speak TLS from the start (SMTPS, usually port 465).
    #[serde(default)]
    pub tls: bool,
    /// Login name, when the relay wants authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// The whole delivery (connect, conversation, data) must finish within this
    /// many seconds (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_port() -> u16 {
    25
}

fn default_timeout() -> u64 {
    30
}

impl SmtpConfig {
    /// Plain SMTP to `host:port` with no authentication.
    pub fn new(host: impl Into<String>, port: u16, from: impl Into<String>) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port,
            from: from.into(),
            admins: Vec::new(),
            starttls: false,
            tls: false,
            username: None,
            password: None,
            timeout_secs: default_timeout(),
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("admins", &self.admins)
            .field("starttls", &self.starttls)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// Why an alert could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// An address (sender, user or administrator) is not a valid mailbox.
    #[error("メールアドレス「{address}」が不正です: {source}")]
    Address {
        /// The address as configured.
        address: String,
        /// Why.
        source: lettre::address::AddressError,
    },
    /// Nobody to send to: no user address and no administrators.
    #[error(
        "通知先のメールアドレスがありません（利用者のアドレスも管理者のアドレスもありません）"
    )]
    NoRecipients,
    /// `username` without `password` or the other way round, or both TLS modes.
    #[error("SMTP の設定が不正です: {0}")]
    Config(String),
    /// The message could not be built.
    #[error("通知メールを作成できません: {0}")]
    Message(#[from] lettre::error::Error),
    /// The relay did not finish within `timeout_secs`.
    #[error("SMTP サーバー {host}:{port} への送信が {secs} 秒以内に終わりませんでした")]
    Timeout {
        /// Relay host.
        host: String,
        /// Relay port.
        port: u16,
        /// The configured limit.
        secs: u64,
    },
    /// The relay refused or could not be reached.
    #[error("SMTP サーバー {host}:{port} へ送信できません: {source}")]
    Smtp {
        /// Relay host.
        host: String,
        /// Relay port.
        port: u16,
        /// Why.
        source: lettre::transport::smtp::Error,
    },
}

/// `X-RZTS-Decision-Id`: lets a helpdesk or a mail filter find the decision.
#[derive(Debug, Clone)]
struct DecisionIdHeader(String);

impl Header for DecisionIdHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-RZTS-Decision-Id")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(DecisionIdHeader(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

fn mailbox(address: &str) -> Result<Mailbox, AlertError> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|source| AlertError::Address {
            address: address.to_string(),
            source,
        })
}

/// The alert's plain-text body.
pub fn alert_body(record: &AccessRecord, assessment: &Assessment) -> String {
    let jst = FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset");
    let time = record
        .time
        .with_timezone(&jst)
        .format("%Y年%-m月%-d日 %H:%M:%S（日本時間）");
    let unknown = || "不明".to_string();
    let user = record.user.clone().unwrap_or_else(unknown);
    let country = record.country.as_deref().map_or_else(unknown, |c| {
        format!("{}（{}）", country_name(c), c.to_ascii_uppercase())
    });
    let decision = match record.decision {
        policy_core::decision::Effect::Allow => "許可",
        policy_core::decision::Effect::Deny => "拒否（このアクセスは遮断されました）",
    };
    let mut b = String::new();
    b.push_str(&format!("{user} さん\n\n"));
    b.push_str(
        "RZTS（アクセス制御システム）が、あなたのアカウントによる不審なアクセスを検知しました。\n\n",
    );
    b.push_str("■ 検知したアクセス\n");
    b.push_str(&format!("  日時　　　: {time}\n"));
    b.push_str(&format!("  アクセス先: {}\n", record.target));
    b.push_str(&format!("  利用者　　: {user}\n"));
    b.push_str(&format!(
        "  送信元IP　: {}\n",
        record.source_ip.clone().unwrap_or_else(unknown)
    ));
    b.push_str(&format!("  国・地域　: {country}\n"));
    b.push_str(&format!(
        "  端末　　　: {}\n",
        record.device.clone().unwrap_or_else(unknown)
    ));
    b.push_str(&format!("  判定　　　: {decision}\n"));
    b.push_str(&format!("  判定ID　　: {}\n\n", record.decision_id));
    b.push_str(&format!(
        "■ 不審と判断した理由（リスクスコア {:.2}）\n",
        assessment.score
    ));
    if assessment.findings.is_empty() {
        b.push_str("  ・（個別の理由はありません）\n");
    }
    for f in &assessment.findings {
        b.push_str(&format!("  ・{}\n", f.message_ja));
    }
    b.push_str("\n■ お願い\n");
    b.push_str("  心当たりがある場合（出張先や新しい端末からのアクセスなど）は、このメールを無視してかまいません。\n");
    b.push_str(
        "  心当たりがない場合は、すぐにパスワードを変更し、ヘルプデスクに連絡してください。\n",
    );
    b.push_str(&format!(
        "  その際、判定ID「{}」をお伝えください。\n\n",
        record.decision_id
    ));
    b.push_str("このメールは管理者にも送信されています。\n");
    b.push_str("このメールは RZTS から自動送信されています。返信はできません。\n");
    b
}

/// Builds the alert message (without sending it).
pub fn build_alert(
    cfg: &SmtpConfig,
    to_user: &str,
    record: &AccessRecord,
    assessment: &Assessment,
) -> Result<Message, AlertError> {
    let from = mailbox(&cfg.from)?;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(SUBJECT)
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .header(DecisionIdHeader(record.decision_id.clone()));
    let mut recipients: Vec<String> = Vec::new();
    if !to_user.trim().is_empty() {
        let user = mailbox(to_user)?;
        recipients.push(user.email.to_string().to_ascii_lowercase());
        builder = builder.to(user);
    }
    for admin in cfg.admins.iter().filter(|a| !a.trim().is_empty()) {
        let admin = mailbox(admin)?;
        let key = admin.email.to_string().to_ascii_lowercase();
        if recipients.contains(&key) {
            continue;
        }
        recipients.push(key);
        builder = builder.bcc(admin);
    }
    if recipients.is_empty() {
        return Err(AlertError::NoRecipients);
    }
    let id: String = record
        .decision_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    builder = builder.message_id(Some(format!("<rzts-alert.{id}@{}>", from.email.domain())));
    Ok(builder.body(alert_body(record, assessment))?)
}

/// Sends the alert for one suspicious access to the user (`To:`) and the
/// administrators (`Bcc:`). `to_user` may be empty when the user has no address;
/// then only the administrators get it.
pub async fn send_alert(
    cfg: &SmtpConfig,
    to_user: &str,
    record: &AccessRecord,
    assessment: &Assessment,
) -> Result<(), AlertError> {
    let message = build_alert(cfg, to_user, record, assessment)?;
    let transport = transport(cfg)?;
    // lettre bounds only the connect; this bounds the whole conversation, so a
    // relay that stops answering cannot hold an alert task forever.
    let secs = cfg.timeout_secs.max(1);
    match tokio::time::timeout(Duration::from_secs(secs), transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(AlertError::Smtp {
            host: cfg.host.clone(),
            port: cfg.port,
            source,
        }),
        Err(_) => Err(AlertError::Timeout {
            host: cfg.host.clone(),
            port: cfg.port,
            secs,
        }),
    }
}

fn transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, AlertError> {
    let smtp_err = |source| AlertError::Smtp {
        host: cfg.host.clone(),
        port: cfg.port,
        source,
    };
    let builder = match (cfg.tls, cfg.starttls) {
        (true, true) => {
            return Err(AlertError::Config(
                "tls と starttls は同時に指定できません".into(),
            ))
        }
        (true, false) => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(smtp_err)?
        }
        (false, true) => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(smtp_err)?
        }
        (false, false) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
    };
    let mut builder = builder
        .port(cfg.port)
        .timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))));
    match (&cfg.username, &cfg.password) {
        (Some(u), Some(p)) => builder = builder.credentials(Credentials::new(u.clone(), p.clone())),
        (None, None) => {}
        _ => {
            return Err(AlertError::Config(
                "username と password は両方指定してください".into(),
            ))
        }
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::Finding;
    use chrono::TimeZone;

    fn record() -> AccessRecord {
        AccessRecord {
            decision_id: "01JDECISION".into(),
            time: chrono::Utc
                .with_ymd_and_hms(2026, 11, 24, 1, 15, 0)
                .unwrap(),
            pep: "saml".into(),
            target: "github".into(),
            user: Some("tanaka".into()),
            device: Some("PC-0042".into()),
            decision: policy_core::decision::Effect::Deny,
            reasons: vec![policy_core::decision::Reason::new(
                "deny.matched",
                "拒否条件に該当",
            )],
            auth_method: Some("password".into()),
            source_ip: Some("203.0.113.7".into()),
            country: Some("US".into()),
            anomalies: vec!["new_country".into()],
        }
    }

    fn assessment() -> Assessment {
        Assessment {
            findings: vec![Finding {
                code: "new_country",
                message_ja: "これまでアクセスのなかった国（アメリカ合衆国）からのアクセスです"
                    .into(),
            }],
            score: 0.4,
            suspicious: true,
        }
    }

    #[test]
    fn body_has_everything() {
        let b = alert_body(&record(), &assessment());
        for want in [
            "2026年11月24日 10:15:00（日本時間）",
            "github",
            "203.0.113.7",
            "アメリカ合衆国（US）",
            "PC-0042",
            "01JDECISION",
            "これまでアクセスのなかった国",
            "拒否",
        ] {
            assert!(b.contains(want), "{want} missing from\n{b}");
        }
    }

    #[test]
    fn recipients_and_errors() {
        let mut cfg = SmtpConfig::new("127.0.0.1", 25, "RZTS <rzts@example.co.jp>");
        cfg.admins = vec!["sec@example.co.jp".into(), "Tanaka@example.co.jp".into()];
        let m = build_alert(&cfg, "tanaka@example.co.jp", &record(), &assessment()).unwrap();
        let to: Vec<String> = m.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(to, ["tanaka@example.co.jp", "sec@example.co.jp"]);
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            !raw.contains("sec@example.co.jp"),
            "Bcc must not show:\n{raw}"
        );
        assert!(raw.contains("X-RZTS-Decision-Id: 01JDECISION"), "{raw}");

        let e = build_alert(&cfg, "not an address", &record(), &assessment()).unwrap_err();
        assert!(e.to_string().contains("not an address"), "{e}");
        cfg.admins.clear();
        let e = build_alert(&cfg, "", &record(), &assessment()).unwrap_err();
        assert!(matches!(e, AlertError::NoRecipients));
        cfg.username = Some("u".into());
        assert!(matches!(transport(&cfg), Err(AlertError::Config(_))));
    }

    #[test]
    fn password_is_not_debug_printed() {
        let mut cfg = SmtpConfig::new("h", 25, "a@b.c");
        cfg.username = Some("u".into());
        cfg.password = Some("s3cret".into());
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn config_from_toml() {
        let cfg: SmtpConfig = toml::from_str(
            r#"host = "mail.example.co.jp"
from = "rzts@example.co.jp"
admins = ["sec@example.co.jp"]"#,
        )
        .unwrap();
        assert_eq!(cfg.port, 25);
        assert_eq!(cfg.timeout_secs, 30);
        assert!(!cfg.starttls && !cfg.tls);
        assert!(toml::from_str::<SmtpConfig>("host = \"h\"\nfrom = \"a@b.c\"\nprot = 1").is_err());
    }
}
