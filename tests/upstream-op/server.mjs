// A local upstream IdP built on node-oidc-provider, for the bridge's federation tests.
// Env: PORT, REDIRECT_URI. Prints "listening <issuer>" when ready.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://localhost:${port}`;
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
provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
