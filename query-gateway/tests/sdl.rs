//! The committed SDL is the public contract: the web UI and outside checks are written against
//! it. This fails when the code's schema and `schema/schema.graphql` drift apart; run
//! `cargo run -p inkwire -- print-schema > schema/schema.graphql` after a deliberate change.

#[test]
fn committed_sdl_matches_the_code() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    let path = std::path::Path::new(&manifest).join("../schema/schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema/schema.graphql is committed");
    let current = query_gateway::sdl();
    assert!(
        committed == current,
        "schema/schema.graphql is out of date: run `cargo run -p inkwire -- print-schema > schema/schema.graphql`"
    );
}

#[test]
fn the_public_contract_names_are_there() {
    let sdl = query_gateway::sdl();
    for needle in [
        "post(id: ID, slug: String): Post",
        "posts(first: Int, after: String, tag: String): PostConnection!",
        "comments(postId: ID!, first: Int, after: String",
        "createPost(input: CreatePostInput!, waitForProjection: Boolean): PostPayload!",
        "publishPost(id: ID!, waitForProjection: Boolean): PostPayload!",
        "addComment(input: AddCommentInput!, waitForProjection: Boolean): CommentPayload!",
        "unpublishPost(id: ID!, waitForProjection: Boolean): PostPayload!",
        "commentEvents(postId: ID!, after: String): CommentEvent!",
        "enum CommentEventKind",
        "hasNextPage: Boolean!",
        "endCursor: String",
        "commentCount: Int!",
        "replyCount: Int!",
        "publishedAt: DateTime",
    ] {
        assert!(sdl.contains(needle), "SDL lacks `{needle}`:\n{sdl}");
    }
    for mutation in [
        "hideComment(id: ID!, reason: String!",
        "restoreComment(id: ID!",
        "editPost(id: ID!",
        "deletePost(id: ID!",
        "editComment(id: ID!",
        "deleteComment(id: ID!",
    ] {
        assert!(sdl.contains(mutation), "SDL lacks `{mutation}`");
    }
}
