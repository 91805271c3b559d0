// A real OpenID Connect provider for carebridge's sandbox and tests: panva's certified
// oidc-provider, with one client (the ops console), PKCE required, JWT access tokens for the
// ops API (resource indicators), and static people who log in with a password on a plain form.
//
// It stands in for the region's identity provider, which in production does the SITHS or
// Freja eID log-in. It is for the sandbox and the tests only: its people and passwords are
// published, its signing key is made at each start and it serves plain HTTP on loopback.
//
//   node server.mjs <config.json>
//
// config.json: {"modules": ".../node_modules", "issuer": "http://127.0.0.1:PORT",
//   "port": PORT, "audience": "https://carebridge.example/ops-api",
//   "client": {"client_id", "client_secret"?, "redirect_uris": [...]},
//   "people": {"<login>": {"password", "claims": {"name", "hsa_id", "roles"?}}}}
//
// The log-in form is this file's own (not oidc-provider's devInteractions, which take any
// password): it checks the person's password, and the consent of this first-party client is
// given without a page, as a region's provider does for its own applications.

import { generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { default: Provider } = await import(
  pathToFileURL(join(config.modules, 'oidc-provider', 'lib', 'index.js')).href
);

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
  format: 'jwk',
});
const people = config.people;
const API_SCOPE = 'ops';

const client = {
  client_id: config.client.client_id,
  redirect_uris: config.client.redirect_uris,
  // refresh_token: the console checks its sessions again with the provider (a person
  // removed or demoted loses access within ROUTER_OIDC_SESSION_RECHECK_S)
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  ...(config.client.client_secret
    ? { client_secret: config.client.client_secret, token_endpoint_auth_method: 'client_secret_basic' }
    : { token_endpoint_auth_method: 'none' }),
};

const provider = new Provider(config.issuer, {
  clients: [client],
  jwks: { keys: [{ ...signingKey, kid: 'sandbox-' + Date.now().toString(36), alg: 'RS256', use: 'sig' }] },
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: ['name', 'hsa_id', 'roles'] },
  // the ID token carries the profile claims (the console reads them there)
  conformIdTokenClaims: false,
  cookies: { keys: ['sandbox-oidc-provider-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => config.audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: API_SCOPE,
        audience: config.audience,
        accessTokenTTL: 15 * 60,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // the ops API reads who the person is from its access token
  extraTokenClaims: async (_ctx, token) => {
    const person = people[token.accountId];
    return person ? { ...person.claims } : undefined;
  },
  findAccount: async (_ctx, id) =>
    people[id] ? { accountId: id, claims: async () => ({ sub: id, ...people[id].claims }) } : undefined,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // a refresh token for every code exchange of a client allowed the grant (with or without
  // offline_access, which the provider would otherwise take only with prompt=consent)
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // as long as a console session at most (8 h)
  ttl: {
    Interaction: 600,
    Session: 8 * 3600,
    Grant: 8 * 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 8 * 3600,
  },
});
provider.proxy = false;

const escape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, failed) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sandbox identity provider: log in</title></head><body>
<h1>Sandbox identity provider</h1>
<p>Stands in for the region's SITHS or Freja eID log-in.</p>
${failed ? '<p role="alert" id="failed">Wrong name or password.</p>' : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Login <input name="login" id="login" autocomplete="username" required></label>
<label>Password <input type="password" name="password" id="password" autocomplete="current-password" required></label>
<button type="submit" id="submit">Log in</button>
</form></body></html>`;
}

function sameText(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session } = details;
  if (prompt.name === 'consent') {
    // a first-party client: what it asks for is granted without a page
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scope] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (action === 'login' && req.method === 'POST') {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const person = Object.hasOwn(people, login) ? people[login] : undefined;
    if (person && sameText(person.password, form.get('password') ?? '')) {
      return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    }
    res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(loginPage(uid, true));
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  return res.end(loginPage(uid, false));
}

const handle = provider.callback();
const server = createServer(async (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec(req.url.split('?')[0]);
  if (!match) return handle(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction refused: ${err.name}`);
  }
});
server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider listening on ${config.issuer}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
