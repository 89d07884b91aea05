// Signs in to oidc-bridge the way Backstage's OIDC provider does: openid-client v5 with
// Backstage's defaults (static client, response_types ['code'], client_secret_basic,
// RS256 ID tokens, PKCE S256, a base64 nonce, scope "openid profile email"), then userinfo,
// refresh and revocation. Prints one JSON line with what it saw; exits non-zero on failure.
//
// Env: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERNAME, PASSWORD.
import crypto from 'node:crypto';
import { Issuer, generators, errors } from 'openid-client';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
};
const ISSUER = env('ISSUER');
const REDIRECT_URI = env('REDIRECT_URI');

// A browser: cookies kept by name, redirects not followed.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i);
    const value = pair.slice(i + 1);
    if (!value || /max-age=0/i.test(c)) jar.delete(name);
    else jar.set(name, value);
  }
  return res;
}
const hidden = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return m && m[1].replace(/&#(\d+);/g, (_, d) => String.fromCharCode(+d)).replace(/&amp;/g, '&');
};
const action = (html) => html.match(/<form method="post" action="([^"]*)"/)[1];

// Follows the sign-in pages until the bridge redirects back to REDIRECT_URI.
async function signIn(url) {
  let res = await browse(url);
  for (let step = 0; step < 5; step++) {
    const loc = res.headers.get('location');
    if (loc) return loc;
    const html = await res.text();
    const origin = new URL(url).origin;
    const form = new URLSearchParams({ request: hidden(html, 'request'), csrf: hidden(html, 'csrf') });
    if (html.includes('name="password"')) {
      form.set('username', env('USERNAME'));
      form.set('password', env('PASSWORD'));
    } else if (html.includes('name="decision"')) {
      form.set('decision', 'allow');
    } else {
      throw new Error(`unexpected page ${res.status}: ${html.slice(0, 300)}`);
    }
    res = await browse(origin + action(html), { method: 'POST', body: form });
  }
  throw new Error('sign-in did not finish');
}

const seen = {};
const issuer = await Issuer.discover(`${ISSUER}/.well-known/openid-configuration`);
seen.issuer = issuer.issuer;
const client = new issuer.Client({
  client_id: env('CLIENT_ID'),
  client_secret: env('CLIENT_SECRET'),
  redirect_uris: [REDIRECT_URI],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'RS256',
});

// What Backstage sends: PKCE S256 (discovery lists it), a base64 nonce (may hold + / =).
const start = (extra = {}) => {
  const code_verifier = generators.codeVerifier();
  const nonce = crypto.randomBytes(16).toString('base64');
  const state = Buffer.from(JSON.stringify({ nonce: crypto.randomBytes(8).toString('hex'), env: 'development', origin: 'http://localhost:3000' })).toString('base64');
  const url = client.authorizationUrl({
    scope: 'openid profile email offline_access groups',
    code_challenge: generators.codeChallenge(code_verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    ...extra,
  });
  return { url, checks: { code_verifier, nonce, state } };
};

// Backstage's default prompt is "none": with no session the bridge must answer login_required.
{
  const { url, checks } = start({ prompt: 'none' });
  const loc = await signIn(url);
  try {
    await client.callback(REDIRECT_URI, client.callbackParams(loc), checks);
    throw new Error('prompt=none without a session must fail');
  } catch (e) {
    if (!(e instanceof errors.OPError)) throw e;
    seen.prompt_none_error = e.error;
  }
}

// prompt: auto (no prompt parameter): the login form, then the code.
const { url, checks } = start();
const loc = await signIn(url);
const tokenSet = await client.callback(REDIRECT_URI, client.callbackParams(loc), checks);
const claims = tokenSet.claims();
seen.sub = claims.sub;
seen.expires_in = tokenSet.expires_in;
seen.has_refresh_token = Boolean(tokenSet.refresh_token);
seen.id_token_groups = claims.groups;

const userinfo = await client.userinfo(tokenSet);
seen.userinfo = userinfo;

const refreshed = await client.refresh(tokenSet.refresh_token);
seen.refreshed_sub = refreshed.claims().sub;
seen.refresh_rotated = refreshed.refresh_token !== tokenSet.refresh_token;
seen.userinfo_after_refresh = (await client.userinfo(refreshed.access_token)).sub;

// Sign-out: Backstage revokes the refresh token without a hint and needs a 200.
await client.revoke(refreshed.refresh_token);
try {
  await client.refresh(refreshed.refresh_token);
  seen.refresh_after_revoke = 'accepted';
} catch (e) {
  seen.refresh_after_revoke = e.error || String(e);
}
console.log(JSON.stringify(seen));
