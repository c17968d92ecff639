//! The moderation log a moderator reads: every hide, restore, role change and disabled
//! account, with who, when, why and what it concerned, filtered and paged, and undone from it.

#[macro_use]
mod common;

use std::time::Duration;

use common::TestStack;
use common::graphql::{add_comment, error_code, gql};
use serde_json::{Value, json};

on_both_backends!(every_moderation_act_is_in_the_log_and_can_be_undone);

const READER_ID: &str = "01890000-0000-7000-8000-0000000000c1";
const ADMIN_ID: &str = "01890000-0000-7000-8000-0000000000c2";
const TROLL_ID: &str = "01890000-0000-7000-8000-0000000000c3";

const LOG: &str = "query($first: Int, $after: String, $moderator: ID, $post: ID) { moderationLog(first: $first, after: $after, moderatorId: $moderator, postId: $post) { edges { cursor node { id action at reason role moderator { id } user { id } post { id } comment { id status } commentText } } pageInfo { hasNextPage endCursor } } }";

fn actions(r: &Value) -> Vec<String> {
    r["data"]["moderationLog"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| e["node"]["action"].as_str().expect("action").to_owned())
        .collect()
}

async fn every_moderation_act_is_in_the_log_and_can_be_undone(stack: &TestStack) {
    common::add_user(&stack.db, READER_ID, "rory", "rory-password", &["reader"]).await;
    common::add_user(&stack.db, ADMIN_ID, "adele", "adele-password", &["admin"]).await;
    common::add_user(&stack.db, TROLL_ID, "troll", "troll-password", &["reader"]).await;
    let users = stack.count("user_streams").await;
    common::eventually(Duration::from_secs(20), || async {
        stack.count("rm_users").await >= users
    })
    .await;
    let (http, url) = (&stack.http, &stack.graphql_url);
    let post = common::graphql::published_post(http, url).await;
    let (first, _) = add_comment(http, url, &post, "buy cheap watches", true).await;
    let (second, _) = add_comment(http, url, &post, "you are all wrong", true).await;
    // Acts before this test's (the test users' roles, from the command line) are in the log
    // too; this test looks at what it adds.
    let before = gql(
        http,
        url,
        Some(common::AUTHOR),
        LOG,
        json!({ "first": 100 }),
    )
    .await;
    let already = actions(&before).len();

    // The moderator (the test author has the role) hides, restores and hides again.
    const HIDE: &str = "mutation($id: ID!, $post: ID!, $reason: String!) { hideComment(id: $id, postId: $post, reason: $reason, waitForProjection: true) { comment { status } } }";
    const RESTORE: &str = "mutation($id: ID!, $post: ID!) { restoreComment(id: $id, postId: $post, waitForProjection: true) { comment { status } } }";
    for (id, reason) in [(&first, "spam"), (&second, "rude")] {
        let r = gql(
            http,
            url,
            Some(common::AUTHOR),
            HIDE,
            json!({ "id": id, "post": post, "reason": reason }),
        )
        .await;
        assert_eq!(
            r["data"]["hideComment"]["comment"]["status"], "HIDDEN",
            "{r}"
        );
    }
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        RESTORE,
        json!({ "id": first, "post": post }),
    )
    .await;
    assert_eq!(
        r["data"]["restoreComment"]["comment"]["status"], "VISIBLE",
        "{r}"
    );
    // The admin grants and revokes a role and disables an account.
    for (mutation, field) in [
        (
            "mutation($u: ID!) { grantRole(userId: $u, role: \"author\") { id } }",
            "grantRole",
        ),
        (
            "mutation($u: ID!) { revokeRole(userId: $u, role: \"author\") { id } }",
            "revokeRole",
        ),
    ] {
        let r = gql(
            http,
            url,
            Some(ADMIN_ID),
            mutation,
            json!({ "u": READER_ID }),
        )
        .await;
        assert_eq!(r["data"][field]["id"], READER_ID, "{r}");
    }
    let r = gql(
        http,
        url,
        Some(ADMIN_ID),
        "mutation($u: ID!) { disableUser(userId: $u) }",
        json!({ "u": TROLL_ID }),
    )
    .await;
    assert_eq!(r["data"]["disableUser"], true, "{r}");

    // Account acts reach the log through the users' streams: wait for all six.
    common::eventually(Duration::from_secs(20), || async {
        let r = gql(
            http,
            url,
            Some(common::AUTHOR),
            LOG,
            json!({ "first": 100 }),
        )
        .await;
        actions(&r).len() >= already + 6
    })
    .await;
    let r = gql(http, url, Some(common::AUTHOR), LOG, json!({ "first": 6 })).await;
    assert_eq!(
        actions(&r),
        [
            "DISABLE_USER",
            "REVOKE_ROLE",
            "GRANT_ROLE",
            "RESTORE_COMMENT",
            "HIDE_COMMENT",
            "HIDE_COMMENT"
        ],
        "newest first: {r}"
    );
    let edges = r["data"]["moderationLog"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    let node = |i: usize| edges[i]["node"].clone();
    assert_eq!(node(0)["user"]["id"], TROLL_ID);
    assert_eq!(node(0)["moderator"]["id"], ADMIN_ID);
    assert_eq!(node(1)["role"], "author");
    assert_eq!(node(1)["user"]["id"], READER_ID);
    assert_eq!(node(3)["comment"]["id"], first.as_str());
    assert_eq!(node(3)["reason"], Value::Null);
    let hidden = node(4);
    assert_eq!(hidden["comment"]["id"], second.as_str());
    assert_eq!(hidden["reason"], "rude");
    assert_eq!(hidden["moderator"]["id"], common::AUTHOR);
    assert_eq!(hidden["post"]["id"], post.as_str());
    assert_eq!(hidden["comment"]["status"], "HIDDEN");
    assert_eq!(
        hidden["commentText"], "you are all wrong",
        "a moderator reads what was hidden"
    );
    assert_eq!(node(5)["reason"], "spam");
    let times: Vec<&str> = edges
        .iter()
        .map(|e| e["node"]["at"].as_str().expect("at"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Filters: one post's comments; one moderator's acts.
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        LOG,
        json!({ "post": post }),
    )
    .await;
    assert_eq!(
        actions(&r),
        ["RESTORE_COMMENT", "HIDE_COMMENT", "HIDE_COMMENT"],
        "{r}"
    );
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        LOG,
        json!({ "moderator": ADMIN_ID }),
    )
    .await;
    assert_eq!(
        actions(&r),
        ["DISABLE_USER", "REVOKE_ROLE", "GRANT_ROLE"],
        "{r}"
    );
    // Pages: two, then the rest after the cursor, without repeats.
    let r = gql(http, url, Some(common::AUTHOR), LOG, json!({ "first": 2 })).await;
    assert_eq!(actions(&r), ["DISABLE_USER", "REVOKE_ROLE"]);
    assert_eq!(r["data"]["moderationLog"]["pageInfo"]["hasNextPage"], true);
    let after = r["data"]["moderationLog"]["pageInfo"]["endCursor"].clone();
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        LOG,
        json!({ "first": 4, "after": after }),
    )
    .await;
    assert_eq!(
        actions(&r),
        [
            "GRANT_ROLE",
            "RESTORE_COMMENT",
            "HIDE_COMMENT",
            "HIDE_COMMENT"
        ],
        "{r}"
    );

    // Only moderators and admins read it.
    let r = gql(http, url, Some(READER_ID), LOG, json!({})).await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = gql(http, url, None, LOG, json!({})).await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");
    let r = gql(http, url, Some(ADMIN_ID), LOG, json!({ "first": 1 })).await;
    assert_eq!(actions(&r), ["DISABLE_USER"], "an admin reads it: {r}");

    // Undone from the log: the hide of the second comment is restored, and that is logged too.
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        RESTORE,
        json!({ "id": hidden["comment"]["id"], "post": hidden["post"]["id"] }),
    )
    .await;
    assert_eq!(
        r["data"]["restoreComment"]["comment"]["status"], "VISIBLE",
        "{r}"
    );
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        LOG,
        json!({ "post": post, "first": 1 }),
    )
    .await;
    assert_eq!(actions(&r), ["RESTORE_COMMENT"]);
    assert_eq!(
        r["data"]["moderationLog"]["edges"][0]["node"]["comment"]["id"],
        second.as_str()
    );
}
