// The Backstage backend of the test (packages/backend/src/index.js): the auth plugin, the
// OIDC provider through the README's resolver module, nothing else (no catalog).
const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(import('@backstage/plugin-auth-backend'));
backend.add(require('./src/oidcBridgeResolver'));
backend.start();
