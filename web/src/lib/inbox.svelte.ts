// The signed-in reader's notifications: the unread count for the header's badge, kept current
// by `notificationEvents` over a WebSocket that reconnects by itself. After every (re)connect
// the count is read anew, so nothing missed while away is lost from the badge.
import { createClient, type Client } from 'graphql-ws';
import { gql } from './api';

export const inbox = $state({ unread: 0, /** Bumped at every change: lists re-read then. */ changes: 0 });

const EVENTS = 'subscription { notificationEvents { kind unreadCount } }';

let client: Client | null = null;

async function refresh() {
	try {
		const r = await gql<{ notifications: { unreadCount: number } }>('{ notifications(first: 0) { unreadCount } }');
		inbox.unread = r.notifications.unreadCount;
		inbox.changes++;
	} catch {
		// Signed out meanwhile, or briefly unreachable: the next connect reads it again.
	}
}

/** Follows the notifications of whoever `token` signs in (none: stops). */
export function followInbox(token: string | null) {
	if (client) void client.dispose();
	client = null;
	inbox.unread = 0;
	if (!token) return;
	const c = createClient({
		url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
		lazy: false,
		keepAlive: 15_000,
		retryAttempts: Infinity,
		shouldRetry: () => true,
		connectionParams: { authorization: `Bearer ${token}` },
		on: { connected: () => void refresh() }
	});
	client = c;
	c.subscribe<{ notificationEvents: { kind: string; unreadCount: number } }>(
		{ query: EVENTS },
		{
			next: (m) => {
				const e = m.data?.notificationEvents;
				if (!e) return;
				inbox.unread = e.unreadCount;
				inbox.changes++;
			},
			error: () => {},
			complete: () => {}
		}
	);
}

/** Marks everything read (or up to `upTo`, a notification's cursor); answers the unread count. */
export async function markRead(upTo?: string): Promise<number> {
	const r = await gql<{ markNotificationsRead: { unreadCount: number } }>(
		'mutation($upTo: String) { markNotificationsRead(upTo: $upTo) { unreadCount } }',
		{ upTo }
	);
	inbox.unread = r.markNotificationsRead.unreadCount;
	inbox.changes++;
	return inbox.unread;
}
