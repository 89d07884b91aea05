// The README's sign-in resolver (packages/backend/src/oidcBridgeResolver.js): the bridge's
// normalized `groups` become ownership references, `group:default/<name>`. The names are
// already Backstage-safe, so no catalog is needed.
const { createBackendModule } = require('@backstage/backend-plugin-api');
const {
  authProvidersExtensionPoint,
  createOAuthProviderFactory,
} = require('@backstage/plugin-auth-node');
const { oidcAuthenticator } = require('@backstage/plugin-auth-backend-module-oidc-provider');
const { stringifyEntityRef } = require('@backstage/catalog-model');

module.exports = createBackendModule({
  pluginId: 'auth',
  moduleId: 'oidc-bridge-groups',
  register(reg) {
    reg.registerInit({
      deps: { providers: authProvidersExtensionPoint },
      async init({ providers }) {
        providers.registerProvider({
          providerId: 'oidc',
          factory: createOAuthProviderFactory({
            authenticator: oidcAuthenticator,
            async signInResolver(info, ctx) {
              const { userinfo } = info.result.fullProfile;
              const login = userinfo.preferred_username || userinfo.email || userinfo.sub;
              const name = String(login).split('@')[0].toLowerCase().replace(/[^a-z0-9_.-]/g, '-');
              const userRef = stringifyEntityRef({ kind: 'User', namespace: 'default', name });
              const groups = userinfo.groups || [];
              return ctx.issueToken({
                claims: {
                  sub: userRef,
                  ent: [
                    userRef,
                    ...groups.map(g => stringifyEntityRef({ kind: 'Group', namespace: 'default', name: g })),
                  ],
                },
              });
            },
          }),
        });
      },
    });
  },
});
