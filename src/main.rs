//! `rzts`: compile Japanese access policies once, check and review them, decide
//! requests (spec §4).
//!
//! Exit codes: 0 done (whatever a decision was); 1 a check or test found problems;
//! 2 the input was wrong (bad TOML, untranslatable text, malformed request) and no
//! decision was printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod commands;
mod directory;
mod serve;

/// See the `mimalloc` entry in Cargo.toml for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// RZTS: zero-trust access policies written in Japanese, compiled once into typed
/// rules, evaluated deterministically.
#[derive(Debug, Parser)]
#[command(name = "rzts", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which translator turns texts into rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TranslatorKind {
    /// Deterministic, no network (default).
    Offline,
    /// Gemini API (GEMINI_API_KEY, RZTS_GEMINI_MODEL, GEMINI_BASE_URL).
    Gemini,
    /// OpenAI-compatible chat completions (OPENAI_BASE_URL, OPENAI_API_KEY, RZTS_OPENAI_MODEL).
    Openai,
}

/// Which slot a one-off text is for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SlotArg {
    /// 必須条件
    Require,
    /// 拒否条件
    Deny,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Translate changed texts and write the lock (unchanged texts are reused).
    Compile {
        /// Policy file.
        #[arg(default_value = "policies.toml")]
        policy: PathBuf,
        /// Translator for changed texts.
        #[arg(long, value_enum, default_value_t = TranslatorKind::Offline)]
        translator: TranslatorKind,
        /// LLM translators: how many texts to translate at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
        jobs: u16,
    },
    /// Exit non-zero if the lock is stale, hand-edited or does not type-check (for CI).
    Check {
        /// Policy file.
        #[arg(default_value = "policies.toml")]
        policy: PathBuf,
    },
    /// Show the compiled rules with a Japanese back-translation.
    Show {
        /// Policy file.
        #[arg(default_value = "policies.toml")]
        policy: PathBuf,
        /// Only this app.
        app: Option<String>,
    },
    /// Semantic diff of two locks: what changed, and requests whose decision flips.
    Diff {
        /// The old lock.
        old: PathBuf,
        /// The new lock.
        new: PathBuf,
    },
    /// Decide one request for one app; prints {"decision":..,"reasons":[..]}.
    Decide {
        /// Policy file.
        #[arg(default_value = "policies.toml")]
        policy: PathBuf,
        /// The app (target) to decide for.
        #[arg(long)]
        app: String,
        /// Request context JSON file (spec §2), or - for standard input.
        #[arg(long)]
        request: PathBuf,
        /// Add the evaluation trace of both slots.
        #[arg(long)]
        explain: bool,
        /// Decide as for an unauthenticated user (always deny).
        #[arg(long)]
        anonymous: bool,
    },
    /// Run decision test cases (texts, requests, expected decisions).
    Test {
        /// Cases file.
        cases: PathBuf,
    },
    /// Translate one text and print the rule, its back-translation and lint findings.
    Translate {
        /// The Japanese text.
        text: String,
        /// The slot the text is for.
        #[arg(long, value_enum, default_value_t = SlotArg::Require)]
        slot: SlotArg,
        /// Translator to use.
        #[arg(long, value_enum, default_value_t = TranslatorKind::Offline)]
        translator: TranslatorKind,
    },
    /// Run the all-in-one decision server (embedded defaults and sample policies when
    /// no config is given); prints where everything listens.
    Serve {
        /// Server config (TOML, see examples/server.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage users of the directory.
    User {
        /// Server config whose store to use.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: directory::UserCmd,
    },
    /// Manage groups and membership.
    Group {
        /// Server config whose store to use.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: directory::GroupCmd,
    },
    /// Manage registered devices; `device enroll` issues a one-time code for the
    /// device agent (rzts-agent).
    Device {
        /// Server config whose store to use.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: directory::DeviceCmd,
    },
    /// Read the access log (newest first).
    Logs {
        /// Server config whose store to use.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: directory::LogsArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile {
            policy,
            translator,
            jobs,
        } => commands::compile(&policy, translator, usize::from(jobs)),
        Command::Check { policy } => commands::check(&policy),
        Command::Show { policy, app } => commands::show(&policy, app.as_deref()),
        Command::Diff { old, new } => commands::diff(&old, &new),
        Command::Decide {
            policy,
            app,
            request,
            explain,
            anonymous,
        } => commands::decide(&policy, &app, &request, explain, anonymous),
        Command::Test { cases } => commands::test(&cases),
        Command::Translate {
            text,
            slot,
            translator,
        } => commands::translate(&text, slot, translator),
        Command::Serve { config } => serve::serve(config.as_deref()).map_err(Into::into),
        Command::User { config, cmd } => directory::user(config, cmd).map_err(Into::into),
        Command::Group { config, cmd } => directory::group(config, cmd).map_err(Into::into),
        Command::Device { config, cmd } => directory::device(config, cmd).map_err(Into::into),
        Command::Logs { config, args } => directory::logs(config, args).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("エラー: {e}");
            ExitCode::from(2)
        }
    }
}
