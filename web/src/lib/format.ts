const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function date(iso: string | null | undefined): string {
	return iso ? dateFormat.format(new Date(iso)) : '';
}

export function dateTime(iso: string): string {
	return timeFormat.format(new Date(iso));
}
