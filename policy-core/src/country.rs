//! ISO 3166-1 alpha-2 country table with Japanese names.
//!
//! This module holds every officially assigned ISO 3166-1 alpha-2 code
//! (249 entries; user-assigned codes such as `XK` are deliberately absent)
//! together with its usual Japanese name, common Japanese short forms and
//! the English short name(s). It is used by the offline Japanese translator
//! (to recognise country names such as 「米国」「北朝鮮」 inside policy text)
//! and by the request validator (to check and normalise country codes).
//!
//! Design rules for the table:
//!
//! * No name or alias is shared by two countries, so every lookup is
//!   unambiguous. Ambiguous names are left out entirely: 「コンゴ」/`Congo`
//!   (CG or CD), 「ドミニカ」 (DM or DO), 「朝鮮」/`Korea` (KP or KR),
//!   「マケドニア」 (also a Greek region), `America` (a continent).
//! * No single-kanji abbreviations (独, 仏, 米, 英, 露, ...): they are ambiguous
//!   inside ordinary words. Multi-character forms such as 「米国」「英国」
//!   「豪州」 are listed.
//! * English aliases are real names (plus the well-known `USA`, `UK`, `UAE`),
//!   not arbitrary abbreviations.
//!
//! Lookups are linear scans over the table, which is small enough for that
//! to be fast in practice.

/// One ISO 3166-1 country (or territory with an alpha-2 code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2 code, upper case, e.g. "JP".
    pub code: &'static str,
    /// The usual Japanese name, e.g. "日本", "アメリカ合衆国".
    pub name_ja: &'static str,
    /// Other Japanese names and common short forms (e.g. 「米国」「アメリカ」
    /// for US), and the English short name(s) (e.g. "United States", "USA").
    pub aliases: &'static [&'static str],
}

impl Country {
    /// Iterates over all names of this country: `name_ja` first, then the
    /// aliases in table order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name_ja).chain(self.aliases.iter().copied())
    }
}

/// Builds a table entry (keeps the table below compact).
const fn c(code: &'static str, name_ja: &'static str, aliases: &'static [&'static str]) -> Country {
    Country {
        code,
        name_ja,
        aliases,
    }
}

/// All 249 officially assigned ISO 3166-1 alpha-2 codes, sorted by code.
pub static COUNTRIES: &[Country] = &[
    c("AD", "アンドラ", &["アンドラ公国", "Andorra"]),
    c("AE", "アラブ首長国連邦", &["United Arab Emirates", "UAE"]),
    c("AF", "アフガニスタン", &["Afghanistan"]),
    c(
        "AG",
        "アンティグア・バーブーダ",
        &["アンティグアバーブーダ", "Antigua and Barbuda"],
    ),
    c("AI", "アンギラ", &["Anguilla"]),
    c("AL", "アルバニア", &["アルバニア共和国", "Albania"]),
    c("AM", "アルメニア", &["アルメニア共和国", "Armenia"]),
    c("AO", "アンゴラ", &["アンゴラ共和国", "Angola"]),
    c("AQ", "南極", &["南極大陸", "Antarctica"]),
    c("AR", "アルゼンチン", &["アルゼンチン共和国", "Argentina"]),
    c("AS", "アメリカ領サモア", &["米領サモア", "American Samoa"]),
    c("AT", "オーストリア", &["オーストリア共和国", "Austria"]),
    c(
        "AU",
        "オーストラリア",
        &["豪州", "オーストラリア連邦", "Australia"],
    ),
    c("AW", "アルバ", &["Aruba"]),
    c("AX", "オーランド諸島", &["Åland Islands", "Aland Islands"]),
    c(
        "AZ",
        "アゼルバイジャン",
        &["アゼルバイジャン共和国", "Azerbaijan"],
    ),
    c(
        "BA",
        "ボスニア・ヘルツェゴビナ",
        &["ボスニアヘルツェゴビナ", "Bosnia and Herzegovina"],
    ),
    c("BB", "バルバドス", &["Barbados"]),
    c(
        "BD",
        "バングラデシュ",
        &["バングラデシュ人民共和国", "Bangladesh"],
    ),
    c("BE", "ベルギー", &["ベルギー王国", "Belgium"]),
    c("BF", "ブルキナファソ", &["Burkina Faso"]),
    c("BG", "ブルガリア", &["ブルガリア共和国", "Bulgaria"]),
    c("BH", "バーレーン", &["バーレーン王国", "Bahrain"]),
    c("BI", "ブルンジ", &["ブルンジ共和国", "Burundi"]),
    c("BJ", "ベナン", &["ベナン共和国", "Benin"]),
    c(
        "BL",
        "サン・バルテルミー",
        &["サンバルテルミー", "Saint Barthélemy", "Saint Barthelemy"],
    ),
    c("BM", "バミューダ", &["バミューダ諸島", "Bermuda"]),
    c(
        "BN",
        "ブルネイ",
        &["ブルネイ・ダルサラーム", "Brunei", "Brunei Darussalam"],
    ),
    c("BO", "ボリビア", &["ボリビア多民族国", "Bolivia"]),
    c(
        "BQ",
        "ボネール、シント・ユースタティウスおよびサバ",
        &[
            "カリブ・オランダ",
            "Bonaire, Sint Eustatius and Saba",
            "Caribbean Netherlands",
        ],
    ),
    c("BR", "ブラジル", &["ブラジル連邦共和国", "Brazil"]),
    c("BS", "バハマ", &["バハマ国", "Bahamas", "The Bahamas"]),
    c("BT", "ブータン", &["ブータン王国", "Bhutan"]),
    c("BV", "ブーベ島", &["Bouvet Island"]),
    c("BW", "ボツワナ", &["ボツワナ共和国", "Botswana"]),
    c("BY", "ベラルーシ", &["ベラルーシ共和国", "Belarus"]),
    c("BZ", "ベリーズ", &["Belize"]),
    c("CA", "カナダ", &["Canada"]),
    c(
        "CC",
        "ココス（キーリング）諸島",
        &["ココス諸島", "Cocos (Keeling) Islands", "Cocos Islands"],
    ),
    c(
        "CD",
        "コンゴ民主共和国",
        &["Democratic Republic of the Congo", "DR Congo"],
    ),
    c(
        "CF",
        "中央アフリカ共和国",
        &["中央アフリカ", "Central African Republic"],
    ),
    c("CG", "コンゴ共和国", &["Republic of the Congo"]),
    c("CH", "スイス", &["スイス連邦", "Switzerland"]),
    c(
        "CI",
        "コートジボワール",
        &[
            "コートジボワール共和国",
            "Côte d'Ivoire",
            "Cote d'Ivoire",
            "Ivory Coast",
        ],
    ),
    c("CK", "クック諸島", &["Cook Islands"]),
    c("CL", "チリ", &["チリ共和国", "Chile"]),
    c("CM", "カメルーン", &["カメルーン共和国", "Cameroon"]),
    c(
        "CN",
        "中華人民共和国",
        &["中国", "China", "People's Republic of China"],
    ),
    c("CO", "コロンビア", &["コロンビア共和国", "Colombia"]),
    c("CR", "コスタリカ", &["コスタリカ共和国", "Costa Rica"]),
    c("CU", "キューバ", &["キューバ共和国", "Cuba"]),
    c(
        "CV",
        "カーボベルデ",
        &["カーボヴェルデ", "Cabo Verde", "Cape Verde"],
    ),
    c("CW", "キュラソー", &["キュラソー島", "Curaçao", "Curacao"]),
    c("CX", "クリスマス島", &["Christmas Island"]),
    c("CY", "キプロス", &["キプロス共和国", "Cyprus"]),
    c(
        "CZ",
        "チェコ",
        &["チェコ共和国", "Czechia", "Czech Republic"],
    ),
    c("DE", "ドイツ", &["ドイツ連邦共和国", "Germany"]),
    c("DJ", "ジブチ", &["ジブチ共和国", "Djibouti"]),
    c("DK", "デンマーク", &["デンマーク王国", "Denmark"]),
    c("DM", "ドミニカ国", &["Dominica"]),
    c("DO", "ドミニカ共和国", &["Dominican Republic"]),
    c(
        "DZ",
        "アルジェリア",
        &["アルジェリア民主人民共和国", "Algeria"],
    ),
    c("EC", "エクアドル", &["エクアドル共和国", "Ecuador"]),
    c("EE", "エストニア", &["エストニア共和国", "Estonia"]),
    c("EG", "エジプト", &["エジプト・アラブ共和国", "Egypt"]),
    c("EH", "西サハラ", &["Western Sahara"]),
    c("ER", "エリトリア", &["エリトリア国", "Eritrea"]),
    c("ES", "スペイン", &["スペイン王国", "Spain"]),
    c(
        "ET",
        "エチオピア",
        &["エチオピア連邦民主共和国", "Ethiopia"],
    ),
    c("FI", "フィンランド", &["フィンランド共和国", "Finland"]),
    c("FJ", "フィジー", &["フィジー共和国", "Fiji"]),
    c(
        "FK",
        "フォークランド（マルビナス）諸島",
        &[
            "フォークランド諸島",
            "マルビナス諸島",
            "Falkland Islands",
            "Falkland Islands (Malvinas)",
        ],
    ),
    c(
        "FM",
        "ミクロネシア連邦",
        &[
            "ミクロネシア",
            "Micronesia",
            "Federated States of Micronesia",
        ],
    ),
    c("FO", "フェロー諸島", &["Faroe Islands"]),
    c("FR", "フランス", &["フランス共和国", "France"]),
    c("GA", "ガボン", &["ガボン共和国", "Gabon"]),
    c(
        "GB",
        "イギリス",
        &[
            "英国",
            "連合王国",
            "グレートブリテン及び北アイルランド連合王国",
            "United Kingdom",
            "UK",
            "Great Britain",
            "Britain",
        ],
    ),
    c("GD", "グレナダ", &["Grenada"]),
    c("GE", "ジョージア", &["グルジア", "Georgia"]),
    c("GF", "フランス領ギアナ", &["仏領ギアナ", "French Guiana"]),
    c("GG", "ガーンジー", &["ガーンジー島", "Guernsey"]),
    c("GH", "ガーナ", &["ガーナ共和国", "Ghana"]),
    c("GI", "ジブラルタル", &["Gibraltar"]),
    c("GL", "グリーンランド", &["Greenland"]),
    c(
        "GM",
        "ガンビア",
        &["ガンビア共和国", "Gambia", "The Gambia"],
    ),
    c("GN", "ギニア", &["ギニア共和国", "Guinea"]),
    c("GP", "グアドループ", &["Guadeloupe"]),
    c(
        "GQ",
        "赤道ギニア",
        &["赤道ギニア共和国", "Equatorial Guinea"],
    ),
    c("GR", "ギリシャ", &["ギリシア", "ギリシャ共和国", "Greece"]),
    c(
        "GS",
        "サウスジョージア・サウスサンドウィッチ諸島",
        &["South Georgia and the South Sandwich Islands"],
    ),
    c("GT", "グアテマラ", &["グアテマラ共和国", "Guatemala"]),
    c("GU", "グアム", &["グアム島", "Guam"]),
    c(
        "GW",
        "ギニアビサウ",
        &["ギニア・ビサウ", "ギニアビサウ共和国", "Guinea-Bissau"],
    ),
    c("GY", "ガイアナ", &["ガイアナ共和国", "Guyana"]),
    c("HK", "香港", &["ホンコン", "Hong Kong"]),
    c(
        "HM",
        "ハード島とマクドナルド諸島",
        &[
            "ハード島・マクドナルド諸島",
            "Heard Island and McDonald Islands",
        ],
    ),
    c("HN", "ホンジュラス", &["ホンジュラス共和国", "Honduras"]),
    c("HR", "クロアチア", &["クロアチア共和国", "Croatia"]),
    c("HT", "ハイチ", &["ハイチ共和国", "Haiti"]),
    c("HU", "ハンガリー", &["Hungary"]),
    c("ID", "インドネシア", &["インドネシア共和国", "Indonesia"]),
    c("IE", "アイルランド", &["Ireland"]),
    c("IL", "イスラエル", &["イスラエル国", "Israel"]),
    c("IM", "マン島", &["Isle of Man"]),
    c("IN", "インド", &["India"]),
    c(
        "IO",
        "イギリス領インド洋地域",
        &["英領インド洋地域", "British Indian Ocean Territory"],
    ),
    c("IQ", "イラク", &["イラク共和国", "Iraq"]),
    c("IR", "イラン", &["イラン・イスラム共和国", "Iran"]),
    c("IS", "アイスランド", &["アイスランド共和国", "Iceland"]),
    c("IT", "イタリア", &["イタリア共和国", "Italy"]),
    c("JE", "ジャージー", &["ジャージー島", "Jersey"]),
    c("JM", "ジャマイカ", &["Jamaica"]),
    c("JO", "ヨルダン", &["ヨルダン・ハシェミット王国", "Jordan"]),
    c("JP", "日本", &["日本国", "にほん", "にっぽん", "Japan"]),
    c("KE", "ケニア", &["ケニア共和国", "Kenya"]),
    c(
        "KG",
        "キルギス",
        &["キルギス共和国", "キルギスタン", "Kyrgyzstan"],
    ),
    c("KH", "カンボジア", &["カンボジア王国", "Cambodia"]),
    c("KI", "キリバス", &["キリバス共和国", "Kiribati"]),
    c("KM", "コモロ", &["コモロ連合", "Comoros"]),
    c(
        "KN",
        "セントクリストファー・ネイビス",
        &["セントクリストファーネイビス", "Saint Kitts and Nevis"],
    ),
    c(
        "KP",
        "朝鮮民主主義人民共和国",
        &[
            "北朝鮮",
            "North Korea",
            "Democratic People's Republic of Korea",
        ],
    ),
    c(
        "KR",
        "大韓民国",
        &["韓国", "South Korea", "Republic of Korea"],
    ),
    c("KW", "クウェート", &["クウェート国", "Kuwait"]),
    c("KY", "ケイマン諸島", &["Cayman Islands"]),
    c("KZ", "カザフスタン", &["カザフスタン共和国", "Kazakhstan"]),
    c(
        "LA",
        "ラオス",
        &[
            "ラオス人民民主共和国",
            "Laos",
            "Lao People's Democratic Republic",
        ],
    ),
    c("LB", "レバノン", &["レバノン共和国", "Lebanon"]),
    c("LC", "セントルシア", &["Saint Lucia"]),
    c(
        "LI",
        "リヒテンシュタイン",
        &["リヒテンシュタイン公国", "Liechtenstein"],
    ),
    c(
        "LK",
        "スリランカ",
        &["スリランカ民主社会主義共和国", "Sri Lanka"],
    ),
    c("LR", "リベリア", &["リベリア共和国", "Liberia"]),
    c("LS", "レソト", &["レソト王国", "Lesotho"]),
    c("LT", "リトアニア", &["リトアニア共和国", "Lithuania"]),
    c(
        "LU",
        "ルクセンブルク",
        &["ルクセンブルク大公国", "Luxembourg"],
    ),
    c(
        "LV",
        "ラトビア",
        &["ラトビア共和国", "ラトヴィア", "Latvia"],
    ),
    c("LY", "リビア", &["Libya"]),
    c("MA", "モロッコ", &["モロッコ王国", "Morocco"]),
    c("MC", "モナコ", &["モナコ公国", "Monaco"]),
    c(
        "MD",
        "モルドバ",
        &["モルドバ共和国", "Moldova", "Republic of Moldova"],
    ),
    c("ME", "モンテネグロ", &["Montenegro"]),
    c(
        "MF",
        "サン・マルタン（フランス領）",
        &["サン・マルタン", "サンマルタン", "Saint Martin"],
    ),
    c("MG", "マダガスカル", &["マダガスカル共和国", "Madagascar"]),
    c(
        "MH",
        "マーシャル諸島",
        &["マーシャル諸島共和国", "Marshall Islands"],
    ),
    c(
        "MK",
        "北マケドニア",
        &["北マケドニア共和国", "North Macedonia"],
    ),
    c("ML", "マリ", &["マリ共和国", "Mali"]),
    c(
        "MM",
        "ミャンマー",
        &["ミャンマー連邦共和国", "ビルマ", "Myanmar", "Burma"],
    ),
    c("MN", "モンゴル", &["モンゴル国", "Mongolia"]),
    c("MO", "マカオ", &["澳門", "Macao", "Macau"]),
    c("MP", "北マリアナ諸島", &["Northern Mariana Islands"]),
    c("MQ", "マルティニーク", &["Martinique"]),
    c(
        "MR",
        "モーリタニア",
        &["モーリタニア・イスラム共和国", "Mauritania"],
    ),
    c("MS", "モントセラト", &["Montserrat"]),
    c("MT", "マルタ", &["マルタ共和国", "Malta"]),
    c("MU", "モーリシャス", &["モーリシャス共和国", "Mauritius"]),
    c("MV", "モルディブ", &["モルディブ共和国", "Maldives"]),
    c("MW", "マラウイ", &["マラウイ共和国", "Malawi"]),
    c("MX", "メキシコ", &["メキシコ合衆国", "Mexico"]),
    c("MY", "マレーシア", &["Malaysia"]),
    c("MZ", "モザンビーク", &["モザンビーク共和国", "Mozambique"]),
    c("NA", "ナミビア", &["ナミビア共和国", "Namibia"]),
    c("NC", "ニューカレドニア", &["New Caledonia"]),
    c("NE", "ニジェール", &["ニジェール共和国", "Niger"]),
    c("NF", "ノーフォーク島", &["Norfolk Island"]),
    c("NG", "ナイジェリア", &["ナイジェリア連邦共和国", "Nigeria"]),
    c("NI", "ニカラグア", &["ニカラグア共和国", "Nicaragua"]),
    c(
        "NL",
        "オランダ",
        &[
            "オランダ王国",
            "ネーデルラント",
            "Netherlands",
            "The Netherlands",
        ],
    ),
    c("NO", "ノルウェー", &["ノルウェー王国", "Norway"]),
    c("NP", "ネパール", &["ネパール連邦民主共和国", "Nepal"]),
    c("NR", "ナウル", &["ナウル共和国", "Nauru"]),
    c("NU", "ニウエ", &["Niue"]),
    c("NZ", "ニュージーランド", &["New Zealand"]),
    c("OM", "オマーン", &["オマーン国", "Oman"]),
    c("PA", "パナマ", &["パナマ共和国", "Panama"]),
    c("PE", "ペルー", &["ペルー共和国", "Peru"]),
    c(
        "PF",
        "フランス領ポリネシア",
        &["仏領ポリネシア", "French Polynesia"],
    ),
    c(
        "PG",
        "パプアニューギニア",
        &["パプア・ニューギニア", "Papua New Guinea"],
    ),
    c("PH", "フィリピン", &["フィリピン共和国", "Philippines"]),
    c(
        "PK",
        "パキスタン",
        &["パキスタン・イスラム共和国", "Pakistan"],
    ),
    c("PL", "ポーランド", &["ポーランド共和国", "Poland"]),
    c(
        "PM",
        "サンピエール島・ミクロン島",
        &["サンピエール・ミクロン", "Saint Pierre and Miquelon"],
    ),
    c(
        "PN",
        "ピトケアン",
        &["ピトケアン諸島", "Pitcairn", "Pitcairn Islands"],
    ),
    c("PR", "プエルトリコ", &["Puerto Rico"]),
    c("PS", "パレスチナ", &["Palestine", "State of Palestine"]),
    c("PT", "ポルトガル", &["ポルトガル共和国", "Portugal"]),
    c("PW", "パラオ", &["パラオ共和国", "Palau"]),
    c("PY", "パラグアイ", &["パラグアイ共和国", "Paraguay"]),
    c("QA", "カタール", &["カタール国", "Qatar"]),
    c("RE", "レユニオン", &["Réunion", "Reunion"]),
    c("RO", "ルーマニア", &["Romania"]),
    c("RS", "セルビア", &["セルビア共和国", "Serbia"]),
    c(
        "RU",
        "ロシア",
        &["ロシア連邦", "Russia", "Russian Federation"],
    ),
    c("RW", "ルワンダ", &["ルワンダ共和国", "Rwanda"]),
    c(
        "SA",
        "サウジアラビア",
        &["サウジアラビア王国", "Saudi Arabia"],
    ),
    c("SB", "ソロモン諸島", &["Solomon Islands"]),
    c("SC", "セーシェル", &["セーシェル共和国", "Seychelles"]),
    c("SD", "スーダン", &["スーダン共和国", "Sudan"]),
    c("SE", "スウェーデン", &["スウェーデン王国", "Sweden"]),
    c("SG", "シンガポール", &["シンガポール共和国", "Singapore"]),
    c(
        "SH",
        "セントヘレナ・アセンションおよびトリスタンダクーニャ",
        &[
            "セントヘレナ",
            "Saint Helena, Ascension and Tristan da Cunha",
            "Saint Helena",
        ],
    ),
    c(
        "SI",
        "スロベニア",
        &["スロベニア共和国", "スロヴェニア", "Slovenia"],
    ),
    c(
        "SJ",
        "スヴァールバル諸島およびヤンマイエン島",
        &[
            "スバールバル諸島およびヤンマイエン島",
            "Svalbard and Jan Mayen",
        ],
    ),
    c(
        "SK",
        "スロバキア",
        &["スロバキア共和国", "スロヴァキア", "Slovakia"],
    ),
    c(
        "SL",
        "シエラレオネ",
        &["シエラレオネ共和国", "Sierra Leone"],
    ),
    c("SM", "サンマリノ", &["サンマリノ共和国", "San Marino"]),
    c("SN", "セネガル", &["セネガル共和国", "Senegal"]),
    c("SO", "ソマリア", &["ソマリア連邦共和国", "Somalia"]),
    c("SR", "スリナム", &["スリナム共和国", "Suriname"]),
    c("SS", "南スーダン", &["南スーダン共和国", "South Sudan"]),
    c(
        "ST",
        "サントメ・プリンシペ",
        &[
            "サントメプリンシペ",
            "Sao Tome and Principe",
            "São Tomé and Príncipe",
        ],
    ),
    c(
        "SV",
        "エルサルバドル",
        &["エルサルバドル共和国", "El Salvador"],
    ),
    c(
        "SX",
        "シント・マールテン（オランダ領）",
        &["シント・マールテン", "シントマールテン", "Sint Maarten"],
    ),
    c("SY", "シリア", &["シリア・アラブ共和国", "Syria"]),
    c(
        "SZ",
        "エスワティニ",
        &["エスワティニ王国", "スワジランド", "Eswatini", "Swaziland"],
    ),
    c(
        "TC",
        "タークス・カイコス諸島",
        &["タークスカイコス諸島", "Turks and Caicos Islands"],
    ),
    c("TD", "チャド", &["チャド共和国", "Chad"]),
    c(
        "TF",
        "フランス領南方・南極地域",
        &["仏領南方・南極地域", "French Southern Territories"],
    ),
    c("TG", "トーゴ", &["トーゴ共和国", "Togo"]),
    c("TH", "タイ", &["タイ王国", "Thailand"]),
    c("TJ", "タジキスタン", &["タジキスタン共和国", "Tajikistan"]),
    c("TK", "トケラウ", &["トケラウ諸島", "Tokelau"]),
    c(
        "TL",
        "東ティモール",
        &[
            "東ティモール民主共和国",
            "ティモール・レステ",
            "Timor-Leste",
            "East Timor",
        ],
    ),
    c("TM", "トルクメニスタン", &["Turkmenistan"]),
    c("TN", "チュニジア", &["チュニジア共和国", "Tunisia"]),
    c("TO", "トンガ", &["トンガ王国", "Tonga"]),
    c(
        "TR",
        "トルコ",
        &["トルコ共和国", "テュルキエ", "Türkiye", "Turkiye", "Turkey"],
    ),
    c(
        "TT",
        "トリニダード・トバゴ",
        &["トリニダードトバゴ", "Trinidad and Tobago"],
    ),
    c("TV", "ツバル", &["Tuvalu"]),
    c("TW", "台湾", &["臺灣", "中華民国", "Taiwan"]),
    c("TZ", "タンザニア", &["タンザニア連合共和国", "Tanzania"]),
    c("UA", "ウクライナ", &["Ukraine"]),
    c("UG", "ウガンダ", &["ウガンダ共和国", "Uganda"]),
    c(
        "UM",
        "合衆国領有小離島",
        &[
            "アメリカ合衆国領有小離島",
            "United States Minor Outlying Islands",
        ],
    ),
    c(
        "US",
        "アメリカ合衆国",
        &[
            "米国",
            "アメリカ",
            "合衆国",
            "United States",
            "United States of America",
            "USA",
        ],
    ),
    c("UY", "ウルグアイ", &["ウルグアイ東方共和国", "Uruguay"]),
    c(
        "UZ",
        "ウズベキスタン",
        &["ウズベキスタン共和国", "Uzbekistan"],
    ),
    c(
        "VA",
        "バチカン",
        &["バチカン市国", "Vatican", "Vatican City", "Holy See"],
    ),
    c(
        "VC",
        "セントビンセント・グレナディーン",
        &[
            "セントビンセントおよびグレナディーン諸島",
            "セントビンセント",
            "Saint Vincent and the Grenadines",
        ],
    ),
    c(
        "VE",
        "ベネズエラ",
        &["ベネズエラ・ボリバル共和国", "Venezuela"],
    ),
    c(
        "VG",
        "イギリス領ヴァージン諸島",
        &[
            "英領ヴァージン諸島",
            "イギリス領バージン諸島",
            "British Virgin Islands",
        ],
    ),
    c(
        "VI",
        "アメリカ領ヴァージン諸島",
        &[
            "米領ヴァージン諸島",
            "アメリカ領バージン諸島",
            "United States Virgin Islands",
            "U.S. Virgin Islands",
        ],
    ),
    c(
        "VN",
        "ベトナム",
        &[
            "ヴェトナム",
            "ベトナム社会主義共和国",
            "Viet Nam",
            "Vietnam",
        ],
    ),
    c("VU", "バヌアツ", &["バヌアツ共和国", "Vanuatu"]),
    c(
        "WF",
        "ウォリス・フツナ",
        &["ウォリス・フテュナ", "Wallis and Futuna"],
    ),
    c("WS", "サモア", &["サモア独立国", "Samoa"]),
    c("YE", "イエメン", &["イエメン共和国", "Yemen"]),
    c("YT", "マヨット", &["Mayotte"]),
    c("ZA", "南アフリカ", &["南アフリカ共和国", "South Africa"]),
    c("ZM", "ザンビア", &["ザンビア共和国", "Zambia"]),
    c("ZW", "ジンバブエ", &["ジンバブエ共和国", "Zimbabwe"]),
];

/// Returns true for names written in Latin script (the English aliases).
///
/// Japanese names always contain kana, kanji or full-width punctuation, all
/// of which lie above U+024F, so "every char is in Latin-1 / Latin
/// Extended-A/B" cleanly separates the two kinds.
fn is_latin(name: &str) -> bool {
    name.chars().all(|ch| (ch as u32) < 0x250)
}

/// Look up by code, case-insensitive ("jp" and "JP" both work). `None` for
/// unassigned codes.
///
/// Surrounding whitespace is not accepted: the input must be exactly two
/// ASCII letters.
#[must_use]
pub fn by_code(code: &str) -> Option<&'static Country> {
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    COUNTRIES
        .binary_search_by(|c| {
            c.code
                .bytes()
                .cmp(code.bytes().map(|b| b.to_ascii_uppercase()))
        })
        .ok()
        .map(|i| &COUNTRIES[i])
}

/// Exact match of a whole name against `name_ja` and `aliases` (English
/// compared ASCII-case-insensitively). Leading/trailing whitespace
/// (including the ideographic space U+3000) is ignored.
///
/// Also accepts a Japanese name followed by 「国」 when the part before 「国」
/// is itself a listed Japanese name (e.g. 「ロシア国」 → RU). No fuzzy
/// matching is done: 「ドミニカ」, 「コンゴ」 and 「朝鮮」 are ambiguous and
/// return `None`.
#[must_use]
pub fn by_name(name: &str) -> Option<&'static Country> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let exact = COUNTRIES
        .iter()
        .find(|c| c.names().any(|n| n.eq_ignore_ascii_case(name)));
    if exact.is_some() {
        return exact;
    }
    let base = name.strip_suffix('国')?;
    if base.is_empty() {
        return None;
    }
    COUNTRIES
        .iter()
        .find(|c| c.names().any(|n| !is_latin(n) && n == base))
}

/// Longest country name (`name_ja` or alias) that is a prefix of `text`,
/// returning the country and the byte length matched.
///
/// Japanese names are matched exactly. English aliases are matched
/// ASCII-case-insensitively and only if the match ends at the end of `text`
/// or before a character that is not ASCII alphanumeric (so "Japanese" does
/// not match "Japan", but "Japan、" does).
///
/// ```text
/// longest_prefix("北朝鮮、ロシア") == Some((KP, "北朝鮮".len()))
/// longest_prefix("インドネシア")   == Some((ID, "インドネシア".len()))
/// ```
#[must_use]
pub fn longest_prefix(text: &str) -> Option<(&'static Country, usize)> {
    let bytes = text.as_bytes();
    let mut best: Option<(&'static Country, usize)> = None;
    for country in COUNTRIES {
        for name in country.names() {
            let len = name.len();
            if len > bytes.len() || matches!(best, Some((_, l)) if l >= len) {
                continue;
            }
            let matched = if is_latin(name) {
                // Byte-wise case-insensitive comparison: non-ASCII bytes must
                // match exactly, so a match always ends on a char boundary.
                bytes[..len].eq_ignore_ascii_case(name.as_bytes())
                    && !matches!(bytes.get(len), Some(b) if b.is_ascii_alphanumeric())
            } else {
                bytes.starts_with(name.as_bytes())
            };
            if matched {
                best = Some((country, len));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn code_of(c: Option<&'static Country>) -> Option<&'static str> {
        c.map(|c| c.code)
    }

    #[test]
    fn table_shape() {
        assert_eq!(COUNTRIES.len(), 249);
        for c in COUNTRIES {
            assert_eq!(c.code.len(), 2, "{}", c.code);
            assert!(c.code.bytes().all(|b| b.is_ascii_uppercase()), "{}", c.code);
        }
        // Sorted and unique by code (by_code relies on binary search).
        for w in COUNTRIES.windows(2) {
            assert!(w[0].code < w[1].code, "{} !< {}", w[0].code, w[1].code);
        }
        assert!(by_code("XK").is_none());
    }

    #[test]
    fn names_are_unique_and_clean() {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for c in COUNTRIES {
            assert!(!is_latin(c.name_ja), "{}: name_ja must be Japanese", c.code);
            for n in c.names() {
                assert!(!n.is_empty(), "{}: empty name", c.code);
                assert_eq!(n, n.trim(), "{}: untrimmed name {n:?}", c.code);
                if !is_latin(n) {
                    assert!(n.chars().count() >= 2, "{}: single-char name {n}", c.code);
                }
                let key = n.to_ascii_lowercase();
                if let Some(prev) = seen.insert(key, c.code) {
                    panic!("name {n:?} listed for both {prev} and {}", c.code);
                }
            }
        }
    }

    #[test]
    fn kuni_suffix_rule_is_consistent() {
        // If "X" and "X国" are both listed, they must be the same country,
        // otherwise the 「国」-suffix rule of by_name could mislead.
        for c in COUNTRIES {
            for n in c.names().filter(|n| !is_latin(n)) {
                let with_kuni = format!("{n}国");
                if let Some(other) = COUNTRIES.iter().find(|o| o.names().any(|m| m == with_kuni)) {
                    assert_eq!(other.code, c.code, "{with_kuni}");
                }
            }
        }
    }

    #[test]
    fn every_name_round_trips() {
        for c in COUNTRIES {
            assert_eq!(by_code(c.code), Some(c));
            assert_eq!(by_code(&c.code.to_ascii_lowercase()), Some(c));
            for n in c.names() {
                assert_eq!(code_of(by_name(n)), Some(c.code), "{n}");
                assert_eq!(longest_prefix(n), Some((c, n.len())), "{n}");
            }
        }
    }

    #[test]
    fn by_code_cases() {
        assert_eq!(code_of(by_code("jp")), Some("JP"));
        assert_eq!(code_of(by_code("JP")), Some("JP"));
        assert_eq!(code_of(by_code("Jp")), Some("JP"));
        assert_eq!(by_code("XK"), None);
        assert_eq!(by_code("ZZ"), None);
        assert_eq!(by_code("J"), None);
        assert_eq!(by_code("JPN"), None);
        assert_eq!(by_code(""), None);
        assert_eq!(by_code("日本"), None);
    }

    #[test]
    fn by_name_cases() {
        assert_eq!(code_of(by_name("米国")), Some("US"));
        assert_eq!(code_of(by_name("アメリカ")), Some("US"));
        assert_eq!(code_of(by_name("アメリカ合衆国")), Some("US"));
        assert_eq!(code_of(by_name("英国")), Some("GB"));
        assert_eq!(code_of(by_name("イギリス")), Some("GB"));
        assert_eq!(code_of(by_name("韓国")), Some("KR"));
        assert_eq!(code_of(by_name("北朝鮮")), Some("KP"));
        assert_eq!(code_of(by_name("中国")), Some("CN"));
        assert_eq!(code_of(by_name("台湾")), Some("TW"));
        assert_eq!(code_of(by_name("ロシア")), Some("RU"));
        assert_eq!(code_of(by_name("豪州")), Some("AU"));
        assert_eq!(code_of(by_name("日本")), Some("JP"));
        assert_eq!(code_of(by_name("日本国")), Some("JP"));
        assert_eq!(code_of(by_name("にっぽん")), Some("JP"));
        assert_eq!(code_of(by_name("Japan")), Some("JP"));
        assert_eq!(code_of(by_name("japan")), Some("JP"));
        assert_eq!(code_of(by_name("JAPAN")), Some("JP"));
        assert_eq!(code_of(by_name("  united states ")), Some("US"));
        assert_eq!(code_of(by_name("\u{3000}韓国\u{3000}")), Some("KR"));
        assert_eq!(code_of(by_name("ドミニカ国")), Some("DM"));
        assert_eq!(code_of(by_name("ドミニカ共和国")), Some("DO"));
        assert_eq!(code_of(by_name("ロシア国")), Some("RU"));
        // Ambiguous or unlisted names.
        assert_eq!(by_name("朝鮮"), None);
        assert_eq!(by_name("コンゴ"), None);
        assert_eq!(by_name("ドミニカ"), None);
        assert_eq!(by_name("Korea"), None);
        assert_eq!(by_name("Congo"), None);
        assert_eq!(by_name("米"), None);
        assert_eq!(by_name("国"), None);
        assert_eq!(by_name(""), None);
        assert_eq!(by_name("   "), None);
        assert_eq!(by_name("ジャパン"), None);
    }

    #[test]
    fn longest_prefix_cases() {
        let kp = longest_prefix("北朝鮮、ロシアのいずれか").unwrap();
        assert_eq!((kp.0.code, kp.1), ("KP", "北朝鮮".len()));

        let cn = longest_prefix("中国からのアクセス").unwrap();
        assert_eq!((cn.0.code, cn.1), ("CN", "中国".len()));

        let us = longest_prefix("アメリカ合衆国以外").unwrap();
        assert_eq!((us.0.code, us.1), ("US", "アメリカ合衆国".len()));

        let id = longest_prefix("インドネシア").unwrap();
        assert_eq!((id.0.code, id.1), ("ID", "インドネシア".len()));

        let ind = longest_prefix("インドから").unwrap();
        assert_eq!((ind.0.code, ind.1), ("IN", "インド".len()));

        let dr = longest_prefix("ドミニカ共和国").unwrap();
        assert_eq!((dr.0.code, dr.1), ("DO", "ドミニカ共和国".len()));

        let dm = longest_prefix("ドミニカ国").unwrap();
        assert_eq!((dm.0.code, dm.1), ("DM", "ドミニカ国".len()));

        let gw = longest_prefix("ギニアビサウ").unwrap();
        assert_eq!(gw.0.code, "GW");

        let ru = longest_prefix("ロシア連邦、中国").unwrap();
        assert_eq!((ru.0.code, ru.1), ("RU", "ロシア連邦".len()));

        assert_eq!(longest_prefix("朝鮮半島"), None);
        assert_eq!(longest_prefix("コンゴ川"), None);
        assert_eq!(longest_prefix(""), None);
        assert_eq!(longest_prefix("から"), None);
    }

    #[test]
    fn longest_prefix_english_boundaries() {
        let jp = longest_prefix("Japan、US").unwrap();
        assert_eq!((jp.0.code, jp.1), ("JP", 5));
        let jp = longest_prefix("japan or china").unwrap();
        assert_eq!((jp.0.code, jp.1), ("JP", 5));
        assert_eq!(longest_prefix("Japanese"), None);
        assert_eq!(longest_prefix("Japan2"), None);
        assert_eq!(longest_prefix("Indian"), None);

        let ng = longest_prefix("Nigeria").unwrap();
        assert_eq!(ng.0.code, "NG");
        let ne = longest_prefix("Niger.").unwrap();
        assert_eq!((ne.0.code, ne.1), ("NE", 5));

        let us = longest_prefix("United States of America以外").unwrap();
        assert_eq!((us.0.code, us.1), ("US", "United States of America".len()));
        let us = longest_prefix("United States、Canada").unwrap();
        assert_eq!((us.0.code, us.1), ("US", "United States".len()));

        let dom = longest_prefix("Dominican Republic").unwrap();
        assert_eq!(dom.0.code, "DO");
        let dm = longest_prefix("Dominica と").unwrap();
        assert_eq!((dm.0.code, dm.1), ("DM", 8));

        let ci = longest_prefix("CÔTE D'IVOIRE").map(|(c, _)| c.code);
        // Non-ASCII letters are compared exactly (only ASCII is case-folded).
        assert_eq!(ci, None);
        let ci = longest_prefix("COTE D'IVOIRE").map(|(c, _)| c.code);
        assert_eq!(ci, Some("CI"));
    }
}
