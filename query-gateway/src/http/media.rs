//! `POST /media` (an author's image upload: multipart, field `file`) and `GET /media/{id}`
//! (the image, or `?w=` one of its sized variants, cached for good). Refusals are
//! `{"error": {"code", "reason", "message"}}` with the code's HTTP status, as the command API
//! answers; nothing is stored for a refused upload.
//!
//! An upload is checked and cleaned ([`media::clean`]), stored, and then recorded through the
//! command API (`media.uploaded` in the uploader's stream), which decides with the caller's
//! current roles; if it refuses, the stored image is removed again.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use command_api::{AccountCommand, CommandError, ErrorBody, ErrorCode, RecordMedia, Refusal};
use media::{MediaError, MediaLibrary};
use serde::Deserialize;
use uuid::Uuid;

use super::HttpState;
use super::graphql::authenticated_caller;

/// Bytes a multipart body may carry besides the file (boundaries, part headers).
pub(crate) const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The largest refused upload read to its end before the refusal is sent (larger ones are
/// refused at once, and their connection closed).
const DRAIN_AT_MOST: usize = 64 << 20;

/// Reads and drops `body`, for at most ten seconds.
async fn drain(body: Body) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// An error answer in the command API's shape.
pub(crate) fn refusal(code: ErrorCode, reason: &str, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        error: Refusal {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            field: None,
        },
    };
    (status, axum::Json(body)).into_response()
}

fn media_refusal(e: &MediaError) -> Response {
    let code = match e {
        MediaError::NotAnImage | MediaError::Svg | MediaError::UnsupportedFormat(_) => {
            ErrorCode::UnsupportedMediaType
        }
        MediaError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
        MediaError::TooManyPixels { .. } | MediaError::Corrupt(_) => ErrorCode::Validation,
        MediaError::BadWidth => ErrorCode::BadRequest,
        MediaError::Store(_) | MediaError::Location(..) | MediaError::Task => {
            ErrorCode::Unavailable
        }
    };
    if !e.is_bad_input() {
        tracing::error!(error = %e, "media store failed");
    }
    refusal(code, e.reason(), e.to_string())
}

fn no_store() -> Response {
    refusal(
        ErrorCode::Unavailable,
        "MEDIA_STORE_NOT_CONFIGURED",
        "this server keeps no images: start it with --media-store",
    )
}

/// `POST /media`.
pub(crate) async fn upload(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let Some(library) = state.media.as_ref() else {
        return no_store();
    };
    let started = Instant::now();
    let answer = stored_and_recorded(&state, library, request).await;
    let result = match answer.status() {
        StatusCode::CREATED => "stored",
        s if s.is_server_error() => "failed",
        _ => "refused",
    };
    state
        .metrics
        .media_uploads
        .with_label_values(&[result])
        .inc();
    state
        .metrics
        .media_upload_seconds
        .observe(started.elapsed().as_secs_f64());
    answer
}

async fn stored_and_recorded(
    state: &HttpState,
    library: &MediaLibrary,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // Who, before a byte of the body is read.
    let caller = match authenticated_caller(&state.keys, &parts) {
        Ok(caller) => caller,
        Err(bad) => {
            let (status, challenge) = bad.status_and_challenge();
            let code = if status == StatusCode::BAD_REQUEST {
                ErrorCode::BadRequest
            } else {
                ErrorCode::Unauthenticated
            };
            let mut answer = refusal(code, bad.reason(), bad.message());
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            return answer;
        }
    };
    let Some(user) = caller.user() else {
        let mut answer = refusal(
            ErrorCode::Unauthenticated,
            "SIGN_IN_REQUIRED",
            "sign in as an author to upload images",
        );
        answer
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return answer;
    };
    // The roles the read model has spare a reader's upload the decoding; the command service
    // decides with its own, current ones when the upload is recorded (so a user not yet in the
    // read model goes on to that decision).
    let roles = match state.read.users_by_ids(&[user]).await {
        Ok(rows) => rows.into_iter().next().map(|row| row.roles.0),
        Err(error) => {
            tracing::warn!(%error, "could not read the uploader's roles");
            return refusal(
                ErrorCode::Unavailable,
                "UNAVAILABLE",
                "the read model is unavailable; try again",
            );
        }
    };
    if roles.is_some_and(|roles| !roles.iter().any(|r| r == "author" || r == "admin")) {
        return refusal(
            ErrorCode::Forbidden,
            "AUTHOR_ROLE_REQUIRED",
            "only authors may upload images",
        );
    }
    let max = library.limits().max_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > max + MULTIPART_OVERHEAD) {
        // Read what the client is sending before answering, when it is not absurdly large:
        // closing on a client still writing makes it see a broken connection instead of this
        // answer (a browser shows a network error rather than "too large").
        if n <= DRAIN_AT_MOST {
            drain(body).await;
        }
        return media_refusal(&MediaError::TooLarge { max });
    }
    let mut form = match Multipart::from_request(Request::from_parts(parts, body), &()).await {
        Ok(form) => form,
        Err(_) => {
            return refusal(
                ErrorCode::UnsupportedMediaType,
                "MULTIPART_REQUIRED",
                "send the image as multipart/form-data, in a field named `file`",
            );
        }
    };
    let file = match read_file(&mut form, max).await {
        Ok(Some(file)) => file,
        Ok(None) => {
            return refusal(
                ErrorCode::BadRequest,
                "FILE_FIELD_REQUIRED",
                "the form has no field named `file`",
            );
        }
        Err(answer) => return answer,
    };
    let stored = match library.store(file).await {
        Ok(stored) => stored,
        Err(e) => return media_refusal(&e),
    };
    let command = AccountCommand::RecordMedia(RecordMedia {
        media_id: stored.id,
        size: stored.size,
        content_type: stored.format.content_type().to_owned(),
        width: stored.width,
        height: stored.height,
    });
    if let Err(e) = state
        .commands
        .account(&caller.for_commands(), command)
        .await
    {
        library.discard(stored.id).await;
        return match e {
            CommandError::Refused(r) => refusal(r.code, &r.reason, r.message),
            CommandError::Unavailable => refusal(
                ErrorCode::Unavailable,
                "UNAVAILABLE",
                "the command service is unavailable; try again",
            ),
            CommandError::Internal => refusal(ErrorCode::Internal, "INTERNAL", "internal error"),
        };
    }
    let url = format!("{}{}", render::MEDIA_PATH, stored.id);
    let mut answer = (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "id": stored.id,
            "url": url,
            "width": stored.width,
            "height": stored.height,
            "contentType": stored.format.content_type(),
            "size": stored.size,
        })),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&url) {
        answer.headers_mut().insert(header::LOCATION, location);
    }
    answer
}

/// The bytes of the form's `file` field, refusing more than `max` of them as they arrive.
async fn read_file(form: &mut Multipart, max: usize) -> Result<Option<bytes::Bytes>, Response> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            media_refusal(&MediaError::TooLarge { max })
        } else {
            refusal(ErrorCode::BadRequest, "BAD_MULTIPART", e.body_text())
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        if field.name() != Some("file") {
            continue;
        }
        let mut file = bytes::BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            if file.len() + chunk.len() > max {
                return Err(media_refusal(&MediaError::TooLarge { max }));
            }
            file.extend_from_slice(&chunk);
        }
        return Ok(Some(file.freeze()));
    }
    Ok(None)
}

/// `?w=`.
#[derive(Debug, Deserialize)]
pub(crate) struct Size {
    w: Option<u32>,
}

/// `GET /media/{id}`.
pub(crate) async fn serve(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<String>,
    size: Result<Query<Size>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Some(library) = state.media.as_ref() else {
        return no_store();
    };
    let not_found = || refusal(ErrorCode::NotFound, "NO_SUCH_IMAGE", "no such image");
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found();
    };
    let Ok(Query(Size { w: width })) = size else {
        return media_refusal(&MediaError::BadWidth);
    };
    // Images never change: the id (and width) is the version.
    let etag = match width {
        Some(w) => format!("\"{id}-w{w}\""),
        None => format!("\"{id}\""),
    };
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut answer = if cached {
        // The client holds exactly this image: nothing to read.
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let found = match library.fetch(id, width).await {
            Ok(Some(found)) => found,
            Ok(None) => return not_found(),
            Err(e) => return media_refusal(&e),
        };
        let mut answer = Response::new(Body::from(found.bytes));
        answer.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(found.format.content_type()),
        );
        answer
    };
    let h = answer.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // An image, never a document: nothing in it runs, even opened on its own.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    answer
}
