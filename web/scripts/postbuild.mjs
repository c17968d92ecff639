// After `vite build`:
// - copies GraphiQL (production builds, pinned in package-lock.json) and what it runs on into
//   build/graphiql/, beside the UI: the gateway's GET /graphql page loads them from there, so
//   GraphiQL works with no network beyond the blog itself;
// - writes build/csp.nginx.conf, the build's Content-Security-Policy (with the hash of its inline
//   bootstrap script) as an nginx `add_header`, for nginx to send with the pages it serves
//   itself (the gateways send the same header with theirs).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(web, 'package.json'));
const out = join(web, 'build', 'graphiql');
mkdirSync(out, { recursive: true });
const pkg = (name) => dirname(require.resolve(`${name}/package.json`));
const files = [
  [join(pkg('react'), 'umd', 'react.production.min.js'), 'react.production.min.js'],
  [join(pkg('react-dom'), 'umd', 'react-dom.production.min.js'), 'react-dom.production.min.js'],
  [join(pkg('graphql-ws'), 'umd', 'graphql-ws.min.js'), 'graphql-ws.min.js'],
  [join(pkg('graphiql'), 'graphiql.min.js'), 'graphiql.min.js'],
  [join(pkg('graphiql'), 'graphiql.min.css'), 'graphiql.min.css'],
  [join(web, 'graphiql', 'start.js'), 'start.js'],
];
// With gzip twins, as the UI's own files have (served to clients that accept them).
for (const [from, to] of files) {
  copyFileSync(from, join(out, to));
  writeFileSync(join(out, `${to}.gz`), gzipSync(readFileSync(from), { level: 9 }));
}
console.log(`postbuild: ${files.length} GraphiQL files in ${out}`);

const index = readFileSync(join(web, 'build', 'index.html'), 'utf8');
const meta = index.match(/<meta http-equiv="content-security-policy" content="([^"]*)"/i);
if (!meta) throw new Error('build/index.html has no content-security-policy meta tag');
const policy = meta[1]
  .split(';')
  .map((d) => d.trim())
  .filter((d) => d && !d.startsWith('connect-src') && !d.startsWith('frame-ancestors'))
  .concat(["connect-src 'self'", "frame-ancestors 'none'"])
  .join('; ');
writeFileSync(
  join(web, 'build', 'csp.nginx.conf'),
  `# Written by web/scripts/postbuild.mjs from build/index.html: the UI's policy as a header.\nadd_header Content-Security-Policy "${policy}" always;\n`
);
console.log('postbuild: build/csp.nginx.conf');
