//! Command-line grammar (DESIGN §3 is the contract for command and flag names).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Herald: a message store built around RFC 5423 events.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None)]
pub struct Cli {
    /// Data directory (default `./herald-data`, or `[store] path` of the config file).
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Configuration file (TOML; every key is described in the README's "Configuration"
    /// section, and examples/herald.toml is a commented sample).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on standard error: `text` (colours only at a terminal) or `json` (one object
    /// per line, for log collectors); default `[log] format` of the config file, else `text`.
    /// `HERALD_LOG` sets what is logged (default `info`).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log records are written (`--log-format`, `[log] format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per record: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line, message and fields at the top level.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Herald: every listener, the event log; stops gracefully on SIGINT/SIGTERM.
    #[command(after_help = "Examples:\n  \
        herald serve                                   # embedded default: ./herald-data, loopback ports\n  \
        herald serve --config /etc/herald/herald.toml  # see examples/herald.toml\n\n\
        SIGHUP re-reads the TLS certificate and key.")]
    Serve,
    /// Work with event streams.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Measure Herald's speed on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage accounts in the data directory.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage account quotas.
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Apply mailbox expiry policies now (emits MessageExpire), or set a mailbox's policy.
    Expire(ExpireArgs),
    /// Inspect and steer the running server's event subscriptions (through its HTTP admin API).
    Subscriptions(SubscriptionsArgs),
    /// Bring existing mail into an account: a Maildir, an mbox file, or another IMAP server.
    ///
    /// Flags, keywords and INTERNALDATE are kept; UIDs and UIDVALIDITY too when the target
    /// mailbox is new or empty. Each message is a MessageAppend with `vnd.herald.cause` =
    /// `import`. Interrupted imports continue where they stopped when run again.
    ///
    /// Example: herald import maildir /var/mail/alice/Maildir --user alice
    #[command(subcommand)]
    Import(ImportCommand),
    /// Copy the embedded store (the data directory) into PostgreSQL, to run Herald there.
    ///
    /// Everything is kept: accounts, mailboxes with their UIDVALIDITY, messages with their
    /// UIDs, flags and MODSEQs, quotas, the outbox with its event ids, subscriptions' cursors,
    /// METADATA, ACLs. The copy is one transaction into an empty database or schema, checked
    /// before it commits. Stop `herald serve` first: what it commits during the copy is not
    /// copied.
    ///
    /// Example: herald migrate --data /var/lib/herald --to postgres://herald@db/mail
    Migrate(MigrateArgs),
}

/// Arguments of `herald migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database: `postgres://user[:password]@host[:port]/database`.
    #[arg(long)]
    pub to: String,
    /// The schema to create Herald's tables in (default: the connection's `search_path`).
    #[arg(long)]
    pub schema: Option<String>,
}

/// Arguments of `herald subscriptions`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    herald subscriptions list\n  \
    herald subscriptions pause audit\n  \
    herald subscriptions replay audit --from 1200\n  \
    herald subscriptions replay audit --parked\n  \
    herald subscriptions --url http://10.0.0.5:8080 --user ops --password-file ops.pw list\n\n\
    Credentials: --token-file (a `[http] tokens` token of an administrator), or --user with a \
    password (asked for, or --password-file), or the HERALD_TOKEN environment variable.")]
pub struct SubscriptionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SubscriptionsCommand,
    /// The server's HTTP address (default: the first `[http] listen` address of the
    /// configuration, or http://127.0.0.1:8080).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// An administrator account to authenticate as (HTTP Basic).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Read that account's password from the first line of this file (`-`: standard input);
    /// without it, the password is asked for.
    #[arg(long, global = true, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// Read a bearer token (`[http] tokens`) from the first line of this file.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "user")]
    pub token_file: Option<PathBuf>,
    /// Print the server's JSON answers instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `herald subscriptions …`
#[derive(Debug, Clone, Subcommand)]
pub enum SubscriptionsCommand {
    /// Every subscription: state, cursor, lag behind the outbox, delivered, parked, last error.
    List,
    /// Stop delivering (events keep accumulating; the cursor stays).
    Pause {
        /// Subscription name.
        name: String,
    },
    /// Deliver again from the cursor (also re-enables one a receiver disabled).
    Resume {
        /// Subscription name.
        name: String,
    },
    /// Deliver again from an event id, or try the parked events again.
    Replay {
        /// Subscription name.
        name: String,
        /// First event id (`vnd.herald.id`) to deliver again.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "parked",
            conflicts_with = "parked"
        )]
        from: Option<u64>,
        /// Try the parked (dead-lettered) events again instead.
        #[arg(long)]
        parked: bool,
    },
}

/// `herald import …`
#[derive(Debug, Clone, Subcommand)]
pub enum ImportCommand {
    /// A Dovecot or Courier Maildir++ tree: INBOX and its `.Sub.Folder`s, with
    /// `dovecot-uidlist` UIDs and `dovecot-keywords`.
    ///
    /// Example: herald import maildir ~alice/Maildir --user alice
    Maildir {
        /// The maildir's root (the directory holding `cur/`, `new/` and the `.Folder`s).
        path: PathBuf,
        /// The Herald account to import into.
        #[arg(long)]
        user: String,
    },
    /// An mbox file (mboxrd or mboxo) into one mailbox.
    ///
    /// Example: herald import mbox archive-2019.mbox --user alice --mailbox Archive/2019
    Mbox {
        /// The mbox file.
        file: PathBuf,
        /// The Herald account to import into.
        #[arg(long)]
        user: String,
        /// The mailbox to import into (created if missing).
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
    },
    /// Every mailbox of an account on another IMAP server.
    ///
    /// Example: herald import imap --host old.example.org --user alice --password-file pw
    Imap(ImapImportArgs),
}

/// Arguments of `herald import imap`.
#[derive(Debug, Clone, Args)]
pub struct ImapImportArgs {
    /// The server's host name.
    #[arg(long)]
    pub host: String,
    /// Its port (default 993 with --tls, else 143).
    #[arg(long)]
    pub port: Option<u16>,
    /// TLS from the start (the default).
    #[arg(long, conflicts_with_all = ["starttls", "plain"])]
    pub tls: bool,
    /// Plain connection upgraded with STARTTLS.
    #[arg(long, conflicts_with = "plain")]
    pub starttls: bool,
    /// No TLS at all (a server on this machine or a private network only: the password
    /// travels in clear).
    #[arg(long)]
    pub plain: bool,
    /// A PEM file of CA certificates to trust besides the system's.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The login on the source server.
    #[arg(long)]
    pub user: String,
    /// A file holding the source password (one line), so it never shows in `ps`.
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// The Herald account to import into (default: the same name as --user).
    #[arg(long, value_name = "NAME")]
    pub to_user: Option<String>,
}

/// How `herald import imap` protects its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    /// TLS from the start.
    Tls,
    /// STARTTLS.
    Starttls,
    /// None.
    Plain,
}

impl ImapImportArgs {
    /// The chosen protection (TLS unless told otherwise).
    pub fn security(&self) -> ImapSecurity {
        if self.plain {
            ImapSecurity::Plain
        } else if self.starttls {
            ImapSecurity::Starttls
        } else {
            ImapSecurity::Tls
        }
    }
}

/// `herald user …`
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create an account (with its INBOX).
    #[command(after_help = "Examples:\n  \
        herald user add alice                          # asks for the password twice\n  \
        herald user add alice --password-file pw.txt   # first line of the file; `-` = stdin\n  \
        herald user add ops --admin --password-hash '$argon2id$v=19$m=19456,t=2,p=1$…'")]
    Add {
        /// Account name.
        name: String,
        /// How the password is given (default: asked for at the terminal).
        #[command(flatten)]
        password: PasswordArgs,
        /// Administrator: may act as any user and sees every user's events.
        #[arg(long)]
        admin: bool,
    },
    /// Change an account's password; logins cached with the old one stop working at once.
    #[command(
        after_help = "Example:\n  herald user passwd alice    # asks for the new password twice"
    )]
    Passwd {
        /// Account name.
        name: String,
        /// How the new password is given (default: asked for at the terminal).
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List accounts with their quotas, usage and state.
    List,
    /// Disable an account: logins as it are refused (IMAP `NO [CONTACTADMIN]`, POP3
    /// `[SYS/PERM]`, HTTP 403) and its open IMAP sessions end at their next command; its mail
    /// stays and deliveries to it go on. Emits vnd.herald.AccountDisable.
    #[command(
        after_help = "Example:\n  herald user disable alice --reason 'compromised, reset pending'"
    )]
    Disable {
        /// Account name.
        name: String,
        /// A one-line note kept with the account and carried by the event.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Enable a disabled account again. Emits vnd.herald.AccountEnable.
    Enable {
        /// Account name.
        name: String,
    },
    /// Delete an account with its mailboxes and messages (emits MailboxDelete for each).
    Del {
        /// Account name.
        name: String,
    },
}

/// Where a password comes from. None of them: Herald asks at the terminal (twice, not
/// echoed) — a password on the command line is visible to every user in `ps`.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct PasswordArgs {
    /// The password itself (visible to other users in `ps` and kept in shell history:
    /// prefer --password-file or the prompt).
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from the first line of this file; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// An Argon2 hash in PHC form made elsewhere (e.g. `doveadm pw -s ARGON2ID`), stored as
    /// it is.
    #[arg(long, value_name = "PHC")]
    pub password_hash: Option<String>,
}

/// `herald quota …`
#[derive(Debug, Clone, Subcommand)]
pub enum QuotaCommand {
    /// Set an account's limits (emits QuotaChange); a limit not given stays as it is.
    #[command(
        after_help = "Example:\n  herald quota set alice --storage-kb 1048576 --messages 50000"
    )]
    Set {
        /// Account name.
        name: String,
        /// Storage limit in kilobytes (1024 octets).
        #[arg(long, value_name = "N")]
        storage_kb: Option<u64>,
        /// Message-count limit.
        #[arg(long, value_name = "N")]
        messages: Option<u64>,
    },
}

/// Arguments of `herald expire`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = "Examples:\n  \
    herald expire policy alice Trash --days 30   # Trash keeps 30 days of mail\n  \
    herald expire                                # apply every policy now")]
pub struct ExpireArgs {
    /// Set a policy instead of applying them.
    #[command(subcommand)]
    pub policy: Option<ExpireCommand>,
    /// Apply only this account's policies.
    #[arg(long)]
    pub user: Option<String>,
}

/// `herald expire policy …`
#[derive(Debug, Clone, Subcommand)]
pub enum ExpireCommand {
    /// Set (or with --off remove) the max-age policy of one mailbox: `herald expire` then
    /// removes its messages whose INTERNALDATE is older.
    Policy {
        /// Account name.
        user: String,
        /// Mailbox name (e.g. `Trash`).
        mailbox: String,
        /// Maximum age in days.
        #[arg(long, required_unless_present = "off", conflicts_with = "off")]
        days: Option<u64>,
        /// Remove the policy.
        #[arg(long)]
        off: bool,
    },
}

/// `herald events …`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Validate JSON-lines events against RFC 5423; exit 0 if all are valid, 1 if not, 2 if the
    /// input cannot be read.
    Check(CheckArgs),
    /// Print the events reference (Markdown) that the README embeds.
    Reference,
    /// Print stored events (the outbox) as JSON lines, exactly as committed.
    Tail(TailArgs),
}

/// Arguments of `herald events tail`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    herald events tail --from 1200 --follow\n  \
    herald events tail --parked")]
pub struct TailArgs {
    /// Keep printing new events as they are committed.
    #[arg(long, short)]
    pub follow: bool,
    /// Start at this event id (`vnd.herald.id`), inclusive; default: the oldest event kept.
    /// An id retention has already removed is an error that names the oldest one kept.
    #[arg(long, value_name = "ID")]
    pub from: Option<u64>,
    /// Print the parked (dead-lettered) events of every subscription instead, each with
    /// `vnd.herald.parked` = {subscription, reason, parkedAt} added.
    #[arg(long, conflicts_with = "follow")]
    pub parked: bool,
}

/// The shape of the events being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// Herald's RFC 5423 JSON, with lines in Dovecot's push-notification shape mapped first.
    Auto,
    /// RFC 5423 JSON only (the wire format of the README's "Event format"; Cyrus writes this
    /// shape too).
    Rfc5423,
    /// Dovecot's push-notification Lua driver output.
    Dovecot,
}

/// Arguments of `herald events check`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    herald events check herald-data/events.jsonl\n  \
    herald events check --format dovecot dovecot-events.jsonl -q")]
pub struct CheckArgs {
    /// File of JSON lines; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// Input shape.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// Host name to put in IMAP URLs built from Dovecot events (which carry none).
    #[arg(long, default_value = "localhost")]
    pub dovecot_host: String,
    /// Longest line accepted, in bytes; longer lines are reported invalid and skipped.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_line: usize,
    /// Print only the summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `herald bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Generate a JSON-lines file of realistic events and time `herald events check` on it.
    Check(BenchCheckArgs),
    /// Measure durable delivery throughput (2 KiB messages) with 1 and more concurrent writers.
    Store(BenchStoreArgs),
    /// Measure durable LMTP delivery throughput (2 KiB messages) over 1 and 8 connections.
    Lmtp(BenchLmtpArgs),
    /// Measure how fast the dispatcher carries committed events to a file subscription.
    Dispatch(BenchDispatchArgs),
    /// Measure IMAP APPEND (1 and 8 connections) and FETCH ENVELOPE throughput, and the
    /// server's memory per IDLE connection.
    Imap(BenchImapArgs),
}

/// Arguments of `herald bench imap`.
#[derive(Debug, Args)]
pub struct BenchImapArgs {
    /// Messages APPENDed per run.
    #[arg(long, default_value_t = 2_000)]
    pub count: u64,
    /// Concurrent connection counts for APPEND, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub connections: Vec<usize>,
    /// Message size in bytes.
    #[arg(long, default_value_t = 2048)]
    pub size: usize,
    /// IDLE connections for the memory measurement (0 skips it; needs `ulimit -n` above
    /// this).
    #[arg(long, default_value_t = 1000)]
    pub idle: usize,
    /// Directory for the server's data (default: a new one in the current directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep it afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Run the mixed workload of long-lived sessions instead (LIST, STATUS, SELECT, FETCH,
    /// FETCH BODY[], STORE, APPEND, STORE \Deleted, EXPUNGE), with latency per command and
    /// the server's CPU per command.
    #[arg(long)]
    pub mix: bool,
    /// --mix: mailboxes (accounts).
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// --mix: concurrent sessions per account.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// --mix: seconds to run.
    #[arg(long, default_value_t = 30)]
    pub secs: u64,
    /// --mix: messages in each INBOX before the clock starts.
    #[arg(long, default_value_t = 200)]
    pub prefill: u32,
    /// --mix: connect and log in anew every round.
    #[arg(long)]
    pub reconnect: bool,
    /// --mix: offer this many commands per second in all (each session paced evenly) instead
    /// of as many as the server answers, so two servers' latencies compare at the same load.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// --mix: drive the IMAP server on this port instead of starting Herald.
    #[arg(long)]
    pub port: Option<u16>,
    /// --mix with --port: its host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// --mix: account names, `{u}` replaced by 0, 1, …
    #[arg(long, default_value = "mix{u}")]
    pub user_format: String,
    /// --mix: the accounts' password.
    #[arg(long, default_value = "bench")]
    pub password: String,
    /// --mix with --port: the server's process id, for its CPU time (its descendants count).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// Arguments of `herald bench dispatch`.
#[derive(Debug, Args)]
pub struct BenchDispatchArgs {
    /// Events to commit and dispatch (with --latency: at most rate × 60).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Also measure a NATS JetStream sink at this URL (e.g. nats://127.0.0.1:4222).
    #[arg(long)]
    pub nats: Option<String>,
    /// Measure commit-to-webhook latency instead of throughput.
    #[arg(long)]
    pub latency: bool,
    /// Events per second for --latency.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Directory for the store and the output (default: a new one in the current directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep them afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of `herald bench lmtp`.
#[derive(Debug, Args)]
pub struct BenchLmtpArgs {
    /// Deliveries per run.
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Concurrent connection counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub connections: Vec<usize>,
    /// Message size in bytes.
    #[arg(long, default_value_t = 2048)]
    pub size: usize,
    /// Directory for the stores (default: a new one in the current directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the stores afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of `herald bench store`.
#[derive(Debug, Args)]
pub struct BenchStoreArgs {
    /// Deliveries per run.
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Concurrent writer counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub writers: Vec<usize>,
    /// Message size in bytes.
    #[arg(long, default_value_t = 2048)]
    pub size: usize,
    /// Directory for the benchmark stores (default: `herald-bench.<pid>` in the current
    /// directory — on the disk being measured, not a tmpfs). Removed afterwards unless --keep.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the benchmark stores.
    #[arg(long)]
    pub keep: bool,
    /// Store backends to measure, comma-separated: `embedded` (in --dir) and/or `postgres`
    /// (in --url, each run in a schema of its own, dropped afterwards unless --keep).
    #[arg(long, value_delimiter = ',', default_value = "embedded")]
    pub backend: Vec<BenchBackend>,
    /// The PostgreSQL database for `--backend postgres`.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub url: String,
}

/// A store backend `herald bench store` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    /// SQLite in the data directory.
    Embedded,
    /// PostgreSQL.
    Postgres,
}

/// Arguments of `herald bench check`.
#[derive(Debug, Args)]
pub struct BenchCheckArgs {
    /// Size of the generated file in MiB.
    #[arg(long, default_value_t = 1024)]
    pub mib: u64,
    /// Directory for the generated file (deleted afterwards unless --keep).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the generated file.
    #[arg(long)]
    pub keep: bool,
}
