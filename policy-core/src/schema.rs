//! The attribute schema: every attribute a policy may name, with its type and its
//! Japanese label.
//!
//! This table is the single source of truth that the type checker, the translators,
//! the back-translation and the reason sentences all read. Adding an attribute here
//! (and to [`crate::context::Request`]) is all it takes for the rest to know it.
//!
//! ```
//! use policy_core::schema::{Attribute, AttrType};
//! let a = Attribute::from_name("device.tpm.enabled").unwrap();
//! assert_eq!(a.ty(), AttrType::Bool);
//! assert_eq!(a.label_ja(), "TPM の有効化");
//! ```

use std::fmt;

/// The type of an attribute's value, which decides which conditions may apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// Free text compared exactly (`user.id`, `device.os.name`, ...).
    String,
    /// An e-mail address, compared case-insensitively.
    Email,
    /// A set of strings (`user.groups`, `device.apps`).
    StringSet,
    /// `true` or `false`.
    Bool,
    /// One of a closed list of names.
    Enum(&'static [&'static str]),
    /// Dotted numbers compared numerically (`10.0.9 < 10.0.22631`).
    Version,
    /// An IPv4 or IPv6 address.
    Ip,
    /// An ISO 3166-1 alpha-2 country code.
    Country,
    /// A DNS domain name (case-insensitive, trailing dot ignored, IDN as punycode).
    Domain,
    /// A whole number (ports).
    Integer,
    /// A real number (`risk.score`).
    Number,
    /// An instant in time (RFC 3339), read in the policy's time zone.
    Instant,
    /// A point on the earth (latitude, longitude in degrees).
    Point,
}

impl AttrType {
    /// The type's name as the type checker prints it in errors.
    pub fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Email => "email",
            AttrType::StringSet => "set of string",
            AttrType::Bool => "bool",
            AttrType::Enum(_) => "enum",
            AttrType::Version => "version",
            AttrType::Ip => "IP address",
            AttrType::Country => "country code",
            AttrType::Domain => "domain",
            AttrType::Integer => "integer",
            AttrType::Number => "number",
            AttrType::Instant => "time",
            AttrType::Point => "location",
        }
    }
}

/// The values of `auth.method`.
pub const AUTH_METHODS: &[&str] = &["password", "webauthn", "saml", "oidc"];
/// The values of `device.os.family`.
pub const OS_FAMILIES: &[&str] = &["windows", "macos", "linux", "ios", "android"];
/// The values of `device.disk.method`.
pub const DISK_METHODS: &[&str] = &["bitlocker", "filevault", "luks", "other"];

macro_rules! attributes {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $ty:expr, $label:literal; )*) => {
        /// An attribute of the request context (spec §2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Attribute {
            $( $(#[$doc])* $variant, )*
        }

        impl Attribute {
            /// Every attribute, in schema order.
            pub const ALL: &'static [Attribute] = &[ $( Attribute::$variant, )* ];

            /// The dotted name used in request JSON and in the canonical rule text.
            pub fn name(self) -> &'static str {
                match self { $( Attribute::$variant => $name, )* }
            }

            /// The attribute's value type.
            pub fn ty(self) -> AttrType {
                match self { $( Attribute::$variant => $ty, )* }
            }

            /// A short Japanese noun phrase naming the attribute, for reasons and
            /// back-translations (「アクセス元の国」).
            pub fn label_ja(self) -> &'static str {
                match self { $( Attribute::$variant => $label, )* }
            }
        }
    };
}

attributes! {
    /// `user.id`
    UserId => "user.id", AttrType::String, "ユーザ ID";
    /// `user.email`
    UserEmail => "user.email", AttrType::Email, "メールアドレス";
    /// `user.groups`
    UserGroups => "user.groups", AttrType::StringSet, "所属グループ";
    /// `auth.method`
    AuthMethod => "auth.method", AttrType::Enum(AUTH_METHODS), "認証方式";
    /// `auth.mfa`
    AuthMfa => "auth.mfa", AttrType::Bool, "多要素認証の利用";
    /// `device.id`
    DeviceId => "device.id", AttrType::String, "デバイス ID";
    /// `device.registered`
    DeviceRegistered => "device.registered", AttrType::Bool, "デバイスの登録";
    /// `device.os.family`
    DeviceOsFamily => "device.os.family", AttrType::Enum(OS_FAMILIES), "デバイスの OS の種類";
    /// `device.os.name`
    DeviceOsName => "device.os.name", AttrType::String, "デバイスの OS 名";
    /// `device.os.version`
    DeviceOsVersion => "device.os.version", AttrType::Version, "デバイスの OS のバージョン";
    /// `device.tpm.present`
    DeviceTpmPresent => "device.tpm.present", AttrType::Bool, "TPM の搭載";
    /// `device.tpm.enabled`
    DeviceTpmEnabled => "device.tpm.enabled", AttrType::Bool, "TPM の有効化";
    /// `device.tpm.version`
    DeviceTpmVersion => "device.tpm.version", AttrType::Version, "TPM のバージョン";
    /// `device.disk.encrypted`
    DeviceDiskEncrypted => "device.disk.encrypted", AttrType::Bool, "ディスクの暗号化";
    /// `device.disk.method`
    DeviceDiskMethod => "device.disk.method", AttrType::Enum(DISK_METHODS), "ディスクの暗号化方式";
    /// `device.windows_hello`
    DeviceWindowsHello => "device.windows_hello", AttrType::Bool, "Windows Hello への対応";
    /// `device.firewall`
    DeviceFirewall => "device.firewall", AttrType::Bool, "ファイアウォールの有効化";
    /// `device.antivirus`
    DeviceAntivirus => "device.antivirus", AttrType::Bool, "ウイルス対策ソフトの有効化";
    /// `device.screen_lock`
    DeviceScreenLock => "device.screen_lock", AttrType::Bool, "画面ロックの設定";
    /// `device.apps`
    DeviceApps => "device.apps", AttrType::StringSet, "インストール済みアプリケーション";
    /// `device.location`
    DeviceLocation => "device.location", AttrType::Point, "デバイスの位置";
    /// `device.network.ssid`
    DeviceNetworkSsid => "device.network.ssid", AttrType::String, "接続中の Wi-Fi の SSID";
    /// `device.network.ip`
    DeviceNetworkIp => "device.network.ip", AttrType::Ip, "デバイスの IP アドレス";
    /// `source.ip`
    SourceIp => "source.ip", AttrType::Ip, "アクセス元の IP アドレス";
    /// `source.country`
    SourceCountry => "source.country", AttrType::Country, "アクセス元の国";
    /// `destination.app`
    DestinationApp => "destination.app", AttrType::String, "アクセス先のアプリ";
    /// `destination.domain`
    DestinationDomain => "destination.domain", AttrType::Domain, "アクセス先のドメイン名";
    /// `destination.ip`
    DestinationIp => "destination.ip", AttrType::Ip, "アクセス先の IP アドレス";
    /// `destination.port`
    DestinationPort => "destination.port", AttrType::Integer, "アクセス先のポート番号";
    /// `time`
    Time => "time", AttrType::Instant, "アクセス日時";
    /// `risk.suspicious`
    RiskSuspicious => "risk.suspicious", AttrType::Bool, "不審なアクセスの判定";
    /// `risk.score`
    RiskScore => "risk.score", AttrType::Number, "リスクスコア";
}

impl Attribute {
    /// Finds an attribute by its dotted name.
    pub fn from_name(name: &str) -> Option<Attribute> {
        Attribute::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// For a boolean attribute, the Japanese predicate for `true` and for `false`
    /// (「TPM が有効である」/「TPM が有効でない」). `None` for other types.
    pub fn bool_phrases_ja(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Attribute::AuthMfa => ("多要素認証を利用している", "多要素認証を利用していない"),
            Attribute::DeviceRegistered => ("登録済みのデバイスである", "登録済みのデバイスでない"),
            Attribute::DeviceTpmPresent => ("TPM が搭載されている", "TPM が搭載されていない"),
            Attribute::DeviceTpmEnabled => ("TPM が有効である", "TPM が有効でない"),
            Attribute::DeviceDiskEncrypted => {
                ("ディスクが暗号化されている", "ディスクが暗号化されていない")
            }
            Attribute::DeviceWindowsHello => (
                "Windows Hello に対応している",
                "Windows Hello に対応していない",
            ),
            Attribute::DeviceFirewall => (
                "ファイアウォールが有効である",
                "ファイアウォールが有効でない",
            ),
            Attribute::DeviceAntivirus => (
                "ウイルス対策ソフトが有効である",
                "ウイルス対策ソフトが有効でない",
            ),
            Attribute::DeviceScreenLock => {
                ("画面ロックが設定されている", "画面ロックが設定されていない")
            }
            Attribute::RiskSuspicious => (
                "不審なアクセスと判定されている",
                "不審なアクセスと判定されていない",
            ),
            _ => return None,
        })
    }

    /// The Japanese word for one value of an enum attribute (`macos` → `macOS`).
    pub fn enum_label_ja(value: &str) -> &str {
        match value {
            "password" => "パスワード",
            "webauthn" => "WebAuthn",
            "saml" => "SAML",
            "oidc" => "OpenID Connect",
            "windows" => "Windows",
            "macos" => "macOS",
            "linux" => "Linux",
            "ios" => "iOS",
            "android" => "Android",
            "bitlocker" => "BitLocker",
            "filevault" => "FileVault",
            "luks" => "LUKS",
            "other" => "その他",
            other => other,
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for a in Attribute::ALL {
            assert_eq!(Attribute::from_name(a.name()), Some(*a));
        }
        assert_eq!(Attribute::from_name("device.tpm"), None);
    }

    #[test]
    fn every_bool_attribute_has_phrases() {
        for a in Attribute::ALL {
            assert_eq!(
                a.ty() == AttrType::Bool,
                a.bool_phrases_ja().is_some(),
                "{a}"
            );
        }
    }
}
