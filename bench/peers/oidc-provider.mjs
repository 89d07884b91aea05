// oidc-provider 9.13.3 as the benchmark's peer: one confidential client for
// client_credentials (JWT access tokens signed RS256, as ours are) and introspection.
//   node bench/peers/oidc-provider.mjs PORT
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK } from 'jose';

const port = Number(process.argv[2] || 3000);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'bench', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-0123456789',
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    redirect_uris: ['http://127.0.0.1:9/cb'],
    response_types: ['code'],
  }],
  jwks: { keys: [jwk] },
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://api.bench.test',
      getResourceServerInfo: () => ({ scope: 'api', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      useGrantedResource: () => true,
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`issuer ${issuer}`));
