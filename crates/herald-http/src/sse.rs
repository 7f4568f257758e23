//! `GET /events/stream`: the live feed as Server-Sent Events.
//!
//! Each event is one SSE message: `id:` = `vnd.herald.id`, `event:` = the event type, `data:` =
//! the event's JSON as committed. A browser's `EventSource` sends the last `id:` it saw back as
//! `Last-Event-ID` when it reconnects, and the feed resumes right after it (DESIGN §6). The
//! stream opens with a comment naming its starting cursor; idle periods carry `: keep-alive`
//! comments. The response body is pulled by hyper only as fast as the client reads, so the
//! feed reads the outbox at the client's pace (see [`crate::stream`]).

use crate::auth::Caller;
use crate::stream::{Feed, Next, StreamQuery, parse_last_event_id};
use crate::{ApiError, HttpState};
use axum::extract::{Query, State, rejection::QueryRejection};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, Sse};
use futures_util::Stream;
use std::convert::Infallible;

/// The name of the resume header.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Reads `Last-Event-ID`, if present.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get(LAST_EVENT_ID)
        .map(|v| parse_last_event_id(v.as_bytes()))
        .transpose()
}

/// The query string, or a 400 naming what is wrong with it.
pub(crate) fn query(
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<StreamQuery, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

fn message(item: crate::stream::Item) -> SseEvent {
    let e = SseEvent::default().id(item.id.to_string());
    // `event:` must be one line; a type that is not (never one Herald writes) is left out
    // rather than breaking the stream, and the JSON still says what it is.
    let e = if item.event_type.contains(['\n', '\r']) {
        e
    } else {
        e.event(item.event_type)
    };
    e.data(item.json)
}

/// The handler.
pub async fn stream(
    State(state): State<HttpState>,
    caller: Caller,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let q = query(q)?;
    let feed = Feed::open(&state, &caller, &q, last_event_id(&headers)?).await?;
    tracing::debug!(user = %caller.user, cursor = feed.cursor(), "http: SSE stream opened");
    let opening = SseEvent::default().comment(format!("herald events after {}", feed.cursor()));
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        match feed.next().await {
            Ok(Next::Event(item)) => Some((Ok(message(item)), feed)),
            Ok(Next::Idle) => Some((Ok(SseEvent::default().comment("keep-alive")), feed)),
            Ok(Next::End) => None,
            Err(e) => {
                tracing::warn!(error = %e, "http: SSE stream ended by a store error");
                None
            }
        }
    });
    let opening = futures_util::stream::once(async move { Ok(opening) });
    Ok(Sse::new(futures_util::StreamExt::chain(opening, events)))
}
