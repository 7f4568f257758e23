//! The 27 registered parameter names (RFC 5423 §5) and the Rust type each value has.
//!
//! One table, [`for_each_param!`], is the single source of truth: the `Event` struct's fields,
//! [`ParamName`], the JSON encoder and decoder and the README's parameter reference are all
//! generated from it, so a parameter cannot be added to one and forgotten in another.
//! The table's order is the canonical order in which parameters are written to JSON.

/// Calls `$m!` with the parameter table: `Variant, field, "wireName", Type, "description";`.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_param {
    ($m:ident) => {
        $m! {
            Timestamp, timestamp, "timestamp", $crate::Timestamp,
                "When the change happened: RFC 3339 local time with UTC offset, milliseconds. One per transaction; not for ordering (use `vnd.herald.id`).";
            Service, service, "service", String,
                "The service that caused the event: `imap`, `pop`, `lmtp`, `http` or `admincli`.";
            Uri, uri, "uri", $crate::ImapUrl,
                "IMAP URL (RFC 5092) of the server, mailbox or message; message-level events carry `;UIDVALIDITY=`, one-message events `;UID=` too.";
            MailboxId, mailbox_id, "mailboxID", $crate::ImapUrl,
                "IMAP URL of the mailbox the event affects; for MailboxRename, the new name.";
            OldMailboxId, old_mailbox_id, "oldMailboxID", $crate::ImapUrl,
                "IMAP URL of the old name of a renamed mailbox.";
            User, user, "user", String,
                "The authorization identity of the session that caused the event.";
            Admin, admin, "admin", String,
                "The authentication identity, present only when it differs from `user` (an administrator acting as the user).";
            Uidset, uidset, "uidset", $crate::UidSet,
                "The UIDs affected, as a compressed IMAP sequence-set (`1:3,5`).";
            FlagNames, flag_names, "flagNames", $crate::FlagNames,
                "Space-separated flag and keyword names set or cleared (set at append or delivery for MessageAppend/MessageNew); never `\\Recent`.";
            Messages, messages, "messages", u64,
                "Number of messages in the mailbox after the change (for quota events, in the account).";
            Uidnext, uidnext, "uidnext", u32,
                "The mailbox's UIDNEXT after the change.";
            MessageSize, message_size, "messageSize", u64,
                "Size of the message in octets, as FETCH RFC822.SIZE reports it.";
            Modseq, modseq, "modseq", u64,
                "The RFC 7162 mod-sequence (63-bit) of the change; on events about one message.";
            DiskQuota, disk_quota, "diskQuota", u64,
                "Storage quota limit in kilobytes (1024 octets).";
            DiskUsed, disk_used, "diskUsed", u64,
                "Storage counted against the quota, in kilobytes.";
            MaxMessages, max_messages, "maxMessages", u64,
                "Message-count quota limit.";
            Envelope, envelope, "envelope", String,
                "The SMTP envelope of a delivery: the MAIL FROM line and this recipient's RCPT TO line, CRLF-terminated, with ESMTP parameters.";
            BodyStructure, body_structure, "bodyStructure", String,
                "The message's IMAP BODYSTRUCTURE, as FETCH BODYSTRUCTURE shows it; on MessageNew and MessageAppend, for a subscription whose `params` name it (computed only then).";
            MessageContent, message_content, "messageContent", String,
                "The message itself, when the subscription's content policy allows its size.";
            Tags, tags, "tags", Vec<String>,
                "The tags of the subscription that delivered the event (a JSON array of strings).";
            ClientIp, client_ip, "clientIP", std::net::IpAddr,
                "IPv4 or IPv6 address of the client that caused the event.";
            ClientPort, client_port, "clientPort", u16,
                "The client's TCP port.";
            ServerDomain, server_domain, "serverDomain", String,
                "The host name or IP address the client used to reach Herald.";
            ServerPort, server_port, "serverPort", u16,
                "The port the client connected to.";
            ServerFqdn, server_fqdn, "serverFQDN", String,
                "The fully qualified name of the Herald server (`[server] hostname`).";
            Pid, pid, "pid", u32,
                "Process id of the Herald server that generated the event.";
            Process, process, "process", String,
                "Name of the process that generated the event (`herald`).";
        }
    };
}

macro_rules! define_param_name {
    ($($variant:ident, $field:ident, $wire:literal, $ty:ty, $doc:literal;)*) => {
        /// A registered parameter name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ParamName {
            $(
                #[doc = $doc]
                $variant,
            )*
        }

        impl ParamName {
            /// Every registered parameter, in the canonical JSON order.
            pub const ALL: [ParamName; 27] = [$(ParamName::$variant),*];

            /// The wire name, spelled as the registry spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ParamName::$variant => $wire,)*
                }
            }

            /// What the parameter holds and when Herald includes it.
            pub fn description(self) -> &'static str {
                match self {
                    $(ParamName::$variant => $doc,)*
                }
            }

            /// The registered parameter with exactly this spelling.
            pub fn from_name(name: &str) -> Option<ParamName> {
                match name {
                    $($wire => Some(ParamName::$variant),)*
                    _ => None,
                }
            }

            /// The position in [`ParamName::ALL`], used as a bit index.
            pub(crate) fn index(self) -> u32 {
                self as u32
            }
        }
    };
}

for_each_param!(define_param_name);

impl ParamName {
    /// The JSON type of the value, for documentation.
    pub fn json_type(self) -> &'static str {
        use ParamName::*;
        match self {
            Messages | Uidnext | MessageSize | Modseq | DiskQuota | DiskUsed | MaxMessages
            | ClientPort | ServerPort | Pid => "number",
            Tags => "array of strings",
            Uri | MailboxId | OldMailboxId => "string (IMAP URL)",
            Timestamp => "string (RFC 3339)",
            Uidset => "string (UID set)",
            ClientIp => "string (IP address)",
            _ => "string",
        }
    }
}

impl std::fmt::Display for ParamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_seven_registered_names() {
        let mut names: Vec<&str> = ParamName::ALL.iter().map(|p| p.as_str()).collect();
        names.sort_unstable();
        let registry = [
            "admin",
            "bodyStructure",
            "clientIP",
            "clientPort",
            "diskQuota",
            "diskUsed",
            "envelope",
            "flagNames",
            "mailboxID",
            "maxMessages",
            "messageContent",
            "messageSize",
            "messages",
            "modseq",
            "oldMailboxID",
            "pid",
            "process",
            "serverDomain",
            "serverFQDN",
            "serverPort",
            "service",
            "tags",
            "timestamp",
            "uidnext",
            "uidset",
            "uri",
            "user",
        ];
        let mut registry = registry.to_vec();
        registry.sort_unstable();
        assert_eq!(names, registry);
        for p in ParamName::ALL {
            assert_eq!(ParamName::from_name(p.as_str()), Some(p));
            assert_eq!(ParamName::ALL[p.index() as usize], p);
        }
        assert_eq!(
            ParamName::from_name("MailboxID"),
            None,
            "names are case-sensitive"
        );
    }
}
