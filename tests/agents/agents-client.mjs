// Drives oidc-bridge's agent grants with openid-client v6 (a certified relying-party library
// built on oauth4webapi), as a third-party client would: client credentials and token
// exchange with resource indicators (RFC 8707, RFC 8693), the device authorization grant
// (RFC 8628, openid-client's own poll loop, slow_down included), and the authorization code
// flow with PKCE plus a refresh, each with client_secret_basic, private_key_jwt or none.
// Prints JSON lines (one JSON.stringify a line); exits 0 when it got an answer it could report,
// an OAuth error included ({"ok":false,"error":...}); non-zero on anything else.
//
// Usage: node agents-client.mjs client_credentials|exchange|device|code
// Env: ISSUER, CLIENT_ID, and one of PRIVATE_KEY_PEM (PKCS#8; with ALG = RS256|PS256|ES256,
//      KID, FIXED_JTI), CLIENT_SECRET, or neither (none). Per scenario:
//   client_credentials  SCOPE, RESOURCES
//   exchange            SUBJECT_TOKEN, SUBJECT_TOKEN_TYPE, ACTOR_TOKEN, ACTOR_TOKEN_TYPE,
//                       AUDIENCES, RESOURCES, SCOPE, REQUESTED_TOKEN_TYPE, CONNECTOR_ID
//   device              SCOPE, RESOURCES, POLL_INTERVAL, POLL_TIMEOUT (seconds, default 120)
//   code                REDIRECT_URI, USERNAME, PASSWORD, SCOPE, RESOURCES, TOKEN_RESOURCES,
//                       REFRESH_RESOURCES
// RESOURCES, AUDIENCES and *_RESOURCES are space-separated and sent as repeated parameters.
import { inspect } from 'node:util';
import * as client from 'openid-client';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
};
const opt = (k) => process.env[k] || undefined;
const list = (k) => (process.env[k] || '').split(/\s+/).filter(Boolean);
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const print = (obj) =>
  new Promise((resolve, reject) =>
    process.stdout.write(JSON.stringify(obj) + '\n', (err) => (err ? reject(err) : resolve())),
  );

// A JWT's payload, base64url-decoded, not verified; null for anything else.
const claimsOf = (jwt) => {
  const parts = typeof jwt === 'string' ? jwt.split('.') : [];
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return null;
  }
};

// The token endpoint's last answer as the server sent it (openid-client lowercases
// token_type and parses expires_in in the object it returns).
let tokenEndpoint;
let lastTokenBody;
async function recordingFetch(url, options) {
  const res = await fetch(url, options);
  if (tokenEndpoint && url === tokenEndpoint && options.method === 'POST') {
    lastTokenBody = undefined;
    try {
      lastTokenBody = JSON.parse(await res.clone().text());
    } catch {}
  }
  return res;
}

const TOKEN_FIELDS = ['access_token', 'token_type', 'expires_in', 'scope', 'issued_token_type', 'refresh_token', 'id_token'];
function success(result) {
  const raw = lastTokenBody && lastTokenBody.access_token === result.access_token ? lastTokenBody : null;
  const response = {};
  if (raw) Object.assign(response, raw);
  else for (const k of TOKEN_FIELDS) if (result[k] !== undefined) response[k] = result[k];
  return { ok: true, response, access_claims: claimsOf(result.access_token) };
}

// An OAuth error answer as {"ok":false,...}; anything else is rethrown.
async function failure(e) {
  if (e instanceof client.ResponseBodyError) {
    return { ok: false, error: e.error, error_description: e.error_description, status: e.status };
  }
  if (e instanceof client.AuthorizationResponseError) {
    return { ok: false, error: e.error, error_description: e.error_description };
  }
  if (e instanceof client.WWWAuthenticateChallengeError) {
    // oauth4webapi raises this before reading the body when a 4xx carries WWW-Authenticate
    // (e.g. 401 invalid_client with a Basic challenge); the JSON body is still unread.
    const out = { ok: false, status: e.status, www_authenticate: e.response?.headers.get('www-authenticate') };
    try {
      const body = await e.response.json();
      out.error = body.error;
      out.error_description = body.error_description;
    } catch {}
    const params = e.cause?.[0]?.parameters;
    if (!out.error && params?.error) {
      out.error = params.error;
      out.error_description = params.error_description;
    }
    if (out.error) return out;
  }
  throw e;
}

// --- client authentication -------------------------------------------------------------

const SUBTLE = {
  RS: (bits) => ({ name: 'RSASSA-PKCS1-v1_5', hash: `SHA-${bits}` }),
  PS: (bits) => ({ name: 'RSA-PSS', hash: `SHA-${bits}` }),
  ES: (bits) => ({ name: 'ECDSA', namedCurve: bits === '512' ? 'P-521' : `P-${bits}` }),
};
async function clientAuth() {
  const pem = opt('PRIVATE_KEY_PEM');
  if (pem) {
    const alg = opt('ALG') || 'RS256';
    const m = alg.match(/^(RS|PS|ES)(256|384|512)$/);
    if (!m) throw new Error(`unsupported ALG ${alg}`);
    const der = Buffer.from(pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, ''), 'base64');
    // openid-client takes the JWS alg from the CryptoKey's algorithm.
    const key = await crypto.subtle.importKey('pkcs8', der, SUBTLE[m[1]](m[2]), false, ['sign']);
    const kid = opt('KID');
    const fixedJti = opt('FIXED_JTI');
    const options = fixedJti
      ? { [client.modifyAssertion]: (_header, payload) => { payload.jti = fixedJti; } }
      : undefined;
    return client.PrivateKeyJwt(kid ? { key, kid } : key, options);
  }
  const secret = opt('CLIENT_SECRET');
  if (secret) return client.ClientSecretBasic(secret);
  return client.None();
}

async function configure() {
  const config = await client.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined, await clientAuth(), {
    execute: [client.allowInsecureRequests],
    [client.customFetch]: recordingFetch,
  });
  tokenEndpoint = config.serverMetadata().token_endpoint;
  return config;
}

const withResources = (params, key) => {
  for (const r of list(key)) params.append('resource', r);
  return params;
};

// --- a browser for the sign-in pages ---------------------------------------------------

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
async function signIn(url, redirectUri) {
  let res = await browse(url);
  for (let step = 0; step < 5; step++) {
    const loc = res.headers.get('location');
    if (loc) {
      const next = new URL(loc, url).href;
      if (next.startsWith(redirectUri)) return next;
      url = next;
      res = await browse(next);
      continue;
    }
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

// --- scenarios -------------------------------------------------------------------------

async function clientCredentials(config) {
  const params = withResources(new URLSearchParams(), 'RESOURCES');
  if (opt('SCOPE')) params.set('scope', opt('SCOPE'));
  try {
    await print(success(await client.clientCredentialsGrant(config, params)));
  } catch (e) {
    await print(await failure(e));
  }
}

async function exchange(config) {
  const params = new URLSearchParams({
    subject_token: env('SUBJECT_TOKEN'),
    subject_token_type: opt('SUBJECT_TOKEN_TYPE') || ACCESS_TOKEN_TYPE,
  });
  if (opt('ACTOR_TOKEN')) {
    params.set('actor_token', opt('ACTOR_TOKEN'));
    params.set('actor_token_type', opt('ACTOR_TOKEN_TYPE') || ACCESS_TOKEN_TYPE);
  }
  for (const a of list('AUDIENCES')) params.append('audience', a);
  withResources(params, 'RESOURCES');
  if (opt('SCOPE')) params.set('scope', opt('SCOPE'));
  if (opt('REQUESTED_TOKEN_TYPE')) params.set('requested_token_type', opt('REQUESTED_TOKEN_TYPE'));
  // Dex's extension: the subject token is this connector's upstream's.
  if (opt('CONNECTOR_ID')) params.set('connector_id', opt('CONNECTOR_ID'));
  try {
    const result = await client.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:token-exchange', params);
    await print(success(result));
  } catch (e) {
    await print(await failure(e));
  }
}

async function device(config) {
  const params = withResources(new URLSearchParams(), 'RESOURCES');
  if (opt('SCOPE')) params.set('scope', opt('SCOPE'));
  let started;
  try {
    started = await client.initiateDeviceAuthorization(config, params);
  } catch (e) {
    await print({ event: 'started', ...(await failure(e)) });
    return;
  }
  const { user_code, verification_uri, verification_uri_complete, interval, expires_in } = started;
  await print({ event: 'started', ok: true, user_code, verification_uri, verification_uri_complete, interval, expires_in });
  // openid-client waits `interval` seconds before each poll and adds 5 on slow_down.
  const poll = opt('POLL_INTERVAL') !== undefined ? { ...started, interval: Number(opt('POLL_INTERVAL')) } : started;
  const timeout = Number(opt('POLL_TIMEOUT') || 120) * 1000;
  try {
    const result = await client.pollDeviceAuthorizationGrant(config, poll, undefined, { signal: AbortSignal.timeout(timeout) });
    await print({ event: 'done', ...success(result), id_token_claims: claimsOf(result.id_token) });
  } catch (e) {
    await print({ event: 'done', ...(await failure(e)) });
  }
}

async function code(config) {
  const redirectUri = env('REDIRECT_URI');
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const params = new URLSearchParams({
    redirect_uri: redirectUri,
    scope: opt('SCOPE') || 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
  });
  withResources(params, 'RESOURCES');
  const location = await signIn(client.buildAuthorizationUrl(config, params).href, redirectUri);
  let result;
  try {
    const tokenParams = withResources(new URLSearchParams(), 'TOKEN_RESOURCES');
    result = await client.authorizationCodeGrant(config, new URL(location), { pkceCodeVerifier, expectedState }, tokenParams);
    await print({ step: 'code', ...success(result) });
  } catch (e) {
    await print({ step: 'code', ...(await failure(e)) });
    return;
  }
  if (!result.refresh_token) return;
  try {
    const refreshParams = withResources(new URLSearchParams(), 'REFRESH_RESOURCES');
    await print({ step: 'refresh', ...success(await client.refreshTokenGrant(config, result.refresh_token, refreshParams)) });
  } catch (e) {
    await print({ step: 'refresh', ...(await failure(e)) });
  }
}

const SCENARIOS = { client_credentials: clientCredentials, exchange, device, code };

try {
  const run = SCENARIOS[process.argv[2]];
  if (!run) throw new Error(`usage: node agents-client.mjs ${Object.keys(SCENARIOS).join('|')}`);
  await run(await configure());
  process.exit(0);
} catch (e) {
  const cause = e?.cause ? `\ncause: ${inspect(e.cause, { depth: 4 })}` : '';
  process.stderr.write(`agents-client ${process.argv[2] ?? ''}: ${e?.stack || e}${e?.code ? ` [${e.code}]` : ''}${cause}\n`);
  process.exit(1);
}
