// The README's screenshots, of the demo blog only (never of test data): run against a fresh
// `inkwire dev --demo` (scripts/dev.sh --demo on a new data dir).
//
//   BASE_URL=http://127.0.0.1:8080 node web/tests/screenshots.mjs [OUT_DIR]   (default docs/screenshots)
import { chromium } from 'playwright-core';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = process.env.BASE_URL ?? 'http://127.0.0.1:8080';
const OUT = process.argv[2] ?? join(here, '..', '..', 'docs', 'screenshots');
const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
});
try {
	const viewport = { width: 1100, height: 900 };
	// Home: the demo's three posts.
	const reader = await (await browser.newContext({ baseURL: BASE, viewport })).newPage();
	await reader.goto('/');
	await reader.getByRole('link', { name: 'Why comments appear live' }).waitFor();
	await reader.screenshot({ path: join(OUT, 'home.png') });

	// A post with its live thread: grace comments from another window while the reader watches.
	await reader.goto('/posts/welcome-to-inkwire');
	await reader.locator('[data-testid=live-state][data-state=live]').waitFor();
	const grace = await (await browser.newContext({ baseURL: BASE, viewport })).newPage();
	await grace.goto('/signin?next=/posts/welcome-to-inkwire');
	await grace.getByLabel('Username').fill('grace');
	await grace.getByLabel('Password').fill('grace-demo-password');
	await grace.getByRole('button', { name: 'Sign in' }).click();
	await grace.locator('[data-testid=live-state][data-state=live]').waitFor();
	const text = 'Welcome, everyone: this one arrived while you were reading.';
	const form = grace.getByTestId('comment-form').first();
	await form.getByLabel('Your comment').fill(text);
	await form.getByRole('button', { name: 'Comment' }).click();
	await reader.getByTestId('comment').filter({ hasText: text }).waitFor({ timeout: 2000 });
	await reader.screenshot({ path: join(OUT, 'post-live-thread.png'), fullPage: true });

	// The editor, with a draft and its preview (not published).
	const ada = await (await browser.newContext({ baseURL: BASE, viewport })).newPage();
	await ada.goto('/signin?next=/write');
	await ada.getByLabel('Username').fill('ada');
	await ada.getByLabel('Password').fill('ada-demo-password');
	await ada.getByRole('button', { name: 'Sign in' }).click();
	await ada.waitForURL('**/write');
	await ada.getByLabel('Title', { exact: true }).fill('Sketches of a difference engine');
	await ada.getByLabel('Tags, comma separated').fill('history, computing');
	await ada
		.getByLabel('Text (markdown)')
		.fill('## Tables by machine\n\nBabbage wanted tables **without errors**: computed, then *printed* by the same machine.\n\n- no copying by hand\n- no typesetting slips');
	await ada.getByTestId('preview').locator('h2', { hasText: 'Tables by machine' }).waitFor();
	await ada.screenshot({ path: join(OUT, 'editor.png'), fullPage: true });
	console.log(`screenshots: home.png, post-live-thread.png, editor.png in ${OUT}`);
} finally {
	await browser.close();
}
