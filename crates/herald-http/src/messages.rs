//! `GET /messages?uri=…&expires=…&sig=…`: the message behind a signed link
//! (`vnd.herald.contentURL`), for subscribers whose content policy left the message out.
//!
//! The signature is the authorization, as a URLAUTH token is for an IMAP URL: it names exactly
//! one message (its IMAP URL, with UIDVALIDITY and UID) and an expiry, so no account password
//! is involved. A link whose signature does not verify, or has expired, gets 403; a message that
//! was expunged since, or a mailbox recreated under a new UIDVALIDITY, gets 404.

use crate::HttpState;
use crate::error::ApiError;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use herald_events::ImapUrl;
use herald_store::{SessionContext, StoreError};
use serde::Deserialize;

/// The query string of a signed link.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    uri: String,
    expires: i64,
    sig: String,
}

/// Serves the message a valid link names, as `message/rfc822`.
pub async fn get(
    State(state): State<HttpState>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, ApiError> {
    let Some(signer) = &state.content_links else {
        return Err(ApiError::NotFound("message links are not enabled".into()));
    };
    let now = herald_store::now_ms() / 1000;
    if !signer.verify(&q.uri, q.expires, &q.sig, now) {
        return Err(ApiError::Forbidden(
            "the link is invalid or has expired".into(),
        ));
    }
    let url: ImapUrl = q
        .uri
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("uri: {e}")))?;
    // The owner reads (the "Shared" namespace's pseudo-account for an owner-less URL): the
    // signature already proves the link was issued for this message.
    let (Some((owner, mailbox)), Some(validity), Some(uid)) = (
        herald_store::acl::url_mailbox(&url),
        url.uidvalidity,
        url.uid,
    ) else {
        return Err(ApiError::BadRequest("uri does not name one message".into()));
    };
    let ctx = SessionContext::user("http", owner);
    let gone = || ApiError::NotFound("the message no longer exists".into());
    let info = match state.store.mailbox(&ctx, mailbox).await {
        Ok(info) => info,
        Err(StoreError::NotFound { .. }) => return Err(gone()),
        Err(e) => return Err(e.into()),
    };
    if info.uidvalidity != validity {
        return Err(gone());
    }
    match state.store.read_message(&ctx, mailbox, uid).await {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response()),
        Err(StoreError::NotFound { .. }) => Err(gone()),
        Err(e) => Err(e.into()),
    }
}
