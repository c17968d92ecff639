// Starts GraphiQL on /graphql (served by the gateway), with subscriptions over the same path's
// WebSocket (graphql-transport-ws). Every file it needs comes from this origin: no CDN.
(function () {
  const http = new URL('/graphql', window.location.href);
  const ws = new URL(http.href);
  ws.protocol = http.protocol === 'https:' ? 'wss:' : 'ws:';
  const fetcher = window.GraphiQL.createFetcher({
    url: http.href,
    wsClient: window.graphqlWs.createClient({ url: ws.href, lazy: true }),
  });
  const root = window.ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    window.React.createElement(window.GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery: '# Inkwire GraphQL: try\n{\n  posts(first: 5) {\n    edges { node { title slug commentCount author { displayName } } }\n  }\n}\n',
    }),
  );
})();
