// Inkwire's web UI in a real browser (Debian's chromium driven by playwright-core), against a
// running `inkwire dev --demo`. Run by cli/tests/browser.rs, which starts the server; by hand:
//
//   BASE_URL=http://127.0.0.1:8080 node web/tests/browser.mjs
//
// Environment: BASE_URL (required), CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR
// (default web/test-results), WEB_BUILD (default web/build, to size the post page's JS), MAILDIR
// (the `new` folder of the maildir the server's SMTP server writes to, for the email step).
// Prints one JSON line of measurements on success; exits 1 with the reason on failure.
import { chromium } from 'playwright-core';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = process.env.BASE_URL;
if (!BASE) throw new Error('BASE_URL is required');
const SHOTS = process.env.SCREENSHOT_DIR ?? join(here, '..', 'test-results');
const BUILD = process.env.WEB_BUILD ?? join(here, '..', 'build');
const POST = '/posts/welcome-to-inkwire';
mkdirSync(SHOTS, { recursive: true });

const run = Date.now().toString(36);
const MAILDIR = process.env.MAILDIR;
const seenMail = new Set();

/** The next email in MAILDIR that `wanted` accepts (its raw text, quoted-printable undone). */
async function nextMail(wanted, timeout = 10000) {
	if (!MAILDIR) throw new Error('MAILDIR is required for the email step');
	const until = Date.now() + timeout;
	while (Date.now() < until) {
		let names = [];
		try {
			names = readdirSync(MAILDIR);
		} catch {
			// Not there before the first email.
		}
		for (const name of names) {
			if (seenMail.has(name)) continue;
			seenMail.add(name);
			const raw = readFileSync(join(MAILDIR, name), 'utf8').replace(/=\r?\n/g, '')
				// Quoted-printable, enough for the ASCII links looked for.
				.replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
			if (wanted(raw)) return raw;
		}
		await new Promise((r) => setTimeout(r, 100));
	}
	throw new Error(`no such email within ${timeout} ms`);
}
const metrics = {};
const dialogs = [];

function check(condition, message) {
	if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
	args: [
		'--no-sandbox',
		'--disable-gpu',
		'--disable-quic',
		'--no-first-run',
		'--disable-background-networking',
		'--disable-component-update',
		'--disable-sync'
	]
});

async function context(name, viewport = { width: 1100, height: 900 }) {
	const ctx = await browser.newContext({ baseURL: BASE, viewport });
	const page = await ctx.newPage();
	// Sums layout shifts not caused by the user (the CLS of web-vitals, without session windows).
	await page.addInitScript(() => {
		window.__inkwireLayoutShift = 0;
		new PerformanceObserver((list) => {
			for (const e of list.getEntries()) if (!e.hadRecentInput) window.__inkwireLayoutShift += e.value;
		}).observe({ type: 'layout-shift', buffered: true });
	});
	page.on('dialog', async (d) => {
		dialogs.push(`${name}: ${d.type()} ${d.message()}`);
		await d.dismiss();
	});
	page.on('pageerror', (e) => dialogs.push(`${name}: page error ${e.message}`));
	return { ctx, page };
}

async function register(page, username) {
	await page.goto('/register');
	await page.getByLabel('Username').fill(username);
	await page.getByLabel('Shown name').fill(username.replace(/-.*/, ' ').trim());
	await page.getByLabel('Password').fill(`${username}-password`);
	await page.getByRole('button', { name: 'Create account' }).click();
	await page.getByTestId('signed-in-as').waitFor();
}

/** Signs in as a demo account (`<username>-demo-password`) from the sign-in page and waits for
 * its redirect to `next` (by path: a glob on the URL would match `?next=` already). */
async function signIn(page, username, next) {
	await page.goto(`/signin?next=${encodeURIComponent(next)}`);
	await page.getByLabel('Username').fill(username);
	await page.getByLabel('Password').fill(`${username}-demo-password`);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.getByTestId('signed-in-as').waitFor();
	await page.waitForURL((url) => url.pathname === next);
}

async function openPost(page) {
	await page.goto(POST);
	await page.locator('[data-testid=live-state][data-state=live]').waitFor();
}

async function comment(page, text) {
	const form = page.getByTestId('comment-form').first();
	await form.getByLabel('Your comment').fill(text);
	await form.getByRole('button', { name: 'Comment' }).click();
	// Cleared once the server acknowledged it.
	await page.waitForFunction(() => {
		const t = document.querySelector('#new-comment-body');
		return t && t.value === '';
	});
}

/** The comments in `page` whose text contains `text`. */
function comments(page, text) {
	return page.getByTestId('comment').filter({ hasText: text });
}

const steps = [];
async function step(name, body) {
	const started = Date.now();
	try {
		await body();
	} catch (e) {
		e.message = `${name}: ${e.message}`;
		throw e;
	}
	steps.push({ name, ms: Date.now() - started });
}

try {
	const writer = await context('writer');
	const reader = await context('reader');

	await step('post page paints and shows its comments', async () => {
		const { page } = reader;
		const js = [];
		page.on('response', (r) => {
			if (r.url().endsWith('.js')) js.push(new URL(r.url()).pathname);
		});
		await page.goto(POST);
		await page.getByTestId('comment').first().waitFor();
		// Chromium records the paint entry once the frame is presented, which can come just after
		// the DOM already holds the comment: wait for it rather than read too early.
		await page
			.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0, null, { timeout: 5000 })
			.catch(() => {});
		const timing = await page.evaluate(() => ({
			fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
			firstComment: performance.getEntriesByName('inkwire:first-comment')[0]?.startTime
		}));
		check(timing.fcp > 0 && timing.firstComment > 0, `no paint timing: ${JSON.stringify(timing)}`);
		metrics.post_first_contentful_paint_ms = Math.round(timing.fcp);
		metrics.post_time_to_first_comment_ms = Math.round(timing.firstComment);
		metrics.post_js_gzip_bytes = js.reduce((sum, p) => sum + statSync(join(BUILD, `${p}.gz`)).size, 0);
		metrics.post_js_files = js.length;
		await page.locator('[data-testid=live-state][data-state=live]').waitFor();
	});

	await step('a refused registration says why next to the field', async () => {
		const { page } = writer;
		await page.goto('/register');
		await page.getByLabel('Username').fill('A!');
		await page.getByLabel('Password').fill('long-enough-password');
		await page.getByRole('button', { name: 'Create account' }).click();
		const error = page.locator('#username-error');
		await error.waitFor({ timeout: 2000 });
		check((await error.textContent()).trim().length > 0, 'empty field error');
		check((await page.getByLabel('Username').getAttribute('aria-invalid')) === 'true', 'field not marked invalid');
		check((await page.getByTestId('signed-in-as').count()) === 0, 'signed in anyway');
	});

	await step('two contexts: a comment appears in the other within one second', async () => {
		await register(writer.page, `writer-${run}`);
		await openPost(writer.page);
		const text = `Hello from the writer ${run}`;
		const before = Number(await reader.page.getByTestId('comment-count').textContent());
		const sent = Date.now();
		await comment(writer.page, text);
		await comments(reader.page, text).waitFor({ timeout: 1000 });
		metrics.live_comment_ms = Date.now() - sent;
		await reader.page.waitForFunction(
			(n) => Number(document.querySelector('[data-testid=comment-count]')?.textContent) === n,
			before + 1,
			{ timeout: 1000 }
		);
		check(
			(await reader.page.evaluate(() => performance.getEntriesByType('navigation').length)) === 1,
			'the reader page reloaded'
		);
		await reader.page.screenshot({ path: join(SHOTS, 'post-live-thread.png'), fullPage: true });
	});

	await step('offline, three comments, back online: all three once each', async () => {
		await reader.ctx.setOffline(true);
		await reader.page.locator('[data-testid=live-state][data-state=offline]').waitFor();
		const texts = [1, 2, 3].map((i) => `While you were away #${i} ${run}`);
		for (const t of texts) await comment(writer.page, t);
		for (const t of texts) check((await comments(reader.page, t).count()) === 0, `"${t}" shown while offline`);
		await reader.ctx.setOffline(false);
		await reader.page.locator('[data-testid=live-state][data-state=live]').waitFor({ timeout: 15000 });
		for (const t of texts) await comments(reader.page, t).first().waitFor({ timeout: 5000 });
		// Give a duplicate the time to arrive, then count.
		await reader.page.waitForTimeout(500);
		for (const t of texts) {
			const n = await comments(reader.page, t).count();
			check(n === 1, `"${t}" shown ${n} times`);
		}
		const order = await reader.page.getByTestId('comment').allTextContents();
		const at = texts.map((t) => order.findIndex((o) => o.includes(t)));
		check(at[0] < at[1] && at[1] < at[2], `out of order: ${at}`);
	});

	await step('hostile markup is shown as text and no dialog opens', async () => {
		const hostile = `<img src=x onerror=alert(1)> and [a link](javascript:alert(2)) ${run}`;
		await comment(writer.page, hostile);
		const shown = comments(reader.page, `and a link ${run}`);
		await shown.waitFor({ timeout: 2000 });
		const body = shown.getByTestId('comment-body');
		check((await body.textContent()).includes('<img src=x onerror=alert(1)>'), 'markup not shown as text');
		check((await body.locator('img').count()) === 0, 'an <img> element was rendered');
		const hrefs = await body.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
		check(!hrefs.some((h) => /^\s*javascript:/i.test(h)), `javascript: link kept: ${hrefs}`);
		await reader.page.waitForTimeout(300);
		check(dialogs.length === 0, `dialogs or page errors: ${dialogs.join('; ')}`);
	});

	await step('edits, deletions and moderator hides apply live', async () => {
		const mod = await context('moderator');
		await signIn(mod.page, 'grace', POST);
		await mod.page.locator('[data-testid=live-state][data-state=live]').waitFor();
		const count = () => reader.page.getByTestId('comment-count').textContent().then(Number);
		const before = await count();

		// The writer edits their first comment: the reader sees the new text.
		const mine = comments(writer.page, `Hello from the writer ${run}`);
		await mine.getByRole('button', { name: 'Edit' }).click();
		await mine.getByLabel('Edit your comment').fill(`Edited by the writer ${run}`);
		await mine.getByRole('button', { name: 'Save' }).click();
		await comments(reader.page, `Edited by the writer ${run}`).waitFor({ timeout: 2000 });
		check((await comments(reader.page, `Hello from the writer ${run}`).count()) === 0, 'old text still shown');

		// The moderator hides the hostile comment with a reason: a placeholder for everyone.
		const hostileId = await comments(reader.page, `and a link ${run}`).getAttribute('data-comment-id');
		const hostile = mod.page.locator(`[data-comment-id="${hostileId}"]`);
		await hostile.getByRole('button', { name: 'Hide', exact: true }).click();
		await hostile.getByLabel('Why hide it?').fill('markup games');
		await hostile.getByRole('button', { name: 'Hide comment' }).click();
		await reader.page.locator(`[data-comment-id="${hostileId}"][data-status=HIDDEN]`).waitFor({ timeout: 2000 });

		// The writer deletes their second comment.
		const second = comments(writer.page, `While you were away #1 ${run}`);
		await second.getByRole('button', { name: 'Delete', exact: true }).click();
		await second.getByRole('button', { name: 'Delete comment' }).click();
		await reader.page
			.locator('[data-testid=comment][data-status=DELETED]')
			.filter({ hasNotText: 'While you were away' })
			.first()
			.waitFor({ timeout: 2000 });
		check((await comments(reader.page, `While you were away #1 ${run}`).count()) === 0, 'deleted text still shown');
		await reader.page.waitForFunction(
			(n) => Number(document.querySelector('[data-testid=comment-count]')?.textContent) === n,
			before - 2,
			{ timeout: 2000 }
		);

		// Restored by the moderator: visible again.
		await mod.page.locator(`[data-comment-id="${hostileId}"]`).getByRole('button', { name: 'Restore' }).click();
		await reader.page.locator(`[data-comment-id="${hostileId}"][data-status=VISIBLE]`).waitFor({ timeout: 2000 });
		await mod.ctx.close();
	});

	await step('reactions to the post and to a comment reach another context live, and are taken back', async () => {
		const postReactions = (page) => page.locator('article.post [data-testid=reactions]');
		const pill = (scope, kind) => scope.locator(`button.pill[data-kind=${kind}]`);
		const countOf = async (scope, kind) =>
			(await pill(scope, kind).count()) ? Number(await pill(scope, kind).getByTestId('reaction-count').textContent()) : 0;
		const target = `Edited by the writer ${run}`;
		const likesBefore = await countOf(postReactions(reader.page), 'LIKE');

		// The writer likes the post from the palette, and hearts their own comment.
		await postReactions(writer.page).getByRole('button', { name: 'React' }).click();
		const sent = Date.now();
		await postReactions(writer.page).locator('[data-choice=LIKE]').click();
		await pill(postReactions(writer.page), 'LIKE').and(writer.page.locator('[aria-pressed=true]')).waitFor({ timeout: 6000 });
		await reader.page.waitForFunction(
			(n) => Number(document.querySelector('article.post button.pill[data-kind=LIKE] [data-testid=reaction-count]')?.textContent ?? 0) === n,
			likesBefore + 1,
			{ timeout: 6000 }
		);
		metrics.live_post_reaction_ms = Date.now() - sent;
		const mine = comments(writer.page, target).getByTestId('reactions');
		await mine.getByRole('button', { name: 'React' }).click();
		await mine.locator('[data-choice=HEART]').click();
		const seen = comments(reader.page, target).getByTestId('reactions');
		await pill(seen, 'HEART').waitFor({ timeout: 6000 });
		check((await countOf(seen, 'HEART')) === 1, 'the heart is not counted once');
		await comments(writer.page, target).screenshot({ path: join(SHOTS, 'comment-reactions.png') });
		// Signed out, the counts show but cannot be pressed.
		check(await pill(seen, 'HEART').isDisabled(), 'a signed-out reader can press a reaction');
		check((await seen.getByRole('button', { name: 'React' }).count()) === 0, 'a signed-out reader is offered the palette');

		// Clicking again takes it back, for everyone.
		await pill(mine, 'HEART').click();
		await pill(seen, 'HEART').waitFor({ state: 'detached', timeout: 6000 });
		await pill(postReactions(writer.page), 'LIKE').click();
		await reader.page.waitForFunction(
			(n) => Number(document.querySelector('article.post button.pill[data-kind=LIKE] [data-testid=reaction-count]')?.textContent ?? 0) === n,
			likesBefore,
			{ timeout: 6000 }
		);
		// The writer's own view agrees after a reload (what the server kept, not what was clicked).
		await openPost(writer.page);
		check((await countOf(comments(writer.page, target).getByTestId('reactions'), 'HEART')) === 0, 'the heart came back');
	});

	await step('a reply reaches its comment author as a live badge, a list, and a link', async () => {
		const target = `Edited by the writer ${run}`;
		// The writer has a second tab open elsewhere: its badge follows too.
		const elsewhere = await writer.ctx.newPage();
		await elsewhere.goto('/tags/none');
		await elsewhere.getByTestId('notifications-link').waitFor();
		const before = Number((await writer.page.getByTestId('unread-count').textContent({ timeout: 500 }).catch(() => '0')) || 0);

		const replier = await context('replier');
		await signIn(replier.page, 'ada', POST);
		await replier.page.locator('[data-testid=live-state][data-state=live]').waitFor();
		const theirs = comments(replier.page, target).first();
		await theirs.getByRole('button', { name: 'Reply', exact: true }).click();
		const text = `Ada answers the writer ${run}`;
		await theirs.getByLabel(/^Reply to/).fill(text);
		const sent = Date.now();
		await theirs.getByRole('button', { name: 'Reply', exact: true }).last().click();
		for (const page of [writer.page, elsewhere]) {
			await page.waitForFunction(
				(n) => Number(document.querySelector('[data-testid=unread-count]')?.textContent ?? 0) === n,
				before + 1,
				{ timeout: 8000 }
			);
		}
		metrics.live_notification_ms = Date.now() - sent;

		// The list says who answered what, unread, and links to the reply.
		await writer.page.getByTestId('notifications-link').click();
		const item = writer.page.getByTestId('notification').filter({ hasText: text });
		await item.waitFor({ timeout: 8000 });
		check((await item.getAttribute('data-read')) === 'false', 'the new notification is not unread');
		check((await item.textContent()).includes('replied to your comment on'), 'the notification does not say it is a reply');
		await writer.page.screenshot({ path: join(SHOTS, 'notifications.png') });
		await item.getByRole('link').click();
		await writer.page.waitForURL((url) => url.pathname === POST && url.hash.startsWith('#comment-'));
		await comments(writer.page, text).waitFor({ timeout: 8000 });

		// Marked read here: the badge goes on both tabs.
		await writer.page.goto('/notifications');
		await writer.page.getByRole('button', { name: 'Mark all read' }).click();
		for (const page of [writer.page, elsewhere]) {
			await page.getByTestId('unread-count').waitFor({ state: 'detached', timeout: 8000 });
		}
		check((await writer.page.locator('[data-testid=notification][data-read=false]').count()) === 0, 'unread left after Mark all read');
		await elsewhere.close();
		await replier.ctx.close();
		await openPost(writer.page);
	});

	await step('a reader gives an address for their notifications and confirms it from the email', async () => {
		const reader = await context('email');
		const { page } = reader;
		await signIn(page, 'rita', '/notifications');
		const address = `rita-${run}@example.org`;
		const form = page.getByTestId('email-settings');
		// The browser accepts a bare host; the server does not, and says so at the field.
		await form.getByLabel('Email me replies at').fill('rita@localhost');
		await form.getByRole('button', { name: 'Save' }).click();
		await form.locator('#notify-email-error').waitFor();
		await form.getByLabel('Email me replies at').fill(address);
		await form.getByRole('button', { name: 'Save' }).click();
		await form.getByText(`We sent a link to ${address}`).waitFor();
		await page.getByTestId('email-unconfirmed').waitFor();
		const mail = await nextMail((m) => m.includes(address) && m.includes('/confirm-email?token='));
		const link = new URL(mail.match(/(https?:\/\/\S+\/confirm-email\?token=[A-Za-z0-9._-]+)/)[1]);
		await page.goto(link.pathname + link.search);
		await page.getByRole('button', { name: 'Confirm' }).click();
		await page.locator('[role=status], [role=alert]').first().waitFor();
		const said = await page.locator('main').textContent();
		check(said.includes('Confirmed.'), `the link did not confirm: ${said}`);
		await page.goto('/notifications');
		await page.getByTestId('email-settings').waitFor();
		check((await page.getByLabel('Email me replies at').inputValue()) === address, 'the address is not shown');
		check((await page.getByTestId('email-unconfirmed').count()) === 0, 'still unconfirmed after following the link');
		await page.screenshot({ path: join(SHOTS, 'email-settings.png') });
		await reader.ctx.close();
	});

	await step('the moderation log shows each hide as it happens, and undoes it', async () => {
		const log = await context('moderation log');
		await signIn(log.page, 'grace', '/moderation');
		// The earlier hide is there, with its reason.
		await log.page.getByTestId('reason').filter({ hasText: 'markup games' }).first().waitFor({ timeout: 10000 });
		// Another moderator window hides a comment: the open log shows it without a reload.
		const mod = await context('moderator 2');
		await signIn(mod.page, 'grace', '/moderation');
		await mod.page.goto(POST);
		await mod.page.locator('[data-testid=live-state][data-state=live]').waitFor();
		const target = comments(mod.page, `Edited by the writer ${run}`);
		const targetId = await target.getAttribute('data-comment-id');
		await target.getByRole('button', { name: 'Hide', exact: true }).click();
		await target.getByLabel('Why hide it?').fill(`logged ${run}`);
		await target.getByRole('button', { name: 'Hide comment' }).click();
		const entry = log.page.getByTestId('moderation-entry').filter({ hasText: `logged ${run}` });
		await entry.waitFor({ timeout: 10000 });
		check((await entry.textContent()).includes(`Edited by the writer ${run}`), 'the log does not show the hidden text');
		await log.page.screenshot({ path: join(SHOTS, 'moderation.png') });
		// Undone from the log: readers see the comment again.
		await entry.getByRole('button', { name: 'Restore comment' }).click();
		await reader.page.locator(`[data-comment-id="${targetId}"][data-status=VISIBLE]`).waitFor({ timeout: 5000 });
		await mod.ctx.close();
		await log.ctx.close();
	});

	await step('comments arriving live do not shift the page', async () => {
		const shift = await reader.page.evaluate(
			() => /** @type {any} */ (window).__inkwireLayoutShift ?? null
		);
		check(shift !== null, 'layout-shift observer missing');
		metrics.reader_cumulative_layout_shift = Math.round(shift * 1000) / 1000;
		check(shift < 0.1, `cumulative layout shift ${shift} (good is under 0.1)`);
	});

	await step('an author writes, publishes, and another context sees it on the home page', async () => {
		const author = await context('author', { width: 1400, height: 900 });
		const { page } = author;
		await signIn(page, 'ada', '/write');
		const title = `Live from the browser ${run}`;
		await page.getByLabel('Title', { exact: true }).fill(title);
		await page.getByLabel('Tags, comma separated').fill('browser, test');
		await page
			.getByLabel('Text (markdown)')
			.fill('## A heading\n\nSome **bold** words and a [link](https://example.org).\n\n- one\n- two');
		const preview = page.getByTestId('preview');
		await preview.locator('h2', { hasText: 'A heading' }).waitFor();
		check((await preview.locator('strong').textContent()) === 'bold', 'preview lacks the bold words');
		await page.screenshot({ path: join(SHOTS, 'editor.png') });
		await page.getByRole('button', { name: 'Publish' }).click();
		await page.waitForURL(/\/posts\/live-from-the-browser/);
		await page.locator('.prose h2', { hasText: 'A heading' }).waitFor();
		await reader.page.goto('/');
		await reader.page.getByRole('link', { name: title }).waitFor({ timeout: 2000 });
		await reader.page.screenshot({ path: join(SHOTS, 'home.png') });
		await author.ctx.close();
		// A feed reader given the home page finds the blog's Atom feed, with the new post first.
		const href = await reader.page.locator('link[rel=alternate][type="application/atom+xml"]').first().getAttribute('href');
		const feed = await reader.page.request.get(href);
		check(feed.status() === 200, `feed ${href}: ${feed.status()}`);
		check(feed.headers()['content-type'].startsWith('application/atom+xml'), `feed type ${feed.headers()['content-type']}`);
		const xml = await feed.text();
		const first = xml.split('<entry>')[1] ?? '';
		check(first.includes(`<title>${title}</title>`), `the new post is not the feed's first entry: ${xml.slice(0, 600)}`);
		// The tag's page links its own feed, which a click opens (not the app's router).
		await reader.page.goto('/tags/browser');
		await reader.page.getByRole('link', { name: 'Feed of this tag' }).click();
		await reader.page.waitForURL('**/tags/browser/feed.xml');
		check((await reader.page.content()).includes(title), 'the tag feed lacks the new post');
	});

	await step('an author drops an image into the editor and readers get it sized', async () => {
		const author = await context('images', { width: 1400, height: 900 });
		const { page } = author;
		await signIn(page, 'ada', '/write');
		const title = `A picture from the browser ${run}`;
		await page.getByLabel('Title', { exact: true }).fill(title);
		await page.getByLabel('Text (markdown)').fill('Before the picture.');
		// A real file, as the desktop hands it over: a PNG drawn in the page, dropped on the text.
		const drop = await page.evaluateHandle(async () => {
			const canvas = document.createElement('canvas');
			canvas.width = 1600;
			canvas.height = 1000;
			const g = canvas.getContext('2d');
			const fill = g.createLinearGradient(0, 0, 1600, 1000);
			fill.addColorStop(0, '#1d4ed8');
			fill.addColorStop(1, '#f59e0b');
			g.fillStyle = fill;
			g.fillRect(0, 0, 1600, 1000);
			const blob = await new Promise((done) => canvas.toBlob(done, 'image/png'));
			const transfer = new DataTransfer();
			transfer.items.add(new File([blob], 'sunset.png', { type: 'image/png' }));
			return transfer;
		});
		const zone = page.getByTestId('body-drop');
		await zone.dispatchEvent('dragover', { dataTransfer: drop });
		await zone.dispatchEvent('drop', { dataTransfer: drop });
		await page.waitForFunction(() => /!\[sunset\]\(\/media\/[0-9a-f-]{36}\)/.test(document.querySelector('#body')?.value ?? ''));
		const text = await page.getByLabel('Text (markdown)').inputValue();
		check(text.startsWith('Before the picture.\n\n![sunset](/media/'), `markdown not inserted after the text: ${text}`);
		// The preview shows it at once, from the gateway.
		await page.waitForFunction(() => {
			const img = document.querySelector('[data-testid=preview] img');
			return img && img.complete && img.naturalWidth > 0;
		});
		await page.getByRole('button', { name: 'Publish' }).click();
		await page.waitForURL(/\/posts\/a-picture-from-the-browser/);
		await author.ctx.close();
		// A reader on a narrow screen gets a variant no wider than it needs, lazily.
		const phone = await context('phone-reader', { width: 390, height: 844 });
		const url = new URL(page.url()).pathname;
		const images = [];
		phone.page.on('response', (r) => {
			if (new URL(r.url()).pathname.startsWith('/media/')) images.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] });
		});
		await phone.page.goto(url);
		const img = phone.page.locator('.prose img');
		await img.scrollIntoViewIfNeeded();
		await phone.page.waitForFunction(() => {
			const i = document.querySelector('.prose img');
			return i && i.complete && i.naturalWidth > 0;
		});
		const srcset = await img.getAttribute('srcset');
		check(/\/media\/[0-9a-f-]{36}\?w=640 640w/.test(srcset ?? ''), `no srcset on the post's image: ${srcset}`);
		check((await img.getAttribute('loading')) === 'lazy', 'the image is not lazy');
		const natural = await img.evaluate((i) => i.naturalWidth);
		check(natural < 1600, `a phone got the ${natural}px original`);
		check(images.length > 0 && images.every((i) => i.status === 200 && i.type === 'image/png'), `images served: ${JSON.stringify(images)}`);
		await phone.page.screenshot({ path: join(SHOTS, 'post-image-phone.png') });
		await phone.ctx.close();
	});

	await step('an author compares two versions, restores one, and schedules the post', async () => {
		const author = await context('history', { width: 1400, height: 900 });
		const { page } = author;
		await signIn(page, 'ada', '/write');
		const title = `Scheduled from the browser ${run}`;
		await page.getByLabel('Title', { exact: true }).fill(title);
		await page.getByLabel('Text (markdown)').fill('The first text.');
		await page.getByRole('button', { name: 'Save draft' }).click();
		await page.getByText('Saved.').waitFor();
		await page.getByLabel('Text (markdown)').fill('The second text.');
		// The first save's "Saved." may still show: wait for this save's answer itself (it
		// waits for the projection, so the history has both versions once it arrives).
		const edited = page.waitForResponse((r) => r.url().endsWith('/graphql') && (r.request().postData() ?? '').includes('editPost'));
		await page.getByRole('button', { name: 'Save draft' }).click();
		const answer = await (await edited).json();
		check(!answer.errors, `the second save was refused: ${JSON.stringify(answer.errors)}`);
		await page.getByText('Saved.').waitFor();
		const editor = page.url();
		await page.getByRole('link', { name: 'History' }).click();
		await page.waitForURL('**/history');
		const diff = page.getByTestId('diff');
		await diff.locator('ins', { hasText: 'The second text.' }).waitFor();
		await diff.locator('del', { hasText: 'The first text.' }).waitFor();
		await page.screenshot({ path: join(SHOTS, 'history.png') });
		await page.getByRole('button', { name: 'Restore v1' }).click();
		await page.getByText('Version 1 restored as a new version.').waitFor();
		check((await page.getByTestId('revision').count()) === 3, 'a restore is a new version');
		await diff.locator('ins', { hasText: 'The first text.' }).waitFor();
		// Scheduled a few seconds ahead: the post appears for readers by itself.
		await page.goto(editor);
		const at = Date.now() + 6000;
		const local = await page.evaluate((at) => {
			const d = new Date(at);
			const p = (n) => String(n).padStart(2, '0');
			return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
		}, at);
		await page.getByLabel('Publish at').fill(local);
		await page.getByRole('button', { name: 'Schedule', exact: true }).click();
		await page.getByTestId('scheduled-at').waitFor();
		await author.ctx.close();
		await reader.page.goto('/');
		// (Checked only while the time is clearly ahead: a slow machine may get there first.)
		const early = (await reader.page.getByRole('link', { name: title }).count()) > 0;
		check(!early || Date.now() >= at - 1000, 'published before its time');
		const deadline = Date.now() + 20000;
		for (;;) {
			await reader.page.goto('/');
			if ((await reader.page.getByRole('link', { name: title }).count()) > 0) break;
			check(Date.now() < deadline, 'the scheduled post was not published');
			await reader.page.waitForTimeout(500);
		}
		await reader.page.getByRole('link', { name: title }).click();
		await reader.page.locator('.prose', { hasText: 'The first text.' }).waitFor();
	});

	await step('a reader on a phone-sized screen has nothing wider than the screen', async () => {
		const phone = await browser.newContext({ baseURL: BASE, viewport: { width: 375, height: 740 } });
		const page = await phone.newPage();
		await page.goto(POST);
		await page.getByTestId('comment').first().waitFor();
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
		check(overflow <= 0, `page ${overflow}px wider than a phone screen`);
		await phone.close();
	});

	await step('a reader searches from the header and finds the post by its words', async () => {
		const { page } = reader;
		await page.goto('/');
		await page.getByRole('searchbox', { name: 'Search posts' }).fill('jacquard LOOM');
		await page.keyboard.press('Enter');
		await page.waitForURL(/\/search\?q=jacquard/);
		await page.getByRole('link', { name: 'Notes on the Analytical Engine' }).waitFor({ timeout: 2000 });
		check((await page.locator('ol.posts > li').count()) === 1, 'a post without both words was listed');
		await page.getByRole('searchbox', { name: 'Search posts' }).fill('no-such-word-anywhere');
		await page.keyboard.press('Enter');
		await page.getByText('No post matches every word.').waitFor({ timeout: 2000 });
	});

	await step('GraphiQL loads its schema and runs a query with the network cut off', async () => {
		// Only the blog's own origin answers: every other host is cut, as on a machine offline.
		const offline = await browser.newContext({ baseURL: BASE });
		const blocked = [];
		await offline.route('**', (route) => {
			const host = new URL(route.request().url()).hostname;
			if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]') return route.continue();
			blocked.push(route.request().url());
			return route.abort('internetdisconnected');
		});
		const page = await offline.newPage();
		const violations = [];
		await page.exposeFunction('__cspViolation', (v) => violations.push(v));
		await page.addInitScript(() => {
			document.addEventListener('securitypolicyviolation', (e) =>
				window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`)
			);
		});
		const errors = [];
		page.on('pageerror', (e) => errors.push(e.message));
		const response = await page.goto('/graphql');
		check(response.status() === 200, `GET /graphql: ${response.status()}`);
		check(
			(response.headers()['content-security-policy'] ?? '').includes("script-src 'self'"),
			'GraphiQL without a Content-Security-Policy header'
		);
		await page.locator('.graphiql-container').waitFor({ timeout: 10000 });
		await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
		// The explorer shows the root types once the introspection query was answered.
		await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor({ timeout: 10000 });
		await page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' }).click();
		await page.locator('.result-window').getByText('"posts"').waitFor({ timeout: 10000 });
		check(blocked.length === 0, `GraphiQL asked for other hosts: ${blocked.join(', ')}`);
		check(violations.length === 0, `CSP violations: ${violations.join('; ')}`);
		check(errors.length === 0, `page errors: ${errors.join('; ')}`);
		await page.screenshot({ path: join(SHOTS, 'graphiql-offline.png') });
		// The UI's own pages carry their policy as a header, connections limited to this origin.
		const home = await page.goto('/');
		const policy = home.headers()['content-security-policy'] ?? '';
		check(/connect-src 'self' ws:\/\/[^ ;]+ wss:\/\/[^ ;]+;/.test(policy), `UI policy: ${policy}`);
		check(policy.includes("frame-ancestors 'none'"), `UI policy: ${policy}`);
		await offline.close();
	});

	console.log(JSON.stringify({ ok: true, steps, metrics }));
	await browser.close();
} catch (e) {
	console.error(e.stack ?? String(e));
	await browser.close();
	process.exit(1);
}
