// Who is signed in: the token and user from `login`/`register`, kept in localStorage, refreshed
// before it expires.
import { gql } from './api';

export interface User {
	id: string;
	username: string;
	displayName: string;
	roles: string[];
}

const KEY = 'inkwire.session';

export const session = $state<{ token: string | null; user: User | null }>({ token: null, user: null });

if (typeof localStorage !== 'undefined') {
	try {
		const saved = JSON.parse(localStorage.getItem(KEY) ?? 'null');
		if (saved?.token && expiresAt(saved.token) > Date.now()) {
			session.token = saved.token;
			session.user = saved.user;
		}
	} catch {
		localStorage.removeItem(KEY);
	}
	// Another tab signed in or out.
	addEventListener('storage', (e) => {
		if (e.key !== KEY) return;
		const saved = e.newValue ? JSON.parse(e.newValue) : null;
		session.token = saved?.token ?? null;
		session.user = saved?.user ?? null;
	});
}

function expiresAt(token: string): number {
	try {
		const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
		return payload.exp * 1000;
	} catch {
		return 0;
	}
}

export function signIn(auth: { token: string; user: User }) {
	session.token = auth.token;
	session.user = auth.user;
	localStorage.setItem(KEY, JSON.stringify(auth));
	scheduleRefresh();
}

export function signOut() {
	session.token = null;
	session.user = null;
	localStorage.removeItem(KEY);
}

export function hasRole(...roles: string[]): boolean {
	return !!session.user?.roles.some((r) => roles.includes(r) || r === 'admin');
}

export const USER_FIELDS = 'id username displayName roles';

/** Runs `mutation` (a `login` or `register`, answering an AuthPayload as `field`) and signs in. */
export async function authenticate(
	field: 'login' | 'register',
	mutation: string,
	variables: Record<string, unknown>
) {
	const r = await gql<Record<string, { token: string; user: User }>>(mutation, variables);
	signIn(r[field]);
}

let timer: ReturnType<typeof setTimeout> | undefined;

/** Renews the token when a tenth of its life is left. */
export function scheduleRefresh() {
	clearTimeout(timer);
	if (!session.token) return;
	const left = expiresAt(session.token) - Date.now();
	timer = setTimeout(
		async () => {
			try {
				const r = await gql<{ refreshToken: { token: string; user: User } }>(
					`mutation { refreshToken { token user { ${USER_FIELDS} } } }`
				);
				signIn(r.refreshToken);
			} catch {
				// The session is over (30 days, or the account was disabled): sign in again.
			}
		},
		Math.max(1000, left - Math.max(60_000, left / 10))
	);
}
