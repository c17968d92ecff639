//! Given/when/then tests of the post rules: pure, no I/O.

use events::{CommentAdded, CommentId, PostDrafted, PostEvent, PostId, PostPublished, UserId};
use eventually_core::aggregate::{Aggregate, AggregateExt};

use super::commands::{AddComment, Caller, DraftPost, EditPost, PostCommand};
use super::{Authored, PostAggregate, PostError, PostState};

struct Given(PostState);

fn given(events: Vec<PostEvent>) -> Given {
    Given(PostAggregate::fold(PostState::default(), events.into_iter()).expect("events fold"))
}

impl Given {
    fn when(self, caller: &Caller, command: PostCommand) -> Result<Vec<PostEvent>, PostError> {
        let id = PostId::new();
        futures::executor::block_on(PostAggregate.handle(
            &id,
            &self.0,
            Authored {
                caller: caller.clone(),
                command,
            },
        ))
        .map(|e| e.unwrap_or_default())
    }
}

fn ada() -> Caller {
    Caller {
        user_id: Some(UserId(uuid::Uuid::from_u128(1))),
        name: Some("Ada".into()),
        roles: vec!["reader".into(), "author".into(), "moderator".into()],
    }
}

fn grace() -> Caller {
    Caller {
        user_id: Some(UserId(uuid::Uuid::from_u128(2))),
        name: Some("Grace".into()),
        roles: vec!["reader".into()],
    }
}

fn drafted(allow_anonymous: bool) -> PostEvent {
    PostEvent::PostDrafted(PostDrafted {
        author_id: ada().user_id.expect("ada is signed in"),
        title: "Hello".into(),
        slug: "hello".into(),
        body_markdown: "body".into(),
        tags: vec![],
        allow_anonymous_comments: allow_anonymous,
    })
}

fn published() -> PostEvent {
    PostEvent::PostPublished(PostPublished {})
}

fn comment(id: u128, author: &Caller) -> PostEvent {
    PostEvent::CommentAdded(CommentAdded {
        comment_id: CommentId(uuid::Uuid::from_u128(id)),
        parent_id: None,
        author_id: author.user_id,
        author_name: "x".into(),
        body: "hi".into(),
    })
}

fn add(id: u128, parent: Option<u128>, body: &str) -> PostCommand {
    PostCommand::AddComment(AddComment {
        comment_id: CommentId(uuid::Uuid::from_u128(id)),
        parent_id: parent.map(|p| CommentId(uuid::Uuid::from_u128(p))),
        body: body.into(),
        author_name: None,
    })
}

#[test]
fn drafting_a_post_records_its_fields_normalised() {
    let events = given(vec![])
        .when(
            &ada(),
            PostCommand::DraftPost(DraftPost {
                title: "  Hello  ".into(),
                slug: "hello".into(),
                body_markdown: "# Hi".into(),
                tags: vec!["Rust".into(), "rust".into()],
                allow_anonymous_comments: false,
            }),
        )
        .expect("accepted");
    let [PostEvent::PostDrafted(e)] = events.as_slice() else {
        panic!("expected one PostDrafted, got {events:?}");
    };
    assert_eq!(e.title, "Hello");
    assert_eq!(e.tags, vec!["rust".to_owned()]);
}

#[test]
fn drafting_needs_a_signed_in_author_and_a_new_stream() {
    let cmd = PostCommand::DraftPost(DraftPost {
        title: "t".into(),
        slug: "s".into(),
        body_markdown: String::new(),
        tags: vec![],
        allow_anonymous_comments: false,
    });
    assert_eq!(
        given(vec![]).when(&Caller::default(), cmd.clone()),
        Err(PostError::Unauthenticated)
    );
    assert_eq!(
        given(vec![drafted(false)]).when(&ada(), cmd),
        Err(PostError::PostAlreadyExists)
    );
}

#[test]
fn over_long_titles_and_bad_slugs_are_refused() {
    let long = "x".repeat(201);
    let err = given(vec![drafted(false)])
        .when(
            &ada(),
            PostCommand::EditPost(EditPost {
                title: Some(long),
                ..EditPost::default()
            }),
        )
        .unwrap_err();
    assert_eq!(err.reason(), "INVALID_FIELD");
    let err = given(vec![drafted(false)])
        .when(
            &ada(),
            PostCommand::EditPost(EditPost {
                slug: Some("Not A Slug".into()),
                ..EditPost::default()
            }),
        )
        .unwrap_err();
    assert!(matches!(err, PostError::Invalid { field: "slug", .. }));
}

#[test]
fn no_comment_on_an_unpublished_or_deleted_or_missing_post() {
    assert_eq!(
        given(vec![drafted(false)]).when(&grace(), add(1, None, "hi")),
        Err(PostError::PostNotPublished)
    );
    assert_eq!(
        given(vec![
            drafted(false),
            published(),
            PostEvent::PostDeleted(events::PostDeleted {})
        ])
        .when(&grace(), add(1, None, "hi")),
        Err(PostError::PostDeleted)
    );
    assert_eq!(
        given(vec![]).when(&grace(), add(1, None, "hi")),
        Err(PostError::PostNotFound)
    );
}

#[test]
fn a_comment_on_a_published_post_is_accepted() {
    let events = given(vec![drafted(false), published()])
        .when(&grace(), add(7, None, " hi "))
        .expect("accepted");
    assert_eq!(
        events,
        vec![PostEvent::CommentAdded(CommentAdded {
            comment_id: CommentId(uuid::Uuid::from_u128(7)),
            parent_id: None,
            author_id: grace().user_id,
            author_name: "Grace".into(),
            body: "hi".into(),
        })]
    );
}

#[test]
fn no_reply_to_a_comment_of_another_post() {
    // Comment 99 does not belong to this post's stream.
    assert_eq!(
        given(vec![drafted(false), published(), comment(1, &grace())])
            .when(&grace(), add(2, Some(99), "re")),
        Err(PostError::ParentNotInPost)
    );
    assert!(
        given(vec![drafted(false), published(), comment(1, &grace())])
            .when(&grace(), add(2, Some(1), "re"))
            .is_ok()
    );
}

#[test]
fn anonymous_comments_only_where_the_post_allows_them_and_with_a_name() {
    let anon = Caller::default();
    assert_eq!(
        given(vec![drafted(false), published()]).when(&anon, add(1, None, "hi")),
        Err(PostError::AnonymousNotAllowed)
    );
    let err = given(vec![drafted(true), published()])
        .when(&anon, add(1, None, "hi"))
        .unwrap_err();
    assert!(matches!(
        err,
        PostError::Invalid {
            field: "author_name",
            ..
        }
    ));
    let named = PostCommand::AddComment(AddComment {
        comment_id: CommentId(uuid::Uuid::from_u128(1)),
        parent_id: None,
        body: "hi".into(),
        author_name: Some("Visitor".into()),
    });
    assert!(
        given(vec![drafted(true), published()])
            .when(&anon, named)
            .is_ok()
    );
}

#[test]
fn no_edit_of_a_deleted_comment_and_only_by_its_author() {
    let id = CommentId(uuid::Uuid::from_u128(1));
    let history = vec![drafted(false), published(), comment(1, &grace())];
    let edit = PostCommand::EditComment {
        comment_id: id,
        body: "new".into(),
    };
    assert!(matches!(
        given(history.clone()).when(&ada(), edit.clone()),
        Err(PostError::Forbidden(_))
    ));
    assert!(given(history.clone()).when(&grace(), edit.clone()).is_ok());
    let mut deleted = history;
    deleted.push(PostEvent::CommentDeleted(events::CommentDeleted {
        comment_id: id,
    }));
    assert_eq!(
        given(deleted).when(&grace(), edit),
        Err(PostError::CommentDeleted)
    );
}

#[test]
fn hiding_needs_a_reason_and_restoring_needs_a_hidden_comment() {
    let id = CommentId(uuid::Uuid::from_u128(1));
    let history = vec![drafted(false), published(), comment(1, &grace())];
    let err = given(history.clone())
        .when(
            &ada(),
            PostCommand::HideComment {
                comment_id: id,
                reason: " ".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        PostError::Invalid {
            field: "reason",
            ..
        }
    ));
    assert_eq!(
        given(history.clone()).when(&ada(), PostCommand::RestoreComment { comment_id: id }),
        Err(PostError::CommentNotHidden)
    );
    assert!(matches!(
        given(history).when(
            &grace(),
            PostCommand::HideComment {
                comment_id: id,
                reason: "spam".into()
            }
        ),
        Err(PostError::Forbidden(_))
    ));
}

#[test]
fn only_the_author_publishes_and_not_twice() {
    assert!(matches!(
        given(vec![drafted(false)]).when(&grace(), PostCommand::PublishPost),
        Err(PostError::Forbidden(_))
    ));
    assert_eq!(
        given(vec![drafted(false), published()]).when(&ada(), PostCommand::PublishPost),
        Err(PostError::AlreadyPublished)
    );
    assert_eq!(
        given(vec![drafted(false)]).when(&ada(), PostCommand::UnpublishPost),
        Err(PostError::PostNotPublished)
    );
}

#[test]
fn a_schedule_is_carried_out_once_and_only_as_it_stands() {
    use chrono::{TimeZone, Utc};
    let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
    let at = now + chrono::Duration::hours(1);
    let schedule = |publish_at| PostCommand::SchedulePost { publish_at, now };
    assert!(matches!(
        given(vec![drafted(false)]).when(&ada(), schedule(now)),
        Err(PostError::Invalid {
            field: "publish_at",
            ..
        })
    ));
    assert!(matches!(
        given(vec![drafted(false)]).when(&grace(), schedule(at)),
        Err(PostError::Forbidden(_))
    ));
    assert_eq!(
        given(vec![drafted(false), published()]).when(&ada(), schedule(at)),
        Err(PostError::AlreadyPublished)
    );
    assert_eq!(
        given(vec![drafted(false)]).when(&ada(), PostCommand::UnschedulePost),
        Err(PostError::NotScheduled)
    );
    let scheduled = || {
        let events = given(vec![drafted(false)])
            .when(&ada(), schedule(at))
            .expect("scheduled");
        let mut all = vec![drafted(false)];
        all.extend(events);
        all
    };
    let carry_out = |publish_at| PostCommand::PublishScheduled { publish_at };
    assert_eq!(
        given(scheduled()).when(&Caller::scheduler(), carry_out(at)),
        Ok(vec![published()])
    );
    // Once published (by the scheduler or by hand), nothing more happens.
    let mut done = scheduled();
    done.push(published());
    assert_eq!(
        given(done).when(&Caller::scheduler(), carry_out(at)),
        Ok(vec![])
    );
    // A schedule moved or cancelled is not carried out at its old time.
    assert_eq!(
        given(scheduled()).when(
            &Caller::scheduler(),
            carry_out(at - chrono::Duration::minutes(5))
        ),
        Ok(vec![])
    );
    let mut cancelled = scheduled();
    cancelled.push(PostEvent::PostUnscheduled(events::PostUnscheduled {}));
    assert_eq!(
        given(cancelled).when(&Caller::scheduler(), carry_out(at)),
        Ok(vec![])
    );
}

#[test]
fn roles_decide_who_writes_posts_and_who_moderates() {
    let id = CommentId(uuid::Uuid::from_u128(1));
    let draft = PostCommand::DraftPost(super::commands::DraftPost {
        title: "T".into(),
        slug: "t".into(),
        body_markdown: String::new(),
        tags: vec![],
        allow_anonymous_comments: false,
    });
    assert!(matches!(
        given(vec![]).when(&grace(), draft.clone()),
        Err(PostError::Forbidden(_))
    ));
    assert!(given(vec![]).when(&ada(), draft).is_ok());
    let history = vec![drafted(false), published(), comment(1, &grace())];
    let admin = Caller {
        user_id: Some(UserId(uuid::Uuid::from_u128(3))),
        name: Some("Root".into()),
        roles: vec!["reader".into(), "admin".into()],
    };
    let moderator = Caller {
        user_id: Some(UserId(uuid::Uuid::from_u128(4))),
        name: Some("Mod".into()),
        roles: vec!["reader".into(), "moderator".into()],
    };
    assert!(
        given(history.clone())
            .when(&admin, PostCommand::UnpublishPost)
            .is_ok(),
        "admins edit any post"
    );
    assert!(matches!(
        given(history.clone()).when(&moderator, PostCommand::UnpublishPost),
        Err(PostError::Forbidden(_))
    ));
    let hide = PostCommand::HideComment {
        comment_id: id,
        reason: "spam".into(),
    };
    assert!(
        given(history.clone())
            .when(&moderator, hide.clone())
            .is_ok(),
        "moderators hide on any post"
    );
    assert!(matches!(
        given(history).when(&Caller::default(), hide),
        Err(PostError::Unauthenticated)
    ));
}

fn react(comment: Option<u128>, kind: &str, on: bool) -> PostCommand {
    PostCommand::React {
        comment_id: comment.map(|c| CommentId(uuid::Uuid::from_u128(c))),
        kind: kind.into(),
        on,
    }
}

#[test]
fn a_reader_reacts_once_per_kind_and_repeating_changes_nothing() {
    let mut history = vec![drafted(false), published(), comment(7, &ada())];
    let first = given(history.clone())
        .when(&grace(), react(Some(7), "heart", true))
        .expect("accepted");
    assert_eq!(
        first,
        vec![PostEvent::ReactionAdded(events::Reaction {
            comment_id: Some(CommentId(uuid::Uuid::from_u128(7))),
            user_id: grace().user_id.expect("signed in"),
            kind: "heart".into(),
        })]
    );
    history.extend(first);
    // The same click again, and a hundred more: nothing.
    for _ in 0..100 {
        assert_eq!(
            given(history.clone()).when(&grace(), react(Some(7), "heart", true)),
            Ok(vec![])
        );
    }
    // Another kind, another reader, the post itself: each its own reaction.
    assert_eq!(
        given(history.clone())
            .when(&grace(), react(Some(7), "like", true))
            .map(|e| e.len()),
        Ok(1)
    );
    assert_eq!(
        given(history.clone())
            .when(&ada(), react(Some(7), "heart", true))
            .map(|e| e.len()),
        Ok(1)
    );
    assert_eq!(
        given(history.clone())
            .when(&grace(), react(None, "heart", true))
            .map(|e| e.len()),
        Ok(1)
    );
    // Taken back once; taking back again, or what was never given, records nothing.
    let removed = given(history.clone())
        .when(&grace(), react(Some(7), "heart", false))
        .expect("accepted");
    assert!(matches!(removed[..], [PostEvent::ReactionRemoved(_)]));
    history.extend(removed);
    assert_eq!(
        given(history.clone()).when(&grace(), react(Some(7), "heart", false)),
        Ok(vec![])
    );
    assert_eq!(
        given(history).when(&grace(), react(None, "wow", false)),
        Ok(vec![])
    );
}

#[test]
fn reactions_need_a_signed_in_reader_a_known_kind_and_a_shown_comment() {
    let history = vec![drafted(true), published(), comment(7, &ada())];
    let anonymous = Caller::default();
    assert_eq!(
        given(history.clone()).when(&anonymous, react(Some(7), "like", true)),
        Err(PostError::Unauthenticated)
    );
    assert!(matches!(
        given(history.clone()).when(&grace(), react(Some(7), "thumbsdown", true)),
        Err(PostError::Invalid { field: "kind", .. })
    ));
    assert_eq!(
        given(history.clone()).when(&grace(), react(Some(8), "like", true)),
        Err(PostError::CommentNotFound)
    );
    let mut hidden = history.clone();
    hidden.push(PostEvent::CommentHidden(events::CommentHidden {
        comment_id: CommentId(uuid::Uuid::from_u128(7)),
        reason: "spam".into(),
    }));
    assert_eq!(
        given(hidden).when(&grace(), react(Some(7), "like", true)),
        Err(PostError::CommentHidden)
    );
    assert_eq!(
        given(vec![drafted(false)]).when(&grace(), react(None, "like", true)),
        Err(PostError::PostNotPublished)
    );
}
