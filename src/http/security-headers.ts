// What an API that serves client-supplied bytes must say on every answer: no
// MIME sniffing (documents keep the client's own Content-Type), and a policy
// under which a stored HTML document runs nothing and cannot be framed
// (frame-ancestors supersedes X-Frame-Options). Nothing here is rendered for
// a person, so helmet's other headers would only add bytes to every answer.
// Every answer is no-store unless its route says otherwise (a document's
// bytes, the OpenAPI document): answers are one tenant's, and a shared or
// heuristic cache must not keep even a 404.
export const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
};
