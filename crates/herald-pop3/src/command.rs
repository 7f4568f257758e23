//! POP3 command lines (RFC 1939 §3, RFC 2449 CAPA, RFC 5034 AUTH): one line in, one typed
//! [`Command`] out. Keywords are case-insensitive; arguments are separated by single spaces.
//! RFC 2449 §4 limits a command line to 255 octets including CRLF; the framer enforces that.

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`.
    User(String),
    /// `PASS password` (the rest of the line: passwords may contain spaces).
    Pass(String),
    /// `AUTH mechanism [initial-response]`, or bare `AUTH` (list mechanisms).
    Auth {
        /// Mechanism name, upper-cased; `None` for a bare `AUTH`.
        mechanism: Option<String>,
        /// The SASL initial response (base64, or `=` for empty).
        initial: Option<String>,
    },
    /// `CAPA`.
    Capa,
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<usize>),
    /// `UIDL [msg]`.
    Uidl(Option<usize>),
    /// `RETR msg`.
    Retr(usize),
    /// `TOP msg n`.
    Top(usize, usize),
    /// `DELE msg`.
    Dele(usize),
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STLS` (RFC 2595).
    Stls,
}

/// The kinds of command: the index of a command's counter and latency histogram in
/// [`crate::COMMANDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `USER`
    User,
    /// `PASS`
    Pass,
    /// `AUTH`
    Auth,
    /// `CAPA`
    Capa,
    /// `STAT`
    Stat,
    /// `LIST`
    List,
    /// `UIDL`
    Uidl,
    /// `RETR`
    Retr,
    /// `TOP`
    Top,
    /// `DELE`
    Dele,
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `STLS`
    Stls,
}

impl CommandKind {
    /// Every kind's name, indexed by the kind.
    pub const NAMES: [&'static str; 14] = [
        "USER", "PASS", "AUTH", "CAPA", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET",
        "NOOP", "QUIT", "STLS",
    ];

    /// The command's keyword.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl Command {
    /// What kind of command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::User(_) => CommandKind::User,
            Command::Pass(_) => CommandKind::Pass,
            Command::Auth { .. } => CommandKind::Auth,
            Command::Capa => CommandKind::Capa,
            Command::Stat => CommandKind::Stat,
            Command::List(_) => CommandKind::List,
            Command::Uidl(_) => CommandKind::Uidl,
            Command::Retr(_) => CommandKind::Retr,
            Command::Top(..) => CommandKind::Top,
            Command::Dele(_) => CommandKind::Dele,
            Command::Rset => CommandKind::Rset,
            Command::Noop => CommandKind::Noop,
            Command::Quit => CommandKind::Quit,
            Command::Stls => CommandKind::Stls,
        }
    }
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Unknown keyword.
    #[error("unknown command")]
    Unknown,
    /// Wrong number or form of arguments.
    #[error("{0}")]
    Syntax(&'static str),
}

fn number(arg: &str) -> Result<usize, CommandError> {
    // RFC 1939: message numbers are decimal, and a message number is never 0.
    match arg.parse::<usize>() {
        Ok(n) if n > 0 && arg.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(CommandError::Syntax("message number expected")),
    }
}

/// Parses one command line (without CRLF).
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    let none = |c: Command| {
        if rest.is_some() {
            Err(CommandError::Syntax("no arguments expected"))
        } else {
            Ok(c)
        }
    };
    let optional_number = |c: fn(Option<usize>) -> Command| match args.as_slice() {
        [] => Ok(c(None)),
        [n] => Ok(c(Some(number(n)?))),
        _ => Err(CommandError::Syntax("at most one message number")),
    };
    match keyword.to_ascii_uppercase().as_str() {
        "USER" => match rest {
            Some(name) if !name.is_empty() => Ok(Command::User(name.to_owned())),
            _ => Err(CommandError::Syntax("USER needs a name")),
        },
        "PASS" => match rest {
            Some(pass) => Ok(Command::Pass(pass.to_owned())),
            None => Err(CommandError::Syntax("PASS needs a password")),
        },
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [m] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: None,
            }),
            [m, i] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: Some((*i).to_owned()),
            }),
            _ => Err(CommandError::Syntax("AUTH mechanism [initial-response]")),
        },
        "CAPA" => none(Command::Capa),
        "STAT" => none(Command::Stat),
        "LIST" => optional_number(Command::List),
        "UIDL" => optional_number(Command::Uidl),
        "RETR" => match args.as_slice() {
            [n] => Ok(Command::Retr(number(n)?)),
            _ => Err(CommandError::Syntax("RETR needs a message number")),
        },
        "TOP" => match args.as_slice() {
            [n, lines] => {
                let lines = lines
                    .parse::<usize>()
                    .ok()
                    .filter(|_| lines.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(CommandError::Syntax("TOP msg n: n is a number of lines"))?;
                Ok(Command::Top(number(n)?, lines))
            }
            _ => Err(CommandError::Syntax(
                "TOP needs a message number and a line count",
            )),
        },
        "DELE" => match args.as_slice() {
            [n] => Ok(Command::Dele(number(n)?)),
            _ => Err(CommandError::Syntax("DELE needs a message number")),
        },
        "RSET" => none(Command::Rset),
        "NOOP" => none(Command::Noop),
        "QUIT" => none(Command::Quit),
        "STLS" => none(Command::Stls),
        _ => Err(CommandError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse("user alice"), Ok(Command::User("alice".into())));
        assert_eq!(
            parse("PASS two words"),
            Ok(Command::Pass("two words".into()))
        );
        assert_eq!(parse("PASS "), Ok(Command::Pass(String::new())));
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("list 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse("TOP 2 0"), Ok(Command::Top(2, 0)));
        assert_eq!(
            parse("AUTH plain AGFsaWNlAHNlY3JldA=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGFsaWNlAHNlY3JldA==".into())
            })
        );
        assert_eq!(parse("Quit"), Ok(Command::Quit));
    }

    #[test]
    fn kinds_name_their_keyword() {
        for line in [
            "USER a", "PASS b", "AUTH", "CAPA", "STAT", "LIST", "UIDL", "RETR 1", "TOP 1 2",
            "DELE 1", "RSET", "NOOP", "QUIT", "STLS",
        ] {
            let kind = parse(line).unwrap().kind();
            assert_eq!(kind.name(), line.split(' ').next().unwrap());
        }
    }

    #[test]
    fn errors() {
        assert_eq!(parse("FOO"), Err(CommandError::Unknown));
        assert!(parse("RETR 0").is_err());
        assert!(parse("RETR -1").is_err());
        assert!(parse("RETR +1").is_err());
        assert!(parse("RETR").is_err());
        assert!(parse("DELE 1 2").is_err());
        assert!(parse("STAT now").is_err());
        assert!(parse("USER").is_err());
        assert!(parse("TOP 1").is_err());
        assert!(parse("").is_err());
    }
}
