// Subscribes to a post's comment events with the npm graphql-ws client, prints "ready" once the
// server acknowledged the connection and the subscription is sent, then prints the first event as
// one JSON line and exits 0. Exits 1 on any error, or after 30 s without an event.
//
//   node subscribe.mjs ws://127.0.0.1:8080/graphql <post id>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, postId] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  on: { connected: () => console.log('ready') },
});
const timer = setTimeout(() => { console.error('no event within 30 s'); process.exit(1); }, 30_000);
const query = `subscription($postId: ID!) {
  commentEvents(postId: $postId) { kind cursor comment { id body authorName } }
}`;
client.subscribe({ query, variables: { postId } }, {
  next: (result) => {
    if (result.errors) { console.error(JSON.stringify(result.errors)); process.exit(1); }
    console.log(JSON.stringify(result.data.commentEvents));
    clearTimeout(timer);
    client.dispose();
    process.exit(0);
  },
  error: (err) => { console.error('subscription failed', err); process.exit(1); },
  complete: () => {},
});
