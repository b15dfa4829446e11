//! The lexer: folded Japanese text to tokens, by longest match against a lexicon.
//!
//! Japanese has no spaces, so the lexer tries, at each position, every lexicon
//! entry, every country name and ASCII words, and takes the longest. What matches
//! nothing becomes an [`Tok::Unknown`] run; the grammar accepts unknown runs only
//! where a free name is expected (a group name before 「グループ」, an app before
//! 「インストール」) and refuses them everywhere else.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use crate::country;
use crate::value::{CountryCode, WeekdaySet};

/// What a word says about an attribute (the grammar's subjects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Subj {
    Country,
    SourceIp,
    DestIp,
    DeviceIp,
    /// 「IPアドレス」 with no side given: the access source.
    Ip,
    DestDomain,
    DestPort,
    DestApp,
    Tpm,
    Disk,
    Firewall,
    Antivirus,
    ScreenLock,
    WindowsHello,
    Mfa,
    AuthMethod,
    Os,
    OsVersion,
    OsName,
    TpmVersion,
    Group,
    UserId,
    Email,
    EmailDomain,
    Ssid,
    RiskScore,
    Suspicious,
    Location,
    App,
}

/// Predicates (what is said of the subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Pred {
    Enabled,
    Disabled,
    Equipped,
    Exists,
    Encrypted,
    Belong,
    Use,
    Support,
    Set,
    Install,
    Registered,
    Judged,
    Connect,
    EndsWith,
}

/// Comparison words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CmpWord {
    /// 以上
    Ge,
    /// 以下
    Le,
    /// 未満
    Lt,
    /// 超 / より大きい / を超える
    Gt,
    /// 以内 (distances, ranges)
    Within,
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Subj(Subj),
    Pred(Pred),
    /// ない, いない, でない, 未-, 非-: negates what it follows or precedes.
    Neg,
    Cmp(CmpWord),
    /// 以外
    Except,
    /// いずれか, どれか, いずれかの
    AnyOf,
    /// 範囲内, の範囲, 内
    InRange,
    /// から
    From,
    /// まで
    Until,
    /// 以降 / 以後 / より後
    After,
    /// より前 / 以前
    Before,
    /// 翌 / 翌日の / 翌朝
    NextDay,
    /// Particles that carry no meaning the grammar needs (が, は, の, を, に, で, ...).
    Particle(&'static str),
    /// Affirmative endings (である, いる, されている, ...).
    Aux,
    /// かつ, および, であり
    And,
    /// または, もしくは, あるいは, か、
    Or,
    /// 、 and ,
    Comma,
    /// と (lists)
    To,
    /// や (lists)
    Ya,
    /// 場合は, ならば, であれば, のとき
    If,
    /// Words that add nothing to a condition (デバイス, アクセス, 所有する, ...).
    Filler,
    Country(CountryCode),
    /// 海外, 国外: outside Japan.
    Abroad,
    /// 国内: Japan.
    Domestic,
    Os(&'static str),
    DiskMethod(&'static str),
    AuthMethod(&'static str),
    /// An ASCII word or a quoted text.
    Word(String),
    /// A run of text the lexicon does not know.
    Unknown(String),
    Weekdays(WeekdaySet),
    /// 時
    Hour,
    /// 分
    Minute,
    /// 半 (30 minutes)
    Half,
    Am,
    Pm,
    /// 深夜, 夜間 (only meaningful before an explicit range)
    Night,
    /// ~
    Tilde,
    /// 北緯 / 南緯 / 東経 / 西経
    Lat(bool),
    Lon(bool),
    /// 度
    Degree,
    /// 半径
    Radius,
    /// km, キロ, キロメートル
    Km,
    /// m, メートル
    Meter,
    /// 番 (port numbers)
    Number,
    LParen,
    RParen,
    /// 。 and .
    Period,
    /// 「…のサブドメイン」: subdomains only.
    Subdomain,
    /// 「…とそのサブドメイン」: the domain and its subdomains.
    WithSubdomains,
}

/// A token with its byte range in the folded text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Range<usize>,
}

use CmpWord as C;
use Pred as P;
use Subj as S;
use Tok as T;

/// The Japanese lexicon: surface form and the tokens it stands for. Longest match
/// wins, so compounds (「されていない」) beat their parts.
const LEXICON: &[(&str, &[Tok])] = &[
    // --- subjects: where the access comes from / goes to
    ("アクセス元の国名", &[T::Subj(S::Country)]),
    ("アクセス元の国・地域", &[T::Subj(S::Country)]),
    ("アクセス元の国", &[T::Subj(S::Country)]),
    ("アクセス元国", &[T::Subj(S::Country)]),
    ("接続元の国名", &[T::Subj(S::Country)]),
    ("接続元の国", &[T::Subj(S::Country)]),
    ("送信元の国", &[T::Subj(S::Country)]),
    ("国・地域", &[T::Subj(S::Country)]),
    ("国名", &[T::Subj(S::Country)]),
    ("国", &[T::Subj(S::Country)]),
    ("地域", &[T::Subj(S::Country)]),
    ("海外", &[T::Abroad]),
    ("国外", &[T::Abroad]),
    ("日本国外", &[T::Abroad]),
    ("国内", &[T::Domestic]),
    ("日本国内", &[T::Domestic]),
    ("アクセス元のIPアドレス", &[T::Subj(S::SourceIp)]),
    ("アクセス元IPアドレス", &[T::Subj(S::SourceIp)]),
    ("アクセス元のIP", &[T::Subj(S::SourceIp)]),
    ("アクセス元IP", &[T::Subj(S::SourceIp)]),
    ("接続元のIPアドレス", &[T::Subj(S::SourceIp)]),
    ("接続元IPアドレス", &[T::Subj(S::SourceIp)]),
    ("接続元のIP", &[T::Subj(S::SourceIp)]),
    ("接続元IP", &[T::Subj(S::SourceIp)]),
    ("送信元のIPアドレス", &[T::Subj(S::SourceIp)]),
    ("送信元IPアドレス", &[T::Subj(S::SourceIp)]),
    ("送信元IP", &[T::Subj(S::SourceIp)]),
    ("グローバルIPアドレス", &[T::Subj(S::SourceIp)]),
    ("アクセス先のIPアドレス", &[T::Subj(S::DestIp)]),
    ("アクセス先IPアドレス", &[T::Subj(S::DestIp)]),
    ("アクセス先のIP", &[T::Subj(S::DestIp)]),
    ("接続先のIPアドレス", &[T::Subj(S::DestIp)]),
    ("接続先IPアドレス", &[T::Subj(S::DestIp)]),
    ("接続先のIP", &[T::Subj(S::DestIp)]),
    ("宛先のIPアドレス", &[T::Subj(S::DestIp)]),
    ("宛先IPアドレス", &[T::Subj(S::DestIp)]),
    ("宛先IP", &[T::Subj(S::DestIp)]),
    ("デバイスのIPアドレス", &[T::Subj(S::DeviceIp)]),
    ("端末のIPアドレス", &[T::Subj(S::DeviceIp)]),
    ("ローカルIPアドレス", &[T::Subj(S::DeviceIp)]),
    ("プライベートIPアドレス", &[T::Subj(S::DeviceIp)]),
    ("IPアドレス", &[T::Subj(S::Ip)]),
    ("アクセス先のドメイン名", &[T::Subj(S::DestDomain)]),
    ("アクセス先のドメイン", &[T::Subj(S::DestDomain)]),
    ("アクセス先ドメイン", &[T::Subj(S::DestDomain)]),
    ("接続先のドメイン名", &[T::Subj(S::DestDomain)]),
    ("接続先のドメイン", &[T::Subj(S::DestDomain)]),
    ("接続先ドメイン", &[T::Subj(S::DestDomain)]),
    ("宛先のドメイン名", &[T::Subj(S::DestDomain)]),
    ("宛先のドメイン", &[T::Subj(S::DestDomain)]),
    ("宛先ドメイン", &[T::Subj(S::DestDomain)]),
    ("アクセス先のホスト名", &[T::Subj(S::DestDomain)]),
    ("接続先のホスト名", &[T::Subj(S::DestDomain)]),
    ("ホスト名", &[T::Subj(S::DestDomain)]),
    ("ドメイン名", &[T::Subj(S::DestDomain)]),
    ("ドメイン", &[T::Subj(S::DestDomain)]),
    ("アクセス先のポート番号", &[T::Subj(S::DestPort)]),
    ("アクセス先のポート", &[T::Subj(S::DestPort)]),
    ("接続先のポート番号", &[T::Subj(S::DestPort)]),
    ("接続先のポート", &[T::Subj(S::DestPort)]),
    ("接続先ポート", &[T::Subj(S::DestPort)]),
    ("宛先のポート番号", &[T::Subj(S::DestPort)]),
    ("宛先ポート番号", &[T::Subj(S::DestPort)]),
    ("宛先ポート", &[T::Subj(S::DestPort)]),
    ("ポート番号", &[T::Subj(S::DestPort)]),
    ("ポート", &[T::Subj(S::DestPort)]),
    ("アクセス先のアプリ名", &[T::Subj(S::DestApp)]),
    ("アクセス先のアプリ", &[T::Subj(S::DestApp)]),
    ("アクセス先のアプリケーション", &[T::Subj(S::DestApp)]),
    // --- subjects: device posture
    ("トラステッドプラットフォームモジュール", &[T::Subj(S::Tpm)]),
    ("セキュリティチップ", &[T::Subj(S::Tpm)]),
    ("TPMのバージョン", &[T::Subj(S::TpmVersion)]),
    ("TPMバージョン", &[T::Subj(S::TpmVersion)]),
    ("ドライブ", &[T::Subj(S::Disk)]),
    ("ディスク", &[T::Subj(S::Disk)]),
    ("ストレージ", &[T::Subj(S::Disk)]),
    ("ハードディスク", &[T::Subj(S::Disk)]),
    ("記憶装置", &[T::Subj(S::Disk)]),
    ("システムドライブ", &[T::Subj(S::Disk)]),
    ("ディスク暗号化", &[T::Subj(S::Disk), T::Pred(P::Encrypted)]),
    ("ドライブ暗号化", &[T::Subj(S::Disk), T::Pred(P::Encrypted)]),
    (
        "ストレージ暗号化",
        &[T::Subj(S::Disk), T::Pred(P::Encrypted)],
    ),
    (
        "ディスクの暗号化",
        &[T::Subj(S::Disk), T::Pred(P::Encrypted)],
    ),
    (
        "ドライブの暗号化",
        &[T::Subj(S::Disk), T::Pred(P::Encrypted)],
    ),
    (
        "ストレージの暗号化",
        &[T::Subj(S::Disk), T::Pred(P::Encrypted)],
    ),
    // 「暗号化方式がBitLocker」: encrypted, and by that method (spec §2).
    ("暗号化方式", &[T::Subj(S::Disk), T::Pred(P::Encrypted)]),
    (
        "ドライブの暗号化方式",
        &[T::Subj(S::Disk), T::Pred(P::Encrypted)],
    ),
    (
        "ディスクの暗号化方式",
        &[T::Subj(S::Disk), T::Pred(P::Encrypted)],
    ),
    ("ファイアウォール", &[T::Subj(S::Firewall)]),
    ("ファイヤーウォール", &[T::Subj(S::Firewall)]),
    ("ファイアーウォール", &[T::Subj(S::Firewall)]),
    ("ウイルス対策ソフトウェア", &[T::Subj(S::Antivirus)]),
    ("ウイルス対策ソフト", &[T::Subj(S::Antivirus)]),
    ("ウィルス対策ソフトウェア", &[T::Subj(S::Antivirus)]),
    ("ウィルス対策ソフト", &[T::Subj(S::Antivirus)]),
    ("ウイルス対策", &[T::Subj(S::Antivirus)]),
    ("ウィルス対策", &[T::Subj(S::Antivirus)]),
    ("アンチウイルスソフト", &[T::Subj(S::Antivirus)]),
    ("アンチウイルス", &[T::Subj(S::Antivirus)]),
    ("アンチウィルス", &[T::Subj(S::Antivirus)]),
    ("マルウェア対策ソフト", &[T::Subj(S::Antivirus)]),
    ("マルウェア対策", &[T::Subj(S::Antivirus)]),
    ("画面ロック", &[T::Subj(S::ScreenLock)]),
    ("スクリーンロック", &[T::Subj(S::ScreenLock)]),
    ("画面のロック", &[T::Subj(S::ScreenLock)]),
    ("多要素認証", &[T::Subj(S::Mfa)]),
    ("二要素認証", &[T::Subj(S::Mfa)]),
    ("2要素認証", &[T::Subj(S::Mfa)]),
    ("二段階認証", &[T::Subj(S::Mfa)]),
    ("2段階認証", &[T::Subj(S::Mfa)]),
    ("2段階認証", &[T::Subj(S::Mfa)]),
    ("多段階認証", &[T::Subj(S::Mfa)]),
    ("認証方式", &[T::Subj(S::AuthMethod)]),
    ("認証方法", &[T::Subj(S::AuthMethod)]),
    ("認証手段", &[T::Subj(S::AuthMethod)]),
    ("ログイン方法", &[T::Subj(S::AuthMethod)]),
    ("ログイン方式", &[T::Subj(S::AuthMethod)]),
    ("パスワード認証", &[T::AuthMethod("password")]),
    ("パスワード", &[T::AuthMethod("password")]),
    ("オペレーティングシステム", &[T::Subj(S::Os)]),
    ("OSの種類", &[T::Subj(S::Os)]),
    ("OSの種別", &[T::Subj(S::Os)]),
    ("OSのバージョン", &[T::Subj(S::OsVersion)]),
    ("OSバージョン", &[T::Subj(S::OsVersion)]),
    ("OSのビルド番号", &[T::Subj(S::OsVersion)]),
    ("OSの名前", &[T::Subj(S::OsName)]),
    ("OS名", &[T::Subj(S::OsName)]),
    ("バージョン", &[T::Subj(S::OsVersion)]),
    ("グループ", &[T::Subj(S::Group)]),
    ("ユーザID", &[T::Subj(S::UserId)]),
    ("ユーザーID", &[T::Subj(S::UserId)]),
    ("ユーザ名", &[T::Subj(S::UserId)]),
    ("ユーザー名", &[T::Subj(S::UserId)]),
    ("アカウント名", &[T::Subj(S::UserId)]),
    ("アカウントID", &[T::Subj(S::UserId)]),
    ("ログインID", &[T::Subj(S::UserId)]),
    ("メールアドレスのドメイン名", &[T::Subj(S::EmailDomain)]),
    ("メールアドレスのドメイン", &[T::Subj(S::EmailDomain)]),
    ("メールのドメイン", &[T::Subj(S::EmailDomain)]),
    ("メールドメイン", &[T::Subj(S::EmailDomain)]),
    ("メールアドレス", &[T::Subj(S::Email)]),
    ("Eメールアドレス", &[T::Subj(S::Email)]),
    ("Wi-FiのSSID", &[T::Subj(S::Ssid)]),
    ("WiFiのSSID", &[T::Subj(S::Ssid)]),
    ("無線LANのSSID", &[T::Subj(S::Ssid)]),
    ("ネットワークのSSID", &[T::Subj(S::Ssid)]),
    ("ネットワーク名", &[T::Subj(S::Ssid)]),
    ("リスクスコア", &[T::Subj(S::RiskScore)]),
    ("リスク値", &[T::Subj(S::RiskScore)]),
    ("リスクの値", &[T::Subj(S::RiskScore)]),
    ("不審なアクセス", &[T::Subj(S::Suspicious)]),
    ("不審", &[T::Subj(S::Suspicious)]),
    ("疑わしいアクセス", &[T::Subj(S::Suspicious)]),
    ("異常なアクセス", &[T::Subj(S::Suspicious)]),
    ("位置情報", &[T::Subj(S::Location)]),
    ("現在地", &[T::Subj(S::Location)]),
    ("デバイスの位置", &[T::Subj(S::Location)]),
    ("端末の位置", &[T::Subj(S::Location)]),
    ("アプリケーション", &[T::Subj(S::App)]),
    ("アプリ", &[T::Subj(S::App)]),
    ("ソフトウェア", &[T::Subj(S::App)]),
    ("ソフト", &[T::Subj(S::App)]),
    // --- predicates
    ("有効", &[T::Pred(P::Enabled)]),
    ("有効化", &[T::Pred(P::Enabled)]),
    ("オン", &[T::Pred(P::Enabled)]),
    ("稼働", &[T::Pred(P::Enabled)]),
    ("動作", &[T::Pred(P::Enabled)]),
    ("無効", &[T::Pred(P::Disabled)]),
    ("無効化", &[T::Pred(P::Disabled)]),
    ("オフ", &[T::Pred(P::Disabled)]),
    ("停止", &[T::Pred(P::Disabled)]),
    ("搭載", &[T::Pred(P::Equipped)]),
    ("内蔵", &[T::Pred(P::Equipped)]),
    ("装備", &[T::Pred(P::Equipped)]),
    ("非搭載", &[T::Neg, T::Pred(P::Equipped)]),
    ("存在", &[T::Pred(P::Exists)]),
    ("ある", &[T::Pred(P::Exists)]),
    ("あり", &[T::Pred(P::Exists)]),
    ("暗号化", &[T::Pred(P::Encrypted)]),
    ("未暗号化", &[T::Neg, T::Pred(P::Encrypted)]),
    ("非暗号化", &[T::Neg, T::Pred(P::Encrypted)]),
    ("所属", &[T::Pred(P::Belong)]),
    ("属して", &[T::Pred(P::Belong)]),
    ("属する", &[T::Pred(P::Belong)]),
    ("メンバー", &[T::Pred(P::Belong)]),
    ("メンバ", &[T::Pred(P::Belong)]),
    ("利用", &[T::Pred(P::Use)]),
    ("使用", &[T::Pred(P::Use)]),
    ("使って", &[T::Pred(P::Use)]),
    ("用いて", &[T::Pred(P::Use)]),
    ("経由", &[T::Pred(P::Use)]),
    ("実施", &[T::Pred(P::Use)]),
    ("通過", &[T::Pred(P::Use)]),
    ("完了", &[T::Pred(P::Use)]),
    ("認証", &[T::Pred(P::Use)]),
    ("行って", &[T::Pred(P::Use)]),
    ("経て", &[T::Pred(P::Use)]),
    ("行う", &[T::Pred(P::Use)]),
    ("行い", &[T::Pred(P::Use)]),
    ("済み", &[T::Aux]),
    ("対応", &[T::Pred(P::Support)]),
    ("サポート", &[T::Pred(P::Support)]),
    ("設定", &[T::Pred(P::Set)]),
    ("未設定", &[T::Neg, T::Pred(P::Set)]),
    ("構成", &[T::Pred(P::Set)]),
    ("インストール", &[T::Pred(P::Install)]),
    ("導入", &[T::Pred(P::Install)]),
    ("入って", &[T::Pred(P::Install)]),
    ("未導入", &[T::Neg, T::Pred(P::Install)]),
    ("登録", &[T::Pred(P::Registered)]),
    ("登録済", &[T::Pred(P::Registered)]),
    ("登録済み", &[T::Pred(P::Registered)]),
    ("未登録", &[T::Neg, T::Pred(P::Registered)]),
    ("管理対象", &[T::Pred(P::Registered)]),
    ("判定", &[T::Pred(P::Judged)]),
    ("判断", &[T::Pred(P::Judged)]),
    ("検知", &[T::Pred(P::Judged)]),
    ("検出", &[T::Pred(P::Judged)]),
    ("みなされて", &[T::Pred(P::Judged)]),
    ("接続", &[T::Pred(P::Connect)]),
    ("つながって", &[T::Pred(P::Connect)]),
    ("終わる", &[T::Pred(P::EndsWith)]),
    ("終わって", &[T::Pred(P::EndsWith)]),
    ("末尾", &[T::Pred(P::EndsWith)]),
    // --- comparisons and ranges
    ("以上", &[T::Cmp(C::Ge)]),
    ("以下", &[T::Cmp(C::Le)]),
    ("未満", &[T::Cmp(C::Lt)]),
    ("を超える", &[T::Cmp(C::Gt)]),
    ("を超えて", &[T::Cmp(C::Gt)]),
    ("超え", &[T::Cmp(C::Gt)]),
    ("超", &[T::Cmp(C::Gt)]),
    ("より大きい", &[T::Cmp(C::Gt)]),
    ("より高い", &[T::Cmp(C::Gt)]),
    ("より小さい", &[T::Cmp(C::Lt)]),
    ("より古い", &[T::Cmp(C::Lt)]),
    ("より新しい", &[T::Cmp(C::Gt)]),
    ("より低い", &[T::Cmp(C::Lt)]),
    ("以内", &[T::Cmp(C::Within)]),
    ("以外", &[T::Except]),
    ("を除く", &[T::Except]),
    ("いずれか", &[T::AnyOf]),
    ("いずれかの", &[T::AnyOf]),
    ("どれか", &[T::AnyOf]),
    ("どちらか", &[T::AnyOf]),
    ("のいずれか", &[T::Particle("の"), T::AnyOf]),
    ("範囲内", &[T::InRange]),
    ("範囲", &[T::InRange]),
    ("帯域", &[T::InRange]),
    ("内", &[T::InRange]),
    ("から", &[T::From]),
    ("まで", &[T::Until]),
    ("以降", &[T::After]),
    ("以後", &[T::After]),
    ("より後", &[T::After]),
    ("より前", &[T::Before]),
    ("以前", &[T::Before]),
    ("翌日の", &[T::NextDay]),
    ("翌朝", &[T::NextDay]),
    ("翌", &[T::NextDay]),
    // --- negation and affirmative endings
    ("ない", &[T::Neg]),
    ("無い", &[T::Neg]),
    ("なし", &[T::Neg]),
    ("無し", &[T::Neg]),
    ("いない", &[T::Neg]),
    ("ていない", &[T::Neg]),
    ("されていない", &[T::Neg]),
    ("されていません", &[T::Neg]),
    ("していない", &[T::Neg]),
    ("していません", &[T::Neg]),
    ("でない", &[T::Neg]),
    ("ではない", &[T::Neg]),
    ("ではありません", &[T::Neg]),
    ("でありません", &[T::Neg]),
    ("ません", &[T::Neg]),
    ("しない", &[T::Neg]),
    ("されない", &[T::Neg]),
    ("せず", &[T::Neg]),
    ("されず", &[T::Neg]),
    ("でなく", &[T::Neg]),
    ("ではなく", &[T::Neg]),
    ("になっていない", &[T::Neg]),
    ("となっていない", &[T::Neg]),
    ("である", &[T::Aux]),
    ("です", &[T::Aux]),
    ("であって", &[T::Aux]),
    ("だ", &[T::Aux]),
    ("いる", &[T::Aux]),
    ("ている", &[T::Aux]),
    ("されている", &[T::Aux]),
    ("している", &[T::Aux]),
    ("されています", &[T::Aux]),
    ("しています", &[T::Aux]),
    ("います", &[T::Aux]),
    ("である状態", &[T::Aux]),
    ("な状態", &[T::Aux]),
    ("の状態", &[T::Aux]),
    ("状態", &[T::Aux]),
    ("になっている", &[T::Aux]),
    ("となっている", &[T::Aux]),
    ("にされている", &[T::Aux]),
    ("にしている", &[T::Aux]),
    ("する", &[T::Aux]),
    ("される", &[T::Aux]),
    ("した", &[T::Aux]),
    ("された", &[T::Aux]),
    ("して", &[T::Aux]),
    ("し", &[T::Aux]),
    ("されて", &[T::Aux]),
    ("され", &[T::Aux]),
    ("こと", &[T::Aux]),
    ("とする", &[T::Aux]),
    ("な", &[T::Aux]),
    ("得ている", &[T::Aux]),
    // --- connectors
    ("かつ", &[T::And]),
    ("且つ", &[T::And]),
    ("および", &[T::And]),
    ("及び", &[T::And]),
    ("ならびに", &[T::And]),
    ("であり", &[T::And]),
    ("であって、", &[T::And]),
    ("であるとともに", &[T::And]),
    ("に加えて", &[T::And]),
    ("しており", &[T::Aux, T::And]),
    ("されており", &[T::Aux, T::And]),
    ("ており", &[T::Aux, T::And]),
    ("または", &[T::Or]),
    ("又は", &[T::Or]),
    ("もしくは", &[T::Or]),
    ("若しくは", &[T::Or]),
    ("あるいは", &[T::Or]),
    ("か", &[T::Or]),
    ("、", &[T::Comma]),
    (",", &[T::Comma]),
    ("・", &[T::Comma]),
    ("/", &[T::Comma]),
    ("と", &[T::To]),
    ("や", &[T::Ya]),
    ("場合は", &[T::If]),
    ("場合には", &[T::If]),
    ("場合", &[T::If]),
    ("ならば", &[T::If]),
    ("なら", &[T::If]),
    ("であれば", &[T::If]),
    ("であるとき", &[T::If]),
    ("のとき", &[T::Particle("の"), T::If]),
    ("の時", &[T::Particle("の"), T::If]),
    ("ときは", &[T::If]),
    // --- particles
    ("が", &[T::Particle("が")]),
    ("は", &[T::Particle("は")]),
    ("の", &[T::Particle("の")]),
    ("を", &[T::Particle("を")]),
    ("に", &[T::Particle("に")]),
    ("で", &[T::Particle("で")]),
    ("も", &[T::Particle("も")]),
    ("へ", &[T::Particle("へ")]),
    ("により", &[T::Particle("により")]),
    ("によって", &[T::Particle("により")]),
    ("による", &[T::Particle("により")]),
    ("にて", &[T::Particle("で")]),
    ("として", &[T::Particle("として")]),
    ("より", &[T::Particle("より")]),
    // --- fillers: words that only say *whose* attribute it is
    ("所有するデバイス", &[T::Filler]),
    ("所有する端末", &[T::Filler]),
    ("使用するデバイス", &[T::Filler]),
    ("使用する端末", &[T::Filler]),
    ("利用するデバイス", &[T::Filler]),
    ("利用する端末", &[T::Filler]),
    ("アクセスするデバイス", &[T::Filler]),
    ("アクセスする端末", &[T::Filler]),
    ("アクセスに使うデバイス", &[T::Filler]),
    ("所有する", &[T::Filler]),
    ("デバイス", &[T::Filler]),
    ("端末", &[T::Filler]),
    ("パソコン", &[T::Filler]),
    ("コンピュータ", &[T::Filler]),
    ("コンピューター", &[T::Filler]),
    ("機器", &[T::Filler]),
    ("ユーザー", &[T::Filler]),
    ("ユーザ", &[T::Filler]),
    ("利用者", &[T::Filler]),
    ("従業員", &[T::Filler]),
    ("社員", &[T::Filler]),
    ("アカウント", &[T::Filler]),
    ("アクセス", &[T::Filler]),
    ("アクセス元", &[T::Filler]),
    ("接続元", &[T::Filler]),
    ("ログイン", &[T::Filler]),
    ("でログイン", &[T::Particle("で"), T::Pred(P::Use)]),
    ("でサインイン", &[T::Particle("で"), T::Pred(P::Use)]),
    ("に限る", &[T::Aux]),
    ("に限ります", &[T::Aux]),
    ("に限定する", &[T::Aux]),
    ("会社", &[T::Filler]),
    ("組織", &[T::Filler]),
    ("社内", &[T::Filler]),
    ("自社", &[T::Filler]),
    ("業務時間", &[T::Night]),
    ("勤務時間", &[T::Night]),
    ("就業時間", &[T::Night]),
    ("営業時間", &[T::Night]),
    ("サブドメイン", &[T::Subdomain]),
    ("とそのサブドメイン", &[T::WithSubdomains]),
    ("およびそのサブドメイン", &[T::WithSubdomains]),
    ("またはそのサブドメイン", &[T::WithSubdomains]),
    ("を含むサブドメイン", &[T::WithSubdomains]),
    (":", &[T::Particle(":")]),
    ("サインイン", &[T::Filler]),
    ("アクセス先", &[T::Subj(S::DestDomain)]),
    ("接続先", &[T::Subj(S::DestDomain)]),
    ("宛先", &[T::Subj(S::DestDomain)]),
    ("通信", &[T::Filler]),
    ("リクエスト", &[T::Filler]),
    ("上", &[T::Filler]),
    ("中", &[T::Filler]),
    ("時点", &[T::Filler]),
    ("毎日", &[T::Filler]),
    ("アクセス日時", &[T::Filler]),
    ("アクセス時刻", &[T::Filler]),
    ("日時", &[T::Filler]),
    ("時間帯", &[T::Filler]),
    ("時刻", &[T::Filler]),
    ("曜日", &[T::Filler]),
    ("間", &[T::Filler]),
    ("の間", &[T::Filler]),
    ("すべての", &[T::Filler]),
    ("すべて", &[T::Filler]),
    ("全て", &[T::Filler]),
    ("いずれも", &[T::Filler]),
    ("スマートフォン", &[T::Filler]),
    ("スマホ", &[T::Filler]),
    ("タブレット", &[T::Filler]),
    ("ノートパソコン", &[T::Filler]),
    ("全ての", &[T::Filler]),
    // --- values
    ("ウィンドウズ", &[T::Os("windows")]),
    ("マック", &[T::Os("macos")]),
    ("リナックス", &[T::Os("linux")]),
    ("アンドロイド", &[T::Os("android")]),
    ("アイフォーン", &[T::Os("ios")]),
    ("ビットロッカー", &[T::DiskMethod("bitlocker")]),
    ("ファイルボールト", &[T::DiskMethod("filevault")]),
    ("生体認証", &[T::AuthMethod("webauthn")]),
    ("パスキー", &[T::AuthMethod("webauthn")]),
    ("シングルサインオン", &[T::AuthMethod("saml")]),
    // --- time
    ("平日", &[T::Weekdays(WeekdaySet::WEEKDAYS)]),
    ("営業日", &[T::Weekdays(WeekdaySet::WEEKDAYS)]),
    ("土日祝", &[T::Unknown(String::new())]),
    ("土日", &[T::Weekdays(WeekdaySet::WEEKEND)]),
    ("週末", &[T::Weekdays(WeekdaySet::WEEKEND)]),
    ("休日", &[T::Unknown(String::new())]),
    ("祝日", &[T::Unknown(String::new())]),
    ("月曜日", &[T::Weekdays(WeekdaySet::from_bits(1))]),
    ("火曜日", &[T::Weekdays(WeekdaySet::from_bits(2))]),
    ("水曜日", &[T::Weekdays(WeekdaySet::from_bits(4))]),
    ("木曜日", &[T::Weekdays(WeekdaySet::from_bits(8))]),
    ("金曜日", &[T::Weekdays(WeekdaySet::from_bits(16))]),
    ("土曜日", &[T::Weekdays(WeekdaySet::from_bits(32))]),
    ("日曜日", &[T::Weekdays(WeekdaySet::from_bits(64))]),
    ("月曜", &[T::Weekdays(WeekdaySet::from_bits(1))]),
    ("火曜", &[T::Weekdays(WeekdaySet::from_bits(2))]),
    ("水曜", &[T::Weekdays(WeekdaySet::from_bits(4))]),
    ("木曜", &[T::Weekdays(WeekdaySet::from_bits(8))]),
    ("金曜", &[T::Weekdays(WeekdaySet::from_bits(16))]),
    ("土曜", &[T::Weekdays(WeekdaySet::from_bits(32))]),
    ("日曜", &[T::Weekdays(WeekdaySet::from_bits(64))]),
    ("時", &[T::Hour]),
    ("分", &[T::Minute]),
    ("半", &[T::Half]),
    ("午前", &[T::Am]),
    ("午後", &[T::Pm]),
    ("深夜", &[T::Night]),
    ("夜間", &[T::Night]),
    ("早朝", &[T::Night]),
    ("~", &[T::Tilde]),
    // --- geography
    ("北緯", &[T::Lat(true)]),
    ("南緯", &[T::Lat(false)]),
    ("東経", &[T::Lon(true)]),
    ("西経", &[T::Lon(false)]),
    ("度", &[T::Degree]),
    ("半径", &[T::Radius]),
    ("キロメートル", &[T::Km]),
    ("キロ", &[T::Km]),
    ("メートル", &[T::Meter]),
    ("番", &[T::Number]),
    ("(", &[T::LParen]),
    (")", &[T::RParen]),
    ("「", &[T::LParen]),
    ("」", &[T::RParen]),
    ("。", &[T::Period]),
];

/// ASCII keywords, matched case-insensitively against a whole ASCII word.
const ASCII_WORDS: &[(&str, &[Tok])] = &[
    ("tpm", &[T::Subj(S::Tpm)]),
    ("bitlocker", &[T::DiskMethod("bitlocker")]),
    ("filevault", &[T::DiskMethod("filevault")]),
    ("filevault2", &[T::DiskMethod("filevault")]),
    ("luks", &[T::DiskMethod("luks")]),
    ("dm-crypt", &[T::DiskMethod("luks")]),
    ("windows hello", &[T::Subj(S::WindowsHello)]),
    ("windows", &[T::Os("windows")]),
    ("macos", &[T::Os("macos")]),
    ("mac", &[T::Os("macos")]),
    ("os x", &[T::Os("macos")]),
    ("linux", &[T::Os("linux")]),
    ("ios", &[T::Os("ios")]),
    ("ipados", &[T::Os("ios")]),
    ("iphone", &[T::Os("ios")]),
    ("ipad", &[T::Os("ios")]),
    ("android", &[T::Os("android")]),
    ("mfa", &[T::Subj(S::Mfa)]),
    ("2fa", &[T::Subj(S::Mfa)]),
    ("webauthn", &[T::AuthMethod("webauthn")]),
    ("fido2", &[T::AuthMethod("webauthn")]),
    ("saml", &[T::AuthMethod("saml")]),
    ("oidc", &[T::AuthMethod("oidc")]),
    ("openid connect", &[T::AuthMethod("oidc")]),
    ("os", &[T::Subj(S::Os)]),
    ("ip", &[T::Subj(S::Ip)]),
    ("ssid", &[T::Subj(S::Ssid)]),
    ("wi-fi", &[T::Subj(S::Ssid)]),
    ("wifi", &[T::Subj(S::Ssid)]),
    ("id", &[T::Subj(S::UserId)]),
    ("pc", &[T::Filler]),
    ("km", &[T::Km]),
    ("m", &[T::Meter]),
    ("on", &[T::Pred(P::Enabled)]),
    ("off", &[T::Pred(P::Disabled)]),
];

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '*' | '@' | '+' | '%')
}

/// The lexicon and the Japanese country names, indexed by first character, so the
/// lexer tries only the entries that can match at a position.
struct Index {
    lexicon: HashMap<char, Vec<usize>>,
    countries: HashMap<char, Vec<(&'static str, CountryCode)>>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut lexicon: HashMap<char, Vec<usize>> = HashMap::new();
    for (k, (surface, _)) in LEXICON.iter().enumerate() {
        if let Some(first) = surface.chars().next() {
            lexicon.entry(first).or_default().push(k);
        }
    }
    let mut countries: HashMap<char, Vec<(&'static str, CountryCode)>> = HashMap::new();
    for c in country::COUNTRIES {
        let Ok(code) = c.code.parse::<CountryCode>() else {
            continue;
        };
        for name in c.names() {
            match name.chars().next() {
                Some(first) if !first.is_ascii() => {
                    countries.entry(first).or_default().push((name, code));
                }
                _ => {}
            }
        }
    }
    Index { lexicon, countries }
});

/// Splits folded text into tokens.
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut unknown_start: Option<usize> = None;
    let mut i = 0;
    let flush = |out: &mut Vec<Token>, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            out.push(Token {
                tok: T::Unknown(text[s..end].to_string()),
                span: s..end,
            });
        }
    };
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        if c == ' ' {
            flush(&mut out, &mut unknown_start, i);
            i += 1;
            continue;
        }
        // Quoted text is taken verbatim: 「...」 only when it holds no Japanese words
        // the grammar needs, so a plain 「経理部」 names a group; "..." always.
        if c == '"' || c == '\'' || c == '`' {
            if let Some(end) = rest[1..].find(c) {
                flush(&mut out, &mut unknown_start, i);
                let inner = &rest[1..1 + end];
                out.push(Token {
                    tok: T::Word(inner.to_string()),
                    span: i..i + end + 2,
                });
                i += end + 2;
                continue;
            }
        }
        if c == '「' {
            if let Some(end) = rest.find('」') {
                let inner = &rest['「'.len_utf8()..end];
                if !inner.is_empty() && !inner.contains(['「', '、', '。']) {
                    flush(&mut out, &mut unknown_start, i);
                    out.push(Token {
                        tok: T::Word(inner.to_string()),
                        span: i..i + end + '」'.len_utf8(),
                    });
                    i += end + '」'.len_utf8();
                    continue;
                }
            }
        }
        // Longest Japanese lexicon entry or country name at this position.
        let mut best: Option<(usize, Vec<Tok>)> = None;
        for &k in INDEX.lexicon.get(&c).map(Vec::as_slice).unwrap_or_default() {
            let (surface, toks) = &LEXICON[k];
            if rest.starts_with(surface) && best.as_ref().is_none_or(|(l, _)| surface.len() > *l) {
                best = Some((surface.len(), toks.to_vec()));
            }
        }
        let punct_only = is_word_char(c)
            && !rest[..ascii_run(rest)]
                .chars()
                .any(|ch| ch.is_ascii_alphanumeric() || ch == '*');
        if is_word_char(c) && !(punct_only && best.is_some()) {
            let len = ascii_run(rest);
            // 「OSのバージョン」「IPアドレス」: a lexicon entry longer than the ASCII
            // run it starts with wins.
            if best.as_ref().is_none_or(|(l, _)| *l <= len) {
                flush(&mut out, &mut unknown_start, i);
                lex_ascii(&rest[..len], i, &mut out);
                i += len;
                continue;
            }
        }
        // Japanese country names only: ASCII names come through `lex_ascii`.
        for (name, code) in INDEX
            .countries
            .get(&c)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if rest.starts_with(name) && best.as_ref().is_none_or(|(l, _)| name.len() > *l) {
                best = Some((name.len(), vec![T::Country(*code)]));
            }
        }
        match best {
            Some((len, toks)) => {
                flush(&mut out, &mut unknown_start, i);
                let n = toks.len();
                for (k, tok) in toks.into_iter().enumerate() {
                    // Compound entries share their span: each part cites the whole.
                    let tok = match tok {
                        T::Unknown(_) => T::Unknown(rest[..len].to_string()),
                        t => t,
                    };
                    let _ = k;
                    out.push(Token {
                        tok,
                        span: i..i + len,
                    });
                }
                let _ = n;
                i += len;
            }
            None => {
                if unknown_start.is_none() {
                    unknown_start = Some(i);
                }
                i += c.len_utf8();
            }
        }
    }
    flush(&mut out, &mut unknown_start, text.len());
    out
}

/// Length of the ASCII run at the start of `s`: word characters, with single
/// spaces allowed between two word characters ("Windows Hello", "Google Chrome").
fn ascii_run(s: &str) -> usize {
    let b = s.as_bytes();
    let mut n = 0;
    while n < b.len() {
        let c = b[n] as char;
        let inner_space = c == ' ' && n > 0 && n + 1 < b.len() && is_word_char(b[n + 1] as char);
        if is_word_char(c) || inner_space {
            n += 1;
        } else {
            break;
        }
    }
    // A trailing '.' or ':' is punctuation, not part of the word.
    while n > 0 && matches!(b[n - 1], b'.' | b':' | b'/' | b',') {
        n -= 1;
    }
    n.max(1).min(s.len())
}

/// Splits an ASCII run into keyword tokens and literal words. Multi-word keywords
/// ("Windows Hello") win; other words stay together as one literal ("Google Chrome").
fn lex_ascii(run: &str, offset: usize, out: &mut Vec<Token>) {
    let words: Vec<(usize, &str)> = run
        .split(' ')
        .scan(0usize, |pos, w| {
            let start = *pos;
            *pos += w.len() + 1;
            Some((start, w))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let mut k = 0;
    let mut literal: Option<(usize, usize)> = None;
    let push_literal = |out: &mut Vec<Token>, lit: &mut Option<(usize, usize)>| {
        if let Some((s, e)) = lit.take() {
            out.push(Token {
                tok: T::Word(run[s..e].to_string()),
                span: offset + s..offset + e,
            });
        }
    };
    while k < words.len() {
        // Try two-word keywords first.
        let mut matched = None;
        if k + 1 < words.len() {
            let (s, _) = words[k];
            let (s2, w2) = words[k + 1];
            let two = &run[s..s2 + w2.len()];
            if let Some(toks) = keyword(two) {
                matched = Some((2, toks, s..s2 + w2.len()));
            }
        }
        if matched.is_none() {
            let (s, w) = words[k];
            // 「TPM2.0」: the keyword with its version glued on.
            if w.len() > 3
                && w[..3].eq_ignore_ascii_case("tpm")
                && w[3..].parse::<crate::value::Version>().is_ok()
            {
                push_literal(out, &mut literal);
                out.push(Token {
                    tok: T::Subj(S::Tpm),
                    span: offset + s..offset + s + 3,
                });
                out.push(Token {
                    tok: T::Word(w[3..].to_string()),
                    span: offset + s + 3..offset + s + w.len(),
                });
                k += 1;
                continue;
            }
            if let Some(toks) = keyword(w) {
                matched = Some((1, toks, s..s + w.len()));
            } else if let Some((split, unit)) = split_number_unit(w) {
                // "5km", "22番": number plus unit.
                push_literal(out, &mut literal);
                out.push(Token {
                    tok: T::Word(w[..split].to_string()),
                    span: offset + s..offset + s + split,
                });
                out.push(Token {
                    tok: unit,
                    span: offset + s + split..offset + s + w.len(),
                });
                k += 1;
                continue;
            }
        }
        match matched {
            Some((n, toks, r)) => {
                push_literal(out, &mut literal);
                for t in toks {
                    out.push(Token {
                        tok: t.clone(),
                        span: offset + r.start..offset + r.end,
                    });
                }
                k += n;
            }
            None => {
                let (s, w) = words[k];
                // 「SSID: corp-wifi」: a label's colon separates, it is not part of a name.
                if let Some(label) = w.strip_suffix(':').filter(|l| !l.is_empty()) {
                    push_literal(out, &mut literal);
                    let toks = keyword(label)
                        .map(|t| t.to_vec())
                        .unwrap_or_else(|| vec![T::Word(label.to_string())]);
                    for t in toks {
                        out.push(Token {
                            tok: t,
                            span: offset + s..offset + s + label.len(),
                        });
                    }
                    out.push(Token {
                        tok: T::Particle(":"),
                        span: offset + s + label.len()..offset + s + w.len(),
                    });
                    k += 1;
                    continue;
                }
                // Only plain words join into one name ("Google Chrome"); addresses,
                // domains and versions stand alone.
                let plain = |x: &str| {
                    x.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '+'))
                };
                literal = Some(match literal {
                    Some((ls, le)) if plain(w) && plain(&run[ls..le]) => (ls, s + w.len()),
                    other => {
                        let mut prev = other;
                        push_literal(out, &mut prev);
                        (s, s + w.len())
                    }
                });
                k += 1;
            }
        }
    }
    push_literal(out, &mut literal);
}

fn keyword(w: &str) -> Option<&'static [Tok]> {
    ASCII_WORDS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(w))
        .map(|(_, t)| *t)
}

/// "5km" → Some(1): a number immediately followed by `km`.
/// "5km" → (1, Km), "500m" → (3, Meter): a number immediately followed by a unit.
fn split_number_unit(w: &str) -> Option<(usize, Tok)> {
    let lower = w.to_ascii_lowercase();
    let (num, unit) = match lower.strip_suffix("km") {
        Some(n) => (n, T::Km),
        None => (lower.strip_suffix('m')?, T::Meter),
    };
    (!num.is_empty() && num.parse::<f64>().is_ok()).then_some((num.len(), unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_g01() {
        let t = toks("アクセス元の国名が日本であり、所有するデバイスは TPM が有効でドライブが BitLocker により暗号化されていること");
        assert_eq!(t[0], T::Subj(S::Country));
        assert!(t.contains(&T::Country("JP".parse().unwrap())));
        assert!(t.contains(&T::Subj(S::Tpm)));
        assert!(t.contains(&T::DiskMethod("bitlocker")));
        assert!(!t.iter().any(|t| matches!(t, T::Unknown(_))), "{t:?}");
    }

    #[test]
    fn unknown_runs_are_kept() {
        let t = toks("経理部グループに所属");
        assert_eq!(t[0], T::Unknown("経理部".into()));
        assert_eq!(t[1], T::Subj(S::Group));
    }

    #[test]
    fn ascii_multiword() {
        let t = toks("Windows Hello に対応");
        assert_eq!(t[0], T::Subj(S::WindowsHello));
        let t = toks("Google Chrome がインストール");
        assert_eq!(t[0], T::Word("Google Chrome".into()));
        let t = toks("半径5km以内");
        assert_eq!(t[1], T::Word("5".into()));
        assert_eq!(t[2], T::Km);
    }
}
