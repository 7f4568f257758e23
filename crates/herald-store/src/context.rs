//! [`SessionContext`]: who asks, through which service, from where.
//!
//! The protocol layers authenticate (see `Store::authenticate`) and then pass this context with
//! every operation; the store copies it into the events it generates (`user`, `admin`,
//! `service`, `clientIP`, `clientPort`, `serverDomain`, `serverPort`). Keeping it a plain value
//! means the store never holds session state and a PostgreSQL backend receives the same data.

use std::net::IpAddr;

/// The session an operation comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionContext {
    /// Authorization identity: the account the session acts on (`None` for LMTP and admin tools).
    pub user: Option<String>,
    /// Authentication identity, when it differs (an admin acting as `user`); becomes `admin`.
    pub auth_user: Option<String>,
    /// `imap`, `pop`, `lmtp`, `http` or `admincli`.
    pub service: String,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The client's port.
    pub client_port: Option<u16>,
    /// The name or address the client used to reach the server.
    pub server_domain: Option<String>,
    /// The port the client connected to.
    pub server_port: Option<u16>,
}

impl SessionContext {
    /// A context for a service with no user yet (LMTP) or no network peer.
    pub fn service(service: impl Into<String>) -> SessionContext {
        SessionContext {
            service: service.into(),
            ..SessionContext::default()
        }
    }

    /// A network session of `service` with no user yet: the client's address and the local
    /// address it connected to become clientIP/clientPort and serverDomain/serverPort.
    pub fn connection(
        service: impl Into<String>,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
    ) -> SessionContext {
        SessionContext {
            client_ip: Some(client.ip()),
            client_port: Some(client.port()),
            server_domain: Some(server.ip().to_string()),
            server_port: Some(server.port()),
            ..SessionContext::service(service)
        }
    }

    /// The context of the `herald` command-line admin tools (`service` = `admincli`).
    pub fn admin_cli() -> SessionContext {
        SessionContext::service("admincli")
    }

    /// A session of `service` acting as `user`.
    pub fn user(service: impl Into<String>, user: impl Into<String>) -> SessionContext {
        SessionContext {
            user: Some(user.into()),
            ..SessionContext::service(service)
        }
    }

    /// This context with the authentication identity set (an admin acting as the user).
    pub fn with_auth_user(mut self, auth_user: impl Into<String>) -> SessionContext {
        self.auth_user = Some(auth_user.into());
        self
    }

    /// The account the session acts on.
    pub(crate) fn account(&self) -> crate::error::Result<&str> {
        self.user.as_deref().ok_or(crate::error::StoreError::NoUser)
    }
}

/// The outcome of a successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Authorization identity (the account acted on).
    pub user: String,
    /// Authentication identity (who proved their password).
    pub auth_user: String,
    /// True when `auth_user` is an administrator.
    pub admin: bool,
}

impl Identity {
    /// A session context for this identity; `auth_user` is set only when it differs.
    pub fn context(&self, service: impl Into<String>) -> SessionContext {
        let ctx = SessionContext::user(service, self.user.clone());
        if self.auth_user == self.user {
            ctx
        } else {
            ctx.with_auth_user(self.auth_user.clone())
        }
    }
}
