const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function date(iso: string | null | undefined): string {
	return iso ? dateFormat.format(new Date(iso)) : '';
}

export function dateTime(iso: string): string {
	return timeFormat.format(new Date(iso));
}

/** A plain-text teaser of a markdown body. */
export function teaser(markdown: string, max = 180): string {
	const text = markdown
		.replace(/```[\s\S]*?```/g, ' ')
		.replace(/!\[[^\]]*\]\([^)]*\)/g, ' ')
		.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
		.replace(/^\s{0,3}(#{1,6}|>|[-*+]|\d+\.)\s+/gm, '')
		.replace(/[*_`~]+/g, '')
		.replace(/\s+/g, ' ')
		.trim();
	return text.length > max ? `${text.slice(0, max).replace(/\s+\S*$/, '')}…` : text;
}
