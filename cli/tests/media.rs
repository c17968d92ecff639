//! Images an author uploads: stored cleaned of metadata, served with sized variants and a
//! long cache, recorded as `media.uploaded` (never the bytes), and every bad upload refused
//! with a clear code and nothing stored.

#[macro_use]
mod common;

use std::io::Cursor;
use std::time::Duration;

use common::TestStack;
use common::graphql::gql;
use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(an_author_uploads_an_image_and_readers_get_it_sized);
on_both_backends!(bad_uploads_are_refused_and_nothing_is_stored);

const READER_ID: &str = "01890000-0000-7000-8000-0000000000d1";
const REVOKED_ID: &str = "01890000-0000-7000-8000-0000000000d2";

fn base(stack: &TestStack) -> String {
    stack.graphql_url.trim_end_matches("/graphql").to_owned()
}

fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let image = DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 90])
    }));
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// A JPEG as a phone writes it: an EXIF segment with a GPS position after the SOI marker.
fn photo_with_gps(width: u32, height: u32) -> Vec<u8> {
    let plain = encoded(width, height, ImageFormat::Jpeg);
    let mut app1 = b"Exif\0\0II*\0\x08\0\0\0\0\0\0\0\0\0".to_vec();
    app1.extend_from_slice(b"GPSLatitude 52.3676N GPSLongitude 4.9041E");
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(app1.len() + 2).expect("short").to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn upload_as(
    stack: &TestStack,
    user: Option<&str>,
    filename: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let (content_type, body) = common::multipart("file", filename, "image/jpeg", bytes);
    send(stack, user, &content_type, body).await
}

async fn send(
    stack: &TestStack,
    user: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = stack
        .http
        .post(format!("{}/media", base(stack)))
        .header("content-type", content_type)
        .body(body);
    if let Some(user) = user {
        request = request.bearer_auth(common::token_for(user));
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })),
    )
}

/// `media.uploaded` events' payloads.
async fn uploads(db: &infra::db::Db) -> Vec<Value> {
    let rows: Vec<String> = infra::with_db!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT CAST(data AS TEXT) FROM events WHERE event_type = 'media.uploaded' ORDER BY occurred_at",
        )
        .fetch_all(pool)
        .await
        .expect("events")
    });
    rows.iter()
        .map(|r| serde_json::from_str(r).expect("json"))
        .collect()
}

/// Files in the media store.
fn stored_files(stack: &TestStack) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&stack.media_dir, &mut out);
    out
}

async fn an_author_uploads_an_image_and_readers_get_it_sized(stack: &TestStack) {
    let http = &stack.http;
    let photo = photo_with_gps(1400, 700);
    assert!(contains(&photo, b"GPSLatitude"));
    let (status, body) = upload_as(stack, Some(common::AUTHOR), "holiday.jpg", &photo).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(body["url"], format!("/media/{id}"));
    assert_eq!(body["width"], 1400);
    assert_eq!(body["height"], 700);
    assert_eq!(body["contentType"], "image/jpeg");

    // Served as stored: the right type, cached for good, without the GPS position.
    let url = format!("{}/media/{id}", base(stack));
    let response = http.get(&url).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // Never sniffed into a document, never able to run anything opened on its own.
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("sandbox")
    );
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    let served = response.bytes().await.expect("bytes");
    assert!(!contains(&served, b"GPSLatitude"));
    assert!(!contains(&served, b"Exif"));
    assert_eq!(served.len() as u64, body["size"].as_u64().expect("size"));
    let again = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Sized variants: narrower, same proportions; never wider than the image.
    for (w, expected) in [(320, (320, 160)), (640, (640, 320)), (1920, (1400, 700))] {
        let response = http.get(format!("{url}?w={w}")).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::OK, "w={w}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let image =
            image::load_from_memory(&response.bytes().await.expect("bytes")).expect("decodes");
        assert_eq!((image.width(), image.height()), expected, "w={w}");
    }
    let odd = http.get(format!("{url}?w=500")).send().await.expect("get");
    assert_eq!(odd.status(), StatusCode::BAD_REQUEST);
    let odd: Value = odd.json().await.expect("json");
    assert_eq!(odd["error"]["reason"], "BAD_WIDTH", "{odd}");
    let missing = http
        .get(format!("{}/media/{}", base(stack), uuid::Uuid::now_v7()))
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let garbage = http
        .get(format!("{}/media/..%2F..%2Finkwire.db", base(stack)))
        .send()
        .await
        .expect("get");
    assert_eq!(garbage.status(), StatusCode::NOT_FOUND);

    // Recorded in the author's stream: who, what, how big; never the bytes.
    let recorded = uploads(&stack.db).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(
        recorded[0],
        json!({ "media_id": id, "size": body["size"], "content_type": "image/jpeg", "width": 1400, "height": 700 })
    );
    let stream: i64 = infra::with_db!(&stack.db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM events WHERE event_type = 'media.uploaded' AND stream_id = $1",
        )
        .bind(common::AUTHOR.parse::<uuid::Uuid>().expect("uuid"))
        .fetch_one(pool)
        .await
        .expect("count")
    });
    assert_eq!(stream, 1);

    // In a post, the image comes with its sizes for the browser to choose from.
    let r = gql(
        http,
        &stack.graphql_url,
        Some(common::AUTHOR),
        "mutation($input: CreatePostInput!) { createPost(input: $input, waitForProjection: true) { post { id html } } }",
        json!({ "input": { "title": "With a photo", "body": format!("Look:\n\n![The bay at dusk](/media/{id})\n") } }),
    )
    .await;
    let html = r["data"]["createPost"]["post"]["html"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(html.contains(&format!("src=\"/media/{id}\"")), "{html}");
    assert!(
        html.contains(&format!("/media/{id}?w=640 640w")) && html.contains("sizes="),
        "{html}"
    );
}

async fn bad_uploads_are_refused_and_nothing_is_stored(stack: &TestStack) {
    common::add_user(&stack.db, READER_ID, "rita", "rita-password", &["reader"]).await;
    common::add_user(&stack.db, REVOKED_ID, "rob", "rob-password", &["reader"]).await;
    let users = stack.count("user_streams").await;
    common::eventually(Duration::from_secs(20), || async {
        stack.count("rm_users").await >= users
    })
    .await;
    let photo = encoded(64, 48, ImageFormat::Png);
    let expect =
        |what: &str, (status, body): (StatusCode, Value), want: StatusCode, reason: &str| {
            assert_eq!(status, want, "{what}: {body}");
            assert_eq!(body["error"]["reason"], reason, "{what}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{what}: {body}"
            );
        };
    let author = Some(common::AUTHOR);

    expect(
        "anonymous",
        upload_as(stack, None, "a.png", &photo).await,
        StatusCode::UNAUTHORIZED,
        "SIGN_IN_REQUIRED",
    );
    expect(
        "a reader",
        upload_as(stack, Some(READER_ID), "a.png", &photo).await,
        StatusCode::FORBIDDEN,
        "AUTHOR_ROLE_REQUIRED",
    );
    expect(
        "text named like a photo",
        upload_as(
            stack,
            author,
            "cat.jpg",
            b"I am not a cat, I am a text file.",
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "NOT_AN_IMAGE",
    );
    expect(
        "an SVG with a script",
        upload_as(
            stack,
            author,
            "logo.png",
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "SVG_NOT_ACCEPTED",
    );
    let mut bomb = encoded(1, 1, ImageFormat::Png);
    bomb[16..24].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]);
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    expect(
        "a PNG of 100,000 × 100,000 pixels",
        upload_as(stack, author, "bomb.png", &bomb).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IMAGE_TOO_LARGE",
    );
    let mut truncated = encoded(64, 48, ImageFormat::Jpeg);
    truncated.truncate(60);
    expect(
        "a broken JPEG",
        upload_as(stack, author, "broken.jpg", &truncated).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_IMAGE",
    );
    let mut huge = encoded(64, 48, ImageFormat::Png);
    huge.resize(11 << 20, 0);
    expect(
        "11 MB",
        upload_as(stack, author, "big.png", &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "FILE_TOO_LARGE",
    );
    let (content_type, body) = common::multipart("picture", "a.png", "image/png", &photo);
    expect(
        "no `file` field",
        send(stack, author, &content_type, body).await,
        StatusCode::BAD_REQUEST,
        "FILE_FIELD_REQUIRED",
    );
    expect(
        "JSON instead of a form",
        send(
            stack,
            author,
            "application/json",
            b"{\"file\":\"x\"}".to_vec(),
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "MULTIPART_REQUIRED",
    );
    // A user the read model does not know yet (as while the projector catches up) goes on to
    // the command service, which refuses a reader: the image it stored is removed again.
    infra::with_db!(&stack.db, |pool| {
        sqlx::query("DELETE FROM rm_users WHERE id = $1")
            .bind(REVOKED_ID.parse::<uuid::Uuid>().expect("uuid"))
            .execute(pool)
            .await
            .expect("delete");
    });
    expect(
        "a reader the read model has not seen",
        upload_as(stack, Some(REVOKED_ID), "a.png", &photo).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );

    assert!(uploads(&stack.db).await.is_empty());
    assert_eq!(stored_files(stack), Vec::<String>::new());

    // And the store is fine afterwards: a good upload still goes through.
    let (status, body) = upload_as(stack, author, "a.png", &photo).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["contentType"], "image/png");
    assert_eq!(stored_files(stack).len(), 1);
    assert_eq!(uploads(&stack.db).await.len(), 1);
}
