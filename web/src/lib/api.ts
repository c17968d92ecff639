// GraphQL over HTTP to the gateway (same origin), with the signed-in user's token.
import { session, signOut } from './session.svelte';

/** An error the API answered, with its stable code and the input field it concerns. */
export class ApiError extends Error {
	constructor(
		message: string,
		readonly code: string,
		readonly field?: string,
		readonly reason?: string
	) {
		super(message);
	}
}

interface GraphQLError {
	message: string;
	extensions?: { code?: string; field?: string; reason?: string };
}

/** Plain words for the codes a reader may meet; the server's message otherwise. */
const WORDS: Record<string, string> = {
	UNAUTHENTICATED: 'Please sign in first.',
	RATE_LIMITED: 'Too many tries in a short time; wait a minute and try again.',
	UNAVAILABLE: 'Inkwire is briefly unavailable; try again in a moment.',
	NETWORK: 'Cannot reach Inkwire; check your connection and try again.'
};

export function plainWords(e: unknown): string {
	if (e instanceof ApiError) {
		if (e.code === 'UNAUTHENTICATED' && e.reason === 'INVALID_CREDENTIALS') return e.message;
		if (e.code in WORDS && !e.field) return WORDS[e.code];
		return sentence(e.message);
	}
	return e instanceof Error ? sentence(e.message) : String(e);
}

function sentence(s: string): string {
	const t = s.charAt(0).toUpperCase() + s.slice(1);
	return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** Runs `query` and answers its data; throws ApiError on the first error. */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
	const headers: Record<string, string> = { 'content-type': 'application/json' };
	if (session.token) headers.authorization = `Bearer ${session.token}`;
	let response: Response;
	try {
		response = await fetch('/graphql', {
			method: 'POST',
			headers,
			body: JSON.stringify({ query, variables })
		});
	} catch {
		throw new ApiError(WORDS.NETWORK, 'NETWORK');
	}
	let body: { data?: T; errors?: GraphQLError[] };
	try {
		body = await response.json();
	} catch {
		throw new ApiError(
			response.status === 429 ? WORDS.RATE_LIMITED : WORDS.UNAVAILABLE,
			response.status === 429 ? 'RATE_LIMITED' : 'UNAVAILABLE'
		);
	}
	const first = body.errors?.[0];
	if (first) {
		const code = first.extensions?.code ?? 'INTERNAL';
		// A token the server no longer accepts (expired, account disabled): sign out.
		if (code === 'UNAUTHENTICATED' && session.token && first.extensions?.reason !== 'INVALID_CREDENTIALS') {
			signOut();
		}
		throw new ApiError(first.message, code, first.extensions?.field, first.extensions?.reason);
	}
	return body.data as T;
}

/** Which error belongs next to which input: `field` names are the API's. */
export function fieldError(e: unknown, field: string): string | undefined {
	return e instanceof ApiError && e.field === field ? plainWords(e) : undefined;
}

/** The error to show above a form: one that no field claims. */
export function formError(e: unknown, fields: string[]): string | undefined {
	if (!e) return undefined;
	if (e instanceof ApiError && e.field && fields.includes(e.field)) return undefined;
	return plainWords(e);
}

/** An uploaded image, as `POST /media` answers it. */
export interface Uploaded {
	id: string;
	url: string;
	width: number;
	height: number;
	contentType: string;
}

/** Uploads an image (authors): the server checks it by its content, strips its metadata and
 * answers where it is served. Throws ApiError with the server's code and words. */
export async function uploadImage(file: File): Promise<Uploaded> {
	const form = new FormData();
	form.append('file', file);
	const headers: Record<string, string> = {};
	if (session.token) headers.authorization = `Bearer ${session.token}`;
	let response: Response;
	try {
		response = await fetch('/media', { method: 'POST', headers, body: form });
	} catch {
		throw new ApiError(WORDS.NETWORK, 'NETWORK');
	}
	const body = await response.json().catch(() => null);
	if (response.status === 201 && body?.url) return body as Uploaded;
	const refusal = body?.error;
	throw new ApiError(
		refusal?.message ?? `upload failed (HTTP ${response.status})`,
		refusal?.code ?? 'INTERNAL',
		undefined,
		refusal?.reason
	);
}
