//! `GET /events/ws`: the live feed over WebSocket.
//!
//! Each event is one text message holding the event's JSON as committed; its
//! `vnd.herald.id` is what a client passes back as `?from=` (or `Last-Event-ID`) to resume
//! after it. Authentication, filters and resumption are checked before the upgrade, so every
//! refusal is an ordinary HTTP status. Idle periods carry a ping. Sending waits for the socket
//! to take each message, so a slow client slows its own feed and nothing queues in memory;
//! messages from the client are ignored except Close, and one over
//! [`MAX_CLIENT_MESSAGE`] ends the connection. On server shutdown the socket is closed
//! with 1001 (going away).

use crate::auth::Caller;
use crate::sse::{last_event_id, query};
use crate::stream::{Feed, Next, StreamQuery};
use crate::{ApiError, HttpState};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State, rejection::QueryRejection};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt as _, StreamExt as _};

/// The handler: checks everything, then upgrades.
pub async fn upgrade(
    State(state): State<HttpState>,
    caller: Caller,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let feed = Feed::open(&state, &caller, &q, last_event_id(&headers)?).await?;
    tracing::debug!(user = %caller.user, cursor = feed.cursor(), "http: WebSocket stream opened");
    // The client has nothing to say but Close (and pings): a message larger than this ends
    // the connection instead of being buffered (tungstenite would take 64 MiB).
    Ok(ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| run(socket, feed)))
}

/// Largest message a client may send on the event socket.
pub const MAX_CLIENT_MESSAGE: usize = 4096;

async fn run(socket: WebSocket, mut feed: Feed) {
    let (mut tx, mut rx) = socket.split();
    loop {
        tokio::select! {
            incoming = rx.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            next = feed.next() => {
                let out = match next {
                    Ok(Next::Event(item)) => Message::Text(item.json.into()),
                    Ok(Next::Idle) => Message::Ping(Default::default()),
                    Ok(Next::End) => close(close_code::AWAY, "server shutting down"),
                    Err(e) => {
                        tracing::warn!(error = %e, "http: WebSocket stream ended by a store error");
                        close(close_code::ERROR, "store error")
                    }
                };
                let last = matches!(out, Message::Close(_));
                if tx.send(out).await.is_err() || last {
                    return;
                }
            }
        }
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}
