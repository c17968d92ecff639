// Live comment events over graphql-transport-ws, resumed from the last cursor after any drop:
// the server sends what was missed, then live events, with no gap and no duplicate.
import { createClient, type Client } from 'graphql-ws';
import { session } from './session.svelte';
import { REACTION_FIELDS, type Reaction } from './reactions';
import { COMMENT_FIELDS, type Comment, type Kind } from './thread';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'offline';

export interface CommentEvent {
	kind: Kind;
	cursor: string;
	comment: Comment;
}

const SUBSCRIPTION = `subscription($postId: ID!, $after: String) {
  commentEvents(postId: $postId, after: $after) { kind cursor comment { ${COMMENT_FIELDS} } }
}`;

const REACTIONS = `subscription($postId: ID!) {
  postReactionEvents(postId: $postId) { reactions { ${REACTION_FIELDS} } }
}`;

/** A silent connection is presumed dead after this long without an answer to a ping. */
const PONG_WAIT_MS = 5000;

/**
 * Follows the comments of `postId` from `cursor` (the post's `commentEventsCursor`), calling
 * `onEvent` for each change and `onState` when the connection changes; with `onReactions`, also
 * the reactions to the post itself (the whole set now, then at each change, again after every
 * reconnect). Returns the stop function.
 */
export function follow(
	postId: string,
	cursor: string,
	onEvent: (e: CommentEvent) => void,
	onState: (s: LiveState) => void,
	onReactions?: (reactions: Reaction[]) => void
): () => void {
	let stopped = false;
	let client: Client | null = null;
	let attempt = 0;
	let retry: ReturnType<typeof setTimeout> | undefined;
	let pongDue: ReturnType<typeof setTimeout> | undefined;

	const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;

	function start() {
		if (stopped) return;
		if (!navigator.onLine) return onState('offline');
		onState(attempt === 0 ? 'connecting' : 'reconnecting');
		const c = createClient({
			url,
			lazy: false,
			retryAttempts: 0,
			keepAlive: 15_000,
			connectionParams: () => (session.token ? { authorization: `Bearer ${session.token}` } : {}),
			on: {
				connected: () => {
					attempt = 0;
					onState('live');
				},
				ping: (received) => {
					if (!received) pongDue = setTimeout(() => drop(c), PONG_WAIT_MS);
				},
				pong: (received) => {
					if (received) clearTimeout(pongDue);
				}
			}
		});
		client = c;
		c.subscribe<{ commentEvents: CommentEvent }>(
			{ query: SUBSCRIPTION, variables: { postId, after: cursor } },
			{
				next: (message) => {
					const event = message.data?.commentEvents;
					if (!event) return;
					cursor = event.cursor;
					onEvent(event);
				},
				// Dropped, refused as too slow (SLOW_CONSUMER), or ended: resume from `cursor`.
				error: () => drop(c),
				complete: () => drop(c)
			}
		);
		if (onReactions) {
			c.subscribe<{ postReactionEvents: { reactions: Reaction[] } }>(
				{ query: REACTIONS, variables: { postId } },
				{
					next: (message) => {
						const event = message.data?.postReactionEvents;
						if (event) onReactions(event.reactions);
					},
					error: () => drop(c),
					complete: () => drop(c)
				}
			);
		}
	}

	function drop(c: Client) {
		if (client !== c) return;
		client = null;
		clearTimeout(pongDue);
		void c.dispose();
		if (stopped) return;
		attempt++;
		const delay = Math.min(10_000, 200 * 2 ** attempt) * (0.5 + Math.random() / 2);
		onState(navigator.onLine ? 'reconnecting' : 'offline');
		clearTimeout(retry);
		retry = setTimeout(start, delay);
	}

	const offline = () => {
		if (client) drop(client);
		clearTimeout(retry);
		onState('offline');
	};
	const online = () => {
		clearTimeout(retry);
		attempt = 0;
		if (!client) start();
	};
	addEventListener('offline', offline);
	addEventListener('online', online);
	start();

	return () => {
		stopped = true;
		removeEventListener('offline', offline);
		removeEventListener('online', online);
		clearTimeout(retry);
		clearTimeout(pongDue);
		if (client) void client.dispose();
		client = null;
	};
}
