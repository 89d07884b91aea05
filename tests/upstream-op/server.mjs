// A local upstream IdP built on node-oidc-provider, for the bridge's federation tests.
// Env: REDIRECT_URI. Listens on a port the system picks (bound before the issuer is known,
// so no other process can take it first) and prints "listening <issuer>" when ready.
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
const issuer = `http://localhost:${server.address().port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bridge',
    client_secret: 'bridge-secret-for-node-oidc-provider',
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // Put the scope's claims in the ID token too, as many real IdPs do.
  conformIdTokenClaims: false,
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({
      sub,
      email: `${sub}@example.org`,
      email_verified: true,
      name: `User ${sub}`,
      groups: ['Node Team', 'Everyone'],
    }),
  }),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['a-test-only-cookie-signing-key'] },
  pkce: { required: () => true },
});
provider.proxy = false;
server.on('request', provider.callback());
console.log(`listening ${issuer}`);
});
