//! The typed command API has two implementations, the HTTP client a distributed gateway uses
//! and the command service itself in-process (`inkwire dev`): the same commands must get the
//! same answers and the same refusals through both, refusals as enums, and an answer carries the
//! events it recorded (what the gateway folds to answer before the projector catches up).

mod common;

use std::sync::Arc;

use command_api::{
    AddComment, Caller, CommandApi, CommandError, CreatePost, EditPost, ErrorCode, HttpCommands,
    PostCommand, Refusal,
};
use events::{Event, PostEvent, PostId, UserId};
use infra::db::Db;
use tokio_util::sync::CancellationToken;

fn author() -> Caller {
    Caller {
        user_id: Some(UserId(common::AUTHOR.parse().expect("id"))),
        client: Some("127.0.0.1".into()),
        ..Caller::default()
    }
}

fn create(slug: &str, title: &str) -> PostCommand {
    PostCommand::Create(CreatePost {
        id: None,
        title: title.into(),
        slug: slug.into(),
        body_markdown: "*hi*".into(),
        tags: vec!["rust".into()],
        allow_anonymous_comments: false,
    })
}

/// A fresh slug.
fn fresh_slug(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// What a refusal says, the message aside (words may differ by transport, codes may not).
fn refusal(e: CommandError) -> (ErrorCode, String, Option<String>) {
    match e {
        CommandError::Refused(Refusal {
            code,
            reason,
            field,
            ..
        }) => (code, reason, field),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn http_and_in_process_answer_alike() {
    infra::telemetry::init_tracing(false);
    let dir = common::TempDir::new();
    let db = Db::open_data_dir(&dir.0).await.expect("sqlite");
    let log = infra::log::embedded(db.clone(), "inkwire.posts", 1);
    let cancel = CancellationToken::new();
    let stack = inkwire::dev::Stack::start(
        db.clone(),
        log,
        "inkwire-projection",
        &query_gateway::GatewayConfig::new(common::keys()),
        None,
        &cancel,
    )
    .await
    .expect("stack");
    common::ensure_author(&db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let internal = stack.internal.clone();
    tokio::spawn(async move { axum::serve(listener, internal).await });
    let http = HttpCommands::new(&url, common::keys().callers().clone()).expect("client");
    let apis: [(&str, Arc<dyn CommandApi>); 2] = [
        ("http", Arc::new(http)),
        ("in-process", Arc::new(stack.commands.clone())),
    ];

    let mut refusals = Vec::new();
    for (name, api) in &apis {
        let slug = fresh_slug("typed");
        let accepted = api
            .post(&author(), create(&slug, "Typed"), None)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(accepted.version, 1, "{name}");
        assert_eq!(
            accepted.position,
            format!("{}@1", accepted.post_id),
            "{name}"
        );
        match accepted.events.as_slice() {
            [e] => match &e.event {
                Event::Post(PostEvent::PostDrafted(d)) => assert_eq!(
                    (d.slug.as_str(), d.title.as_str()),
                    (slug.as_str(), "Typed")
                ),
                other => panic!("{name}: {other:?}"),
            },
            other => panic!("{name}: {other:?}"),
        }
        let post = accepted.post_id;
        api.post(&author(), PostCommand::Publish(post), None)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let comment = api
            .post(
                &author(),
                PostCommand::AddComment(
                    post,
                    AddComment {
                        parent_id: None,
                        body: "first".into(),
                        author_name: None,
                    },
                ),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let id = comment.comment_id.expect("a comment id");
        assert!(
            matches!(&comment.events[..], [e] if matches!(&e.event, Event::Post(PostEvent::CommentAdded(c)) if c.comment_id == id)),
            "{name}: {:?}",
            comment.events
        );

        // Refusals, each through both transports.
        let mut seen = Vec::new();
        let empty_title = api
            .post(&author(), create(&fresh_slug("t"), ""), None)
            .await;
        seen.push(refusal(empty_title.expect_err("an empty title")));
        let stale = PostCommand::Edit(
            post,
            EditPost {
                expected_version: Some(1),
                title: Some("late".into()),
                ..EditPost::default()
            },
        );
        seen.push(refusal(
            api.post(&author(), stale, None).await.expect_err("stale"),
        ));
        let nowhere = PostCommand::Publish(PostId::new());
        seen.push(refusal(
            api.post(&author(), nowhere, None)
                .await
                .expect_err("no post"),
        ));
        let anonymous = create(&fresh_slug("a"), "A");
        let anonymous = api.post(&Caller::default(), anonymous, None).await;
        seen.push(refusal(anonymous.expect_err("anonymous")));
        let taken = api.post(&author(), create(&slug, "Again"), None).await;
        seen.push(refusal(taken.expect_err("a taken slug")));
        refusals.push(seen);
    }
    assert_eq!(refusals[0], refusals[1], "the two transports disagree");
    let codes: Vec<ErrorCode> = refusals[0].iter().map(|r| r.0).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::Validation,
            ErrorCode::Conflict,
            ErrorCode::NotFound,
            ErrorCode::Unauthenticated,
            ErrorCode::Conflict,
        ]
    );
    assert_eq!(refusals[0][0].2.as_deref(), Some("title"));
    cancel.cancel();
}
