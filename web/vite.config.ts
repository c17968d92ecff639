import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// `npm run dev` proxies the API to a running `inkwire dev` (INKWIRE_URL, default :8080).
const api = process.env.INKWIRE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
	plugins: [sveltekit()],
	server: { proxy: { '/graphql': { target: api, ws: true } } }
});
