// Checks a GraphQL endpoint with the standard third-party tools:
//  1. graphql-http's serverAudits: the GraphQL-over-HTTP specification's audit suite. Every
//     MUST and SHOULD audit must pass (MAY audits are reported, not required).
//  2. graphql-js's standard introspection query (`getIntrospectionQuery()`, what GraphiQL,
//     codegen and schema loaders send), whose answer must build a client schema.
// Prints one line per audit and a summary; exits 1 on any failure.
//
//   node audit.mjs http://127.0.0.1:8080/graphql
import { serverAudits } from 'graphql-http';
import { buildClientSchema, getIntrospectionQuery } from 'graphql';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
let failed = 0;
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  const required = !audit.name.startsWith('MAY');
  const mark = result.status === 'ok' ? 'ok' : required ? 'FAIL' : 'warn';
  if (mark === 'FAIL') failed += 1;
  console.log(`${mark} ${audit.id} ${audit.name}${result.status === 'ok' ? '' : ` — ${result.reason}`}`);
}

const introspection = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
  body: JSON.stringify({ query: getIntrospectionQuery() }),
});
const body = await introspection.json();
if (introspection.status !== 200 || body.errors) {
  failed += 1;
  console.log(`FAIL introspection: ${introspection.status} ${JSON.stringify(body.errors)}`);
} else {
  const schema = buildClientSchema(body.data);
  console.log(`ok introspection: ${Object.keys(schema.getTypeMap()).length} types, query root ${schema.getQueryType().name}`);
}
console.log(failed === 0 ? 'audit: all MUST and SHOULD passed' : `audit: ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
