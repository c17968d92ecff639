// A post's comments in display order (threads depth first), kept current by live events.
import { REACTION_FIELDS, type Reaction } from './reactions';

export type Status = 'VISIBLE' | 'HIDDEN' | 'DELETED';
export type Kind = 'ADDED' | 'EDITED' | 'DELETED' | 'HIDDEN' | 'RESTORED' | 'REACTED';

export interface Comment {
	id: string;
	parentId: string | null;
	depth: number;
	body: string;
	html: string;
	authorName: string;
	authorId: string | null;
	createdAt: string;
	updatedAt: string;
	replyCount: number;
	status: Status;
	version: number;
	reactions: Reaction[];
}

export const COMMENT_FIELDS = `id parentId depth body html authorName authorId createdAt updatedAt replyCount status version reactions { ${REACTION_FIELDS} }`;

/** What applying one event changed. */
export interface Applied {
	/** Visible comments gained (+1) or lost (-1). */
	countDelta: number;
	/** Whether the list now shows something new or different. */
	changed: boolean;
}

/**
 * Applies a comment's new state to `list` in place. `complete` says whether every comment is
 * loaded: a new top-level comment (or one whose parent is not loaded) is only inserted then, and
 * otherwise arrives with the next page. Repeats (same or older version) change nothing.
 */
export function apply(list: Comment[], c: Comment, complete: boolean): Applied {
	const at = list.findIndex((x) => x.id === c.id);
	if (at >= 0) {
		const old = list[at];
		if (c.version <= old.version) return { countDelta: 0, changed: false };
		list[at] = c;
		return { countDelta: visible(c) - visible(old), changed: true };
	}
	const delta = visible(c);
	let index = -1;
	if (c.parentId) {
		const p = list.findIndex((x) => x.id === c.parentId);
		if (p >= 0) {
			list[p] = { ...list[p], replyCount: list[p].replyCount + 1 };
			index = endOfSubtree(list, p);
		}
	} else if (complete) {
		index = list.length;
	}
	if (index < 0) return { countDelta: delta, changed: false };
	list.splice(index, 0, c);
	return { countDelta: delta, changed: true };
}

/** Adds a page of comments (from `comments(after:)`), skipping ones already there. */
export function appendPage(list: Comment[], page: Comment[]) {
	const have = new Set(list.map((c) => c.id));
	for (const c of page) if (!have.has(c.id)) list.push(c);
}

function visible(c: Comment): number {
	return c.status === 'VISIBLE' ? 1 : 0;
}

/** The index just after the last descendant of `list[p]`. */
function endOfSubtree(list: Comment[], p: number): number {
	let i = p + 1;
	while (i < list.length && list[i].depth > list[p].depth) i++;
	return i;
}

/** Replies deeper than this are folded behind a "show replies" button. */
export const FOLD_DEPTH = 4;

export type Row = { comment: Comment } | { fold: string; hidden: number };

/**
 * The rows to show: comments, with the replies under a comment at FOLD_DEPTH - 1 folded unless
 * that comment is in `open`.
 */
export function rows(list: Comment[], open: Set<string>): Row[] {
	const out: Row[] = [];
	for (let i = 0; i < list.length; i++) {
		const c = list[i];
		out.push({ comment: c });
		if (c.depth === FOLD_DEPTH - 1 && !open.has(c.id)) {
			const end = endOfSubtree(list, i);
			if (end > i + 1) {
				out.push({ fold: c.id, hidden: end - i - 1 });
				i = end - 1;
			}
		}
	}
	return out;
}
