//! Reactions: `Post.reactions` and `Comment.reactions` (every kind, with its count and whether
//! the viewer gave it), and `addReaction` / `removeReaction`. A reader gives each kind once per
//! post or comment; repeating either mutation changes nothing (`changed: false`).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use command_api::PostCommand;
use events::{CommentId, PostId, REACTION_KINDS};
use read_model::{ReactionTally, ReadModel};
use std::sync::Arc;
use uuid::Uuid;

use super::loaders::loader_error;
use super::{caller, clamp_i32, command_caller, gql, parse_id, read_error, shared};
use crate::error::GatewayError;

/// A reaction readers can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ReactionKind {
    /// 👍
    Like,
    /// ❤️
    Heart,
    /// 😂
    Laugh,
    /// 🎉
    Tada,
    /// 😮
    Wow,
}

impl ReactionKind {
    const ALL: [Self; 5] = [Self::Like, Self::Heart, Self::Laugh, Self::Tada, Self::Wow];

    /// Its stored name and emoji (`events::REACTION_KINDS`, in the same order).
    fn stored(self) -> (&'static str, &'static str) {
        REACTION_KINDS[self as usize]
    }
}

/// How many readers gave one kind of reaction, and whether the viewer did.
#[derive(Debug, Clone, SimpleObject)]
pub struct ReactionCount {
    kind: ReactionKind,
    /// The reaction as an emoji.
    emoji: String,
    count: i32,
    /// Whether the signed-in viewer gave it (always false signed out).
    viewer_reacted: bool,
}

/// Reactions by target, for one viewer (the nil id: signed out).
pub struct ReactionsOf(pub ReadModel);

impl Loader<(Uuid, Uuid)> for ReactionsOf {
    type Value = Arc<Vec<ReactionTally>>;
    type Error = Arc<GatewayError>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let mut by_viewer: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (target, viewer) in keys {
            by_viewer.entry(*viewer).or_default().push(*target);
        }
        let mut out = HashMap::new();
        for (viewer, targets) in by_viewer {
            let mut found = self
                .0
                .reactions(&targets, (!viewer.is_nil()).then_some(viewer))
                .await
                .map_err(|e| Arc::new(e.into()))?;
            for target in targets {
                let tallies = found.remove(&target).unwrap_or_default();
                out.insert((target, viewer), Arc::new(tallies));
            }
        }
        Ok(out)
    }
}

/// Every kind's count on `target` (a comment's id, or a post's), in the fixed order.
pub(super) async fn reactions_of(ctx: &Context<'_>, target: Uuid) -> Result<Vec<ReactionCount>> {
    let viewer = caller(ctx)
        .and_then(crate::caller::Caller::user)
        .unwrap_or(Uuid::nil());
    let tallies = match ctx.data_opt::<DataLoader<ReactionsOf>>() {
        Some(loader) => loader
            .load_one((target, viewer))
            .await
            .map_err(|e| loader_error(&e))?
            .unwrap_or_default(),
        None => Arc::new(read_now(ctx, target, (!viewer.is_nil()).then_some(viewer)).await?),
    };
    Ok(counts(&tallies))
}

/// `target`'s reactions read from the tables now, past any loader batch.
async fn read_now(
    ctx: &Context<'_>,
    target: Uuid,
    viewer: Option<Uuid>,
) -> Result<Vec<ReactionTally>> {
    Ok(shared(ctx)
        .read
        .reactions(&[target], viewer)
        .await
        .map_err(read_error)?
        .remove(&target)
        .unwrap_or_default())
}

/// Every kind in the fixed order, with `tallies`' counts (0 for a kind nobody gave).
pub(super) fn counts(tallies: &[ReactionTally]) -> Vec<ReactionCount> {
    ReactionKind::ALL
        .into_iter()
        .map(|kind| {
            let (name, emoji) = kind.stored();
            let tally = tallies.iter().find(|t| t.kind == name);
            ReactionCount {
                kind,
                emoji: emoji.to_owned(),
                count: tally.map_or(0, |t| clamp_i32(t.count)),
                viewer_reacted: tally.is_some_and(|t| t.viewer_reacted),
            }
        })
        .collect()
}

/// A post's reactions as they are now, pushed live when they change.
#[derive(Debug, Clone, SimpleObject)]
pub struct PostReactionEvent {
    /// The post.
    pub post_id: ID,
    /// Every kind's count, and whether the subscriber gave it.
    pub reactions: Vec<ReactionCount>,
}

/// The answer to `addReaction` and `removeReaction`.
pub struct ReactionPayload {
    changed: bool,
    post: Uuid,
    target: Uuid,
    version: i64,
}

#[Object]
impl ReactionPayload {
    /// Whether this call changed anything (false: the viewer already had, or had not, it).
    async fn changed(&self) -> bool {
        self.changed
    }
    /// The post's position after the call (as `waitForProjection` and cursors use it).
    async fn position(&self) -> String {
        crate::cursor::position(self.post, self.version)
    }
    /// The target's reactions once queries show this call's effect.
    async fn reactions(&self, ctx: &Context<'_>) -> Result<Vec<ReactionCount>> {
        shared(ctx)
            .wait_for(self.post, self.version)
            .await
            .map_err(gql)?;
        // Read anew: a loader batch may have been read before the projection.
        let viewer = caller(ctx).and_then(crate::caller::Caller::user);
        Ok(counts(&read_now(ctx, self.target, viewer).await?))
    }
}

/// Reaction mutations.
#[derive(Default)]
pub struct ReactionMutations;

#[Object]
impl ReactionMutations {
    /// Gives a reaction (signed-in readers) to a comment (`commentId`; `postId` may come along
    /// to save a lookup) or to a post (`postId` alone). Once per kind per reader: repeating it
    /// changes nothing.
    async fn add_reaction(
        &self,
        ctx: &Context<'_>,
        kind: ReactionKind,
        post_id: Option<ID>,
        comment_id: Option<ID>,
    ) -> Result<ReactionPayload> {
        react(ctx, kind, post_id, comment_id, true).await
    }

    /// Takes a reaction back; taking back one the reader has not given changes nothing.
    async fn remove_reaction(
        &self,
        ctx: &Context<'_>,
        kind: ReactionKind,
        post_id: Option<ID>,
        comment_id: Option<ID>,
    ) -> Result<ReactionPayload> {
        react(ctx, kind, post_id, comment_id, false).await
    }
}

async fn react(
    ctx: &Context<'_>,
    kind: ReactionKind,
    post_id: Option<ID>,
    comment_id: Option<ID>,
    on: bool,
) -> Result<ReactionPayload> {
    let s = shared(ctx);
    let comment = comment_id
        .as_ref()
        .map(|c| parse_id(c, "commentId"))
        .transpose()
        .map_err(gql)?;
    let post = match (comment, post_id.as_ref()) {
        (Some(c), hint) => s.post_of_comment(c, hint).await.map_err(gql)?,
        (None, Some(p)) => parse_id(p, "postId").map_err(gql)?,
        (None, None) => {
            return Err(gql(GatewayError::bad_input(
                "TARGET_REQUIRED",
                "give postId (a reaction to the post) or commentId",
            )));
        }
    };
    let name = kind.stored().0.to_owned();
    let comment = comment.map(CommentId);
    let command = if on {
        PostCommand::React(PostId(post), comment, name)
    } else {
        PostCommand::Unreact(PostId(post), comment, name)
    };
    let accepted = s
        .commands
        .post(&command_caller(ctx), command, None)
        .await
        .map_err(|e| gql(e.into()))?;
    Ok(ReactionPayload {
        changed: !accepted.events.is_empty(),
        post,
        target: comment.map_or(post, |c| c.0),
        version: accepted.version,
    })
}
