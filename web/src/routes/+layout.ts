// Everything renders in the browser from the GraphQL API: the build is static files.
export const ssr = false;
export const prerender = false;
export const trailingSlash = 'never';
