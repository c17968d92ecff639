//! Which projector of a group applies which partition (ADR 007): claims in the read-model
//! database, beside the offsets, instead of the broker's group coordinator.
//!
//! Every round, in one transaction, a member renews its heartbeat, drops the rows of members and
//! claims that expired, counts the live members, and compares what it holds with its share of
//! the partitions: it gives back what exceeds the share (highest partitions first) and takes
//! partitions nobody live holds up to it. Shares are computed by every member from the same
//! sorted list, so two live members never both want the same partition, and a member that
//! stops (killed, paused, cut off from the database) loses its partitions one time-to-live
//! later. Two members briefly reading one partition (the old holder has not noticed yet) is
//! harmless: a batch applies only records above the offset stored in its own transaction.
//!
//! The fault campaign found why this is not left to Kafka: under tansu's coordinator, a killed
//! member kept its partitions through later rebalances and two live members were handed the
//! same ones, so some posts stopped updating until a restart (docs/reliability.md).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use infra::db::{Db, retry_tx};
use infra::with_db;
use sqlx::Row;

/// One member's view of its group after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Partitions this member holds after the round.
    pub hold: BTreeSet<i32>,
    /// Partitions it gives back (over its share).
    pub release: BTreeSet<i32>,
}

/// What `me` should hold of `partitions`, given the live `members` (`me` among them) and the
/// live `claims` (partition → member). Its share is an even split: the first
/// `partitions % members` members in sorted order take one more.
#[must_use]
pub fn plan(
    me: &str,
    members: &BTreeSet<String>,
    partitions: &BTreeSet<i32>,
    claims: &BTreeMap<i32, String>,
) -> Plan {
    let n = members.len().max(1);
    let index = members.iter().position(|m| m == me).unwrap_or(n - 1);
    let share = partitions.len() / n + usize::from(index < partitions.len() % n);
    let mine: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|p| claims.get(p).is_some_and(|m| m == me))
        .collect();
    let mut hold: BTreeSet<i32> = mine.iter().copied().take(share).collect();
    let release: BTreeSet<i32> = mine.iter().copied().skip(share).collect();
    for p in partitions {
        if hold.len() >= share {
            break;
        }
        let free = claims.get(p).is_none_or(|m| !members.contains(m));
        if free {
            hold.insert(*p);
        }
    }
    Plan { hold, release }
}

/// A projector's membership in its group.
#[derive(Debug, Clone)]
pub struct Claims {
    db: Db,
    group: String,
    topic: String,
    member: String,
    ttl: chrono::Duration,
}

impl Claims {
    /// A new member of `group` for `topic`, whose heartbeat and claims last `ttl`.
    #[must_use]
    pub fn new(db: Db, group: &str, topic: &str, ttl: std::time::Duration) -> Self {
        Self {
            db,
            group: group.to_owned(),
            topic: topic.to_owned(),
            member: format!("projector-{}-{}", std::process::id(), uuid::Uuid::now_v7()),
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(10)),
        }
    }

    /// This member's name.
    #[must_use]
    pub fn member(&self) -> &str {
        &self.member
    }

    /// One round (see the module documentation); returns the partitions this member holds now.
    ///
    /// # Errors
    /// The database error; the caller keeps what it held and tries again next round.
    pub async fn refresh(&self, partitions: &BTreeSet<i32>) -> Result<Plan, sqlx::Error> {
        retry_tx(|| async {
            let now = Utc::now();
            let until = now + self.ttl;
            with_db!(&self.db, |pool| {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO projector_members (consumer_group, member, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (consumer_group, member) DO UPDATE SET expires_at = excluded.expires_at",
                )
                .bind(&self.group)
                .bind(&self.member)
                .bind(until)
                .execute(&mut *tx)
                .await?;
                let rows = sqlx::query(
                    "SELECT member, expires_at FROM projector_members WHERE consumer_group = $1",
                )
                .bind(&self.group)
                .fetch_all(&mut *tx)
                .await?;
                let mut members = BTreeSet::new();
                let mut expired = Vec::new();
                for row in rows {
                    let member: String = row.try_get(0)?;
                    let expires: DateTime<Utc> = row.try_get(1)?;
                    if expires < now {
                        expired.push(member);
                    } else {
                        members.insert(member);
                    }
                }
                for member in &expired {
                    // Only when there is something to drop: a range delete on every round
                    // would make every pair of rounds conflict.
                    sqlx::query(
                        "DELETE FROM projector_members WHERE consumer_group = $1 AND member = $2 \
                         AND expires_at < $3",
                    )
                    .bind(&self.group)
                    .bind(member)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let rows = sqlx::query(
                    "SELECT partition, member, expires_at FROM projector_claims \
                     WHERE consumer_group = $1 AND topic = $2",
                )
                .bind(&self.group)
                .bind(&self.topic)
                .fetch_all(&mut *tx)
                .await?;
                let mut claims = BTreeMap::new();
                for row in rows {
                    let partition: i64 = row.try_get(0)?;
                    let member: String = row.try_get(1)?;
                    let expires: DateTime<Utc> = row.try_get(2)?;
                    if expires >= now || member == self.member {
                        claims.insert(i32::try_from(partition).unwrap_or(i32::MAX), member);
                    }
                }
                let plan = plan(&self.member, &members, partitions, &claims);
                for p in &plan.release {
                    sqlx::query(
                        "DELETE FROM projector_claims WHERE consumer_group = $1 AND topic = $2 \
                         AND partition = $3 AND member = $4",
                    )
                    .bind(&self.group)
                    .bind(&self.topic)
                    .bind(i64::from(*p))
                    .bind(&self.member)
                    .execute(&mut *tx)
                    .await?;
                }
                for p in &plan.hold {
                    sqlx::query(
                        "INSERT INTO projector_claims (consumer_group, topic, partition, member, expires_at) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (consumer_group, topic, partition) DO UPDATE \
                         SET member = excluded.member, expires_at = excluded.expires_at",
                    )
                    .bind(&self.group)
                    .bind(&self.topic)
                    .bind(i64::from(*p))
                    .bind(&self.member)
                    .bind(until)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(plan)
            })
        })
        .await
    }

    /// Leaves the group (on shutdown): the others take its partitions on their next round
    /// instead of one time-to-live later.
    ///
    /// # Errors
    /// The database error; the rows then expire by themselves.
    pub async fn leave(&self) -> Result<(), sqlx::Error> {
        retry_tx(|| async {
            with_db!(&self.db, |pool| {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "DELETE FROM projector_claims WHERE consumer_group = $1 AND member = $2",
                )
                .bind(&self.group)
                .bind(&self.member)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM projector_members WHERE consumer_group = $1 AND member = $2",
                )
                .bind(&self.group)
                .bind(&self.member)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
        items.iter().cloned().collect()
    }

    fn claims(of: &[(i32, &str)]) -> BTreeMap<i32, String> {
        of.iter().map(|(p, m)| (*p, (*m).to_owned())).collect()
    }

    #[test]
    fn a_lone_member_takes_every_partition() {
        let plan = plan(
            "a",
            &set(&["a".to_owned()]),
            &set(&[0, 1, 2]),
            &BTreeMap::new(),
        );
        assert_eq!(plan.hold, set(&[0, 1, 2]));
        assert!(plan.release.is_empty());
    }

    #[test]
    fn a_newcomer_gets_half_once_the_holder_gives_it_back() {
        let members = set(&["a".to_owned(), "b".to_owned()]);
        let partitions = set(&[0, 1, 2, 3, 4, 5]);
        let held = claims(&[(0, "a"), (1, "a"), (2, "a"), (3, "a"), (4, "a"), (5, "a")]);
        // The newcomer finds nothing free yet, and takes nothing of a live member's.
        assert!(plan("b", &members, &partitions, &held).hold.is_empty());
        // The holder keeps its share and gives back the rest...
        let a = plan("a", &members, &partitions, &held);
        assert_eq!(a.hold, set(&[0, 1, 2]));
        assert_eq!(a.release, set(&[3, 4, 5]));
        // ...which the newcomer takes on its next round.
        let held = claims(&[(0, "a"), (1, "a"), (2, "a")]);
        assert_eq!(
            plan("b", &members, &partitions, &held).hold,
            set(&[3, 4, 5])
        );
    }

    /// The bug the campaign found under the broker's coordinator: a member that is gone must
    /// not keep partitions. Its claims are free to the survivors, whose share grows.
    #[test]
    fn partitions_of_a_member_that_is_gone_are_taken_over() {
        let members = set(&["b".to_owned()]);
        let held = claims(&[(0, "a"), (1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "b")]);
        let b = plan("b", &members, &set(&[0, 1, 2, 3, 4, 5]), &held);
        assert_eq!(b.hold, set(&[0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn shares_cover_every_partition_exactly_once() {
        for n in 1..=7_usize {
            for p in 0..=13_i32 {
                let members: BTreeSet<String> = (0..n).map(|i| format!("m{i}")).collect();
                let partitions: BTreeSet<i32> = (0..p).collect();
                let mut held = BTreeMap::new();
                // Rounds in member order until nothing changes: every partition ends up held
                // by exactly one member, and shares differ by at most one.
                for _ in 0..3 {
                    for m in &members {
                        let plan = plan(m, &members, &partitions, &held);
                        held.retain(|_, holder| holder != m);
                        for q in &plan.hold {
                            held.insert(*q, m.clone());
                        }
                    }
                }
                assert_eq!(held.len(), partitions.len(), "{n} members, {p} partitions");
                let counts: Vec<usize> = members
                    .iter()
                    .map(|m| held.values().filter(|h| *h == m).count())
                    .collect();
                let (lo, hi) = (counts.iter().min(), counts.iter().max());
                assert!(hi.zip(lo).is_none_or(|(hi, lo)| hi - lo <= 1), "{counts:?}");
            }
        }
    }
}
