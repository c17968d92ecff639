//! `inkwire dev --demo`: a living blog at first start. Creates an author, a moderator and a
//! reader (passwords printed once), three published posts with markdown and tags, and a few
//! comments with a reply, through the same command paths as real requests. Does nothing when the
//! demo author already exists, so restarts keep the data as it is.

use command_service::domain::post::Authored;
use command_service::domain::post::commands::{AddComment, Caller, DraftPost, PostCommand};
use command_service::handler::{CommandBus, RequestMeta};
use command_service::users::{Registration, UserService, UserView};
use events::{CommentId, PostId, UserId};

/// The demo accounts: (username, display name, password, roles).
pub const ACCOUNTS: &[(&str, &str, &str, &[&str])] = &[
    ("ada", "Ada Lovelace", "ada-demo-password", &["author"]),
    (
        "grace",
        "Grace Hopper",
        "grace-demo-password",
        &["moderator"],
    ),
    ("rita", "Rita Reader", "rita-demo-password", &[]),
];

const POSTS: &[(&str, &str, &[&str], &str)] = &[
    (
        "Welcome to Inkwire",
        "welcome-to-inkwire",
        &["inkwire", "meta"],
        "# Hello!\n\nThis blog is **event-sourced**: every post and comment is an event on a log, and what you read is a projection of it.\n\nOpen this page in two windows and comment: the other window updates *live*.",
    ),
    (
        "Notes on the Analytical Engine",
        "notes-on-the-analytical-engine",
        &["history", "computing"],
        "The engine *weaves algebraic patterns* just as the Jacquard loom weaves flowers and leaves.\n\n> It has no pretensions whatever to originate anything.\n\n- Note A\n- Note G",
    ),
    (
        "Why comments appear live",
        "why-comments-appear-live",
        &["inkwire", "architecture"],
        "Each gateway follows the log itself, so no Redis and no sticky sessions:\n\n```text\ncommand -> event store + outbox -> log -> projector -> read tables -> your browser\n```",
    ),
];

/// Per post (in [`POSTS`]' order): Rita's comment, Ada's reply to it, Grace's comment. Each
/// thread is about its own post.
const THREADS: [[&str; 3]; 3] = [
    [
        "Lovely to see this live! I opened it in two tabs and my comment showed up in both.",
        "Thank you, Rita. Try replying from another window: the reply lands under your comment.",
        "Moderator here: be kind, and enjoy. Hidden comments can be restored, nothing is lost.",
    ],
    [
        "The Jacquard comparison still works: the cards are the program, the loom is the engine.",
        "And Note G is the first published program. She also saw its limits, as the quote says.",
        "For newcomers: the notes are longer than the paper they annotate. Worth the read.",
    ],
    [
        "So a comment is in the read tables before my browser hears of it? No polling at all?",
        "Exactly: the gateway pushes only what the projector has committed, so a reload agrees.",
        "And if your connection drops, the page resumes from its last cursor and misses nothing.",
    ],
];

fn caller(user: &UserView) -> Caller {
    Caller {
        user_id: Some(UserId(user.id)),
        name: Some(user.display_name.clone()),
        roles: user.roles.clone(),
    }
}

/// Seeds the demo data unless it is there.
///
/// # Errors
/// When a command is refused or the database fails.
pub async fn seed(bus: &CommandBus, users: &UserService) -> anyhow::Result<()> {
    let mut accounts = Vec::new();
    for (username, name, password, roles) in ACCOUNTS {
        let registered = users
            .register(
                Registration {
                    id: None,
                    username: (*username).to_owned(),
                    password: (*password).to_owned(),
                    display_name: Some((*name).to_owned()),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                },
                &RequestMeta::default(),
            )
            .await;
        match registered {
            Ok(session) => accounts.push(session.user),
            // Seeded on an earlier start.
            Err(command_service::users::UserError::UsernameTaken) => return Ok(()),
            Err(e) => return Err(anyhow::anyhow!("demo user {username}: {e}")),
        }
    }
    let (ada, grace, rita) = (&accounts[0], &accounts[1], &accounts[2]);
    let run = |post: PostId, who: &UserView, command: PostCommand| {
        bus.execute(
            post,
            Authored {
                caller: caller(who),
                command,
            },
            None,
            RequestMeta::default(),
        )
    };
    for (i, (title, slug, tags, body)) in POSTS.iter().enumerate() {
        let post = PostId::new();
        let draft = PostCommand::DraftPost(DraftPost {
            title: (*title).to_owned(),
            slug: (*slug).to_owned(),
            body_markdown: (*body).to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            allow_anonymous_comments: i == 0,
        });
        run(post, ada, draft).await?;
        run(post, ada, PostCommand::PublishPost).await?;
        let first = CommentId::new();
        let [opening, reply, aside] = THREADS[i % THREADS.len()];
        let comments = [
            (first, None, rita, opening),
            (CommentId::new(), Some(first), ada, reply),
            (CommentId::new(), None, grace, aside),
        ];
        for (id, parent, who, text) in comments {
            let add = PostCommand::AddComment(AddComment {
                comment_id: id,
                parent_id: parent,
                body: text.to_owned(),
                author_name: None,
            });
            run(post, who, add).await?;
        }
    }
    for (username, _, password, roles) in ACCOUNTS {
        tracing::info!(username, password, roles = ?roles, "demo account");
    }
    Ok(())
}
